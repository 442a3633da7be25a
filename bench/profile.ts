/**
 * One contender's hot-hit workload alone, for a CPU profile of its hot path:
 *
 *   npm run build
 *   node --min-semi-space-size=16 --cpu-prof --cpu-prof-dir=.scratch/profiles --import tsx bench/profile.ts [--contender ours-redis]
 *     [--concurrency 64] [--seconds 10] [--miss]
 *   npx tsx bench/profileSummary.ts .scratch/profiles/<the larger file>.cpuprofile
 *
 * Starts its own redis-server like the benchmark, warms 1,000 keys, runs, prints ops/s. The library runs from
 * `dist/` (see library.ts), so its frames keep their line numbers; tsx's loader thread writes a second, small
 * profile beside the main one.
 */
import { Redis } from "ioredis"
import { parseArgs } from "node:util"
import { startRedisServer } from "../test/support/redisServer.js"
import { type Bench, gc } from "./Bench.js"
import { prefixOf } from "./Contender.js"
import { contenders } from "./contenders/index.js"
import { runLoop } from "./Driver.js"
import { Origin } from "./Origin.js"
import { full } from "./Sizes.js"
import { namespaceOf, warm } from "./workloads/hot.js"

const { values: args } = parseArgs({
  options: {
    contender: { type: "string", default: "ours-redis" },
    concurrency: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    // Every call a new key: profiles the miss path instead of the hot hit.
    miss: { type: "boolean", default: false }
  }
})

const contender = contenders.find((c) => c.id === args.contender)
if (contender === undefined) throw new Error(`unknown contender ${args.contender}`)
const server = await startRedisServer()
const admin = new Redis(server.url)
try {
  const origin = new Origin()
  const env = {
    url: server.url,
    host: "127.0.0.1",
    port: server.port,
    prefix: prefixOf(contender.id),
    origin,
    ttlMs: 600_000
  }
  const instance = await contender.start(env)
  if (instance === undefined) throw new Error(`${contender.id} is not supported by this build`)
  const entrant = { contender, instance, env }
  const bench: Bench = {
    sizes: full,
    redis: { url: server.url, host: "127.0.0.1", port: server.port },
    admin,
    origin,
    entrants: [entrant],
    log: () => {}
  }
  await warm(bench, [entrant])
  let counter = 0
  const loop = (ms: number) =>
    runLoop(instance.caller, {
      concurrency: Number(args.concurrency),
      durationMs: ms,
      next: args.miss ? () => 1_000_000 + counter++ : () => counter++ % full.warmKeys,
      namespaceOf: namespaceOf(bench)
    })
  await loop(1000)
  gc()
  const result = await loop(Number(args.seconds) * 1000)
  process.stdout.write(
    `${contender.id}, ${args.concurrency} in flight: ${Math.round(result.opsPerSec)} ops/s, ` +
      `p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, ${
        result.cpuUsPerOp.toFixed(1)
      } µs CPU/op\n`
  )
  await instance.close()
} finally {
  admin.disconnect()
  await server.stop()
}
