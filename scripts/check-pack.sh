#!/usr/bin/env bash
# Release check: pack the wire package and the library from fresh builds, install both tarballs into a scratch
# consumer with an isolated install next to the LOWEST effect of the peer range, check there is one effect, then
# type-check (strict + exactOptionalPropertyTypes) and run the README's quick start on the memory layer and on Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
effect_version=${EFFECT_VERSION:-3.20.0}   # the low end of the peer range "effect": "^3.20.0" (3.19 lacks Types.VoidIfEmpty, which our .d.ts use)
scratch=$(mktemp -d)
redis_pid=""
cleanup() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true; rm -rf "$scratch"; }
trap cleanup EXIT

rm -rf dist packages/wire/dist
(cd packages/wire && npm pack --silent --pack-destination "$scratch" >/dev/null)
npm pack --silent --pack-destination "$scratch" >/dev/null
echo "check:pack: tarballs: $(cd "$scratch" && ls *.tgz | tr '\n' ' ')"
for t in "$scratch"/*.tgz; do
  bad=$(tar -tzf "$t" | grep -vE '^package/(dist/.*\.(js|d\.ts)|README\.md|LICENSE|CHANGELOG\.md|package\.json)$' || true)
  [ -z "$bad" ] || { echo "check:pack: unexpected files in $(basename "$t"): $bad"; exit 1; }
done

cd "$scratch"
cat > package.json <<JSON
{ "name": "consumer", "private": true, "type": "module" }
JSON
npm install --silent --no-audit --no-fund --install-strategy=linked \
  ./ledgerlink-response-cache-wire-*.tgz ./ledgerlink-response-cache-0*.tgz \
  "effect@$effect_version" "ioredis@^6" "typescript@~5.9.3" "@types/node@^20" >/dev/null
copies=$(npm ls effect --all --parseable 2>/dev/null | xargs -n1 realpath | sort -u | wc -l)
echo "check:pack: effect $(node -p 'require("effect/package.json").version'), copies: $copies"
[ "$copies" = 1 ] || { npm ls effect --all; exit 1; }

# The README's quick start, as written, with the layer chosen by the environment.
awk '/^## Quick start/{q=1} q&&/^```ts$/{p=1;next} p&&/^```$/{exit} p' "$root/README.md" > main.ts
# Only addition: print what the program returns.
sed -i 's/^Effect\.runPromise(\(.*\))$/Effect.runPromise(\1).then((result) => console.log(JSON.stringify(result)))/' main.ts
grep -q 'console.log(JSON.stringify(result))' main.ts
cat > tsconfig.json <<JSON
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
  "exactOptionalPropertyTypes": true, "noEmit": true, "skipLibCheck": false, "types": ["node"] }, "include": ["main.ts"] }
JSON
# ioredis 6.1's own .d.ts import the untyped "redis-errors"; declared here rather than skipping every library check.
echo 'declare module "redis-errors"' > shims.d.ts
sed -i 's/"include": \["main.ts"\]/"include": ["main.ts", "shims.d.ts"]/' tsconfig.json
npx tsc -p tsconfig.json
echo "check:pack: the README's quick start type-checks (strict, exactOptionalPropertyTypes)"

# Run it: on the memory layer as written, then on Redis (a redis-server of our own on a free port).
npx tsc -p tsconfig.json --noEmit false --outDir out
out=$(node out/main.js 2>&1) || { echo "$out"; exit 1; }
echo "check:pack: memory layer: $out"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
sed "s|Effect.provide(ResponseCache.layerMemory())|Effect.provide(ResponseCache.layerRedis({ url: \"redis://127.0.0.1:$port\" }))|" main.ts > redis.ts
grep -q layerRedis redis.ts
sed -i 's/"include": \["main.ts"/"include": ["redis.ts"/' tsconfig.json
npx tsc -p tsconfig.json --noEmit false --outDir out
out=$(node out/redis.js 2>&1) || { echo "$out"; exit 1; }
echo "check:pack: Redis layer: $out ($(redis-cli -p "$port" dbsize) keys written)"
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
echo "check:pack: ok"
