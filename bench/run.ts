/**
 * `npm run bench` — the whole benchmark in one process, on a redis-server of its own. Prints the markdown tables
 * and writes `bench/results/<date>.json` and `.md`.
 *
 * Run with V8's young generation at its full size from the start (`--min-semi-space-size=16`, 16 MiB being its
 * default maximum on 64-bit): the full collection before each round (`Bench.gc`) otherwise shrinks it, and the
 * round then pays for growing it back — minor collections several times as often, a cost that falls on whoever
 * allocates most per call and that a long-running server never pays (README, "Latest results").
 *
 * Options: --sizes tiny|full (default full), --workloads hot,miss,… --contenders raw,ours-redis,… --all (also the
 * extra variants), --soak-keys N (the 1,000,000-key soak: `--workloads soak --soak-keys 1000000`), --no-write.
 */
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { run } from "./Benchmark.js"
import { resultsMarkdown } from "./Report.js"
import { sizesNamed } from "./Sizes.js"

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "full" },
    workloads: { type: "string" },
    contenders: { type: "string" },
    all: { type: "boolean", default: false },
    "soak-keys": { type: "string" },
    "no-write": { type: "boolean", default: false }
  }
})

const list = (value: string | undefined) => (value === undefined ? undefined : value.split(",").map((s) => s.trim()))

const results = await run({
  sizes: sizesNamed(args.sizes).name,
  soakKeys: args["soak-keys"] === undefined ? undefined : Number(args["soak-keys"]),
  workloads: list(args.workloads),
  contenders: list(args.contenders),
  all: args.all,
  outDir: args["no-write"] ? undefined : fileURLToPath(new URL("./results", import.meta.url)),
  log: (line) => process.stderr.write(`[bench] ${line}\n`)
})
process.stdout.write(resultsMarkdown(results) + "\n")
