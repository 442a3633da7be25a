/**
 * `npx tsx scripts/invalidation-latency.ts` — what `confirmInvalidation` costs per invalidation on a healthy
 * primary and replica of the script's own (loopback): `--count` invalidations (default 2,000) one after another,
 * with `confirmInvalidation: { replicas: 1, timeout: "1 second" }` and without, alternating in rounds of 100 so
 * both see the same machine. Prints the median, p99 and max of each, in ms.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { parseArgs } from "node:util"
import { ResponseCache } from "../src/index.js"
import { startRedisServer } from "../test/support/redisServer.js"

const { values } = parseArgs({ options: { count: { type: "string", default: "2000" } } })
const count = Number(values.count)

const main = async () => {
  const primary = await startRedisServer({ args: ["--repl-diskless-sync-delay", "0"] })
  const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] })
  try {
    const program = Effect.scoped(Effect.gen(function*() {
      const build = (confirm: boolean) =>
        Effect.map(
          Layer.build(ResponseCache.layerRedis({
            url: primary.url,
            prefix: confirm ? "confirmed" : "plain",
            ...(confirm ? { confirmInvalidation: { replicas: 1, timeout: "1 second" } } : {})
          })),
          (context) => Context.get(context, ResponseCache.ResponseCache)
        )
      const caches = { confirmed: yield* build(true), plain: yield* build(false) }
      // Until the replica is in sync, WAIT would fail.
      yield* caches.confirmed.invalidateNamespace("warm").pipe(Effect.retry({ times: 100 }))
      const times = { confirmed: [] as Array<number>, plain: [] as Array<number> }
      for (let round = 0; round < count / 100; round++) {
        for (const name of ["plain", "confirmed"] as const) {
          for (let i = 0; i < 100; i++) {
            const start = performance.now()
            yield* caches[name].invalidateNamespace(`tenant:${i % 10}`)
            times[name].push(performance.now() - start)
          }
        }
      }
      for (const name of ["plain", "confirmed"] as const) {
        const sorted = times[name].sort((a, b) => a - b)
        const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(3)
        console.log(
          `${name}: ${sorted.length} invalidations, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${
            sorted.at(-1)!.toFixed(3)
          } ms`
        )
      }
    }))
    await Effect.runPromise(program)
  } finally {
    await Promise.all([replica.stop(), primary.stop()])
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
