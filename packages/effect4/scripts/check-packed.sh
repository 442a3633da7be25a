#!/usr/bin/env bash
# The packed-package check of issue 13: a fresh project on effect@4.1 installs the packed
# @ledgerlink/response-cache-effect4 (and the wire package it depends on) with an isolated install
# (--install-strategy=linked), type-checks the README's v4 quick start and runs it on memory and on Redis via
# NodeRedis, against a redis-server this script starts on a free loopback port and stops by its PID.
#
#   packages/effect4/scripts/check-packed.sh          (from anywhere; needs npm, node and redis-server)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/rc-effect4-packed.XXXXXX")"
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== packing (builds both packages through their prepack)"
(cd "$root" && npm pack -w @ledgerlink/response-cache-wire -w @ledgerlink/response-cache-effect4 \
  --pack-destination "$work" --silent >/dev/null)
wire="$(ls "$work"/ledgerlink-response-cache-wire-*.tgz)"
effect4="$(ls "$work"/ledgerlink-response-cache-effect4-*.tgz)"
echo "   $(basename "$wire"): $(tar -tzf "$wire" | wc -l) files; $(basename "$effect4"): $(tar -tzf "$effect4" | wc -l) files"
if tar -tzf "$effect4" | grep -vE '^package/(dist/.*\.(js|d\.ts)|README\.md|LICENSE|CHANGELOG\.md|package\.json)$'; then
  echo "unexpected files in the tarball (above)" >&2
  exit 1
fi

echo "== a fresh project on effect@4.1, isolated install"
mkdir -p "$work/app/src"
cat >"$work/app/package.json" <<JSON
{
  "name": "scratch-effect4-app",
  "private": true,
  "type": "module",
  "dependencies": {
    "@effect/platform-node": "^4.1.0",
    "@ledgerlink/response-cache-effect4": "file:$effect4",
    "@ledgerlink/response-cache-wire": "file:$wire",
    "effect": "^4.1.0",
    "redis": "^5.0.0"
  },
  "overrides": { "@ledgerlink/response-cache-wire": "file:$wire" },
  "devDependencies": { "@types/node": "^22.0.0", "typescript": "~5.9.3" }
}
JSON
cat >"$work/app/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "exactOptionalPropertyTypes": true, "skipLibCheck": true, "types": ["node"], "outDir": "dist", "rootDir": "src"
  },
  "include": ["src"]
}
JSON
cp "$here/examples/quickstart.ts" "$here/examples/check.ts" "$work/app/src/"
(cd "$work/app" && npm install --install-strategy=linked --no-audit --no-fund --silent)
(cd "$work/app" && node -e 'console.log("   effect", require("effect/package.json").version)')

echo "== type-check and build the quick start"
(cd "$work/app" && npx tsc -p tsconfig.json)

echo "== run it on memory"
(cd "$work/app" && env -u REDIS_URL node dist/check.js)

echo "== run it on Redis via NodeRedis"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
redis_pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
(cd "$work/app" && REDIS_URL="redis://127.0.0.1:$port" node dist/check.js)
echo "== packed package OK"
