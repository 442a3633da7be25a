/**
 * `npx tsx scripts/entry-size-cost.ts` — what a hit on a ~1 MiB entry costs, on a redis-server of the script's own:
 * the miss that stores it, the first hit of a process (JSON.parse + schema decode), and later hits whose bytes are
 * the same (the decode memo compares the payload and skips both). Median of `--count` calls (default 50) each, ms.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { parseArgs } from "node:util"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { startRedisServer } from "../test/support/redisServer.js"

const { values } = parseArgs({ options: { count: { type: "string", default: "50" } } })
const count = Number(values.count)

const Row = Schema.Struct({ id: Schema.Number, account: Schema.String, amount: Schema.Number, memo: Schema.String })
// ~1 MiB of JSON: 10,500 rows of ~100 bytes.
const rows = Array.from(
  { length: 10_500 },
  (_, id) => ({ id, account: `acct-${id % 977}`, amount: id * 1.5, memo: "m".repeat(40) })
)

const main = async () => {
  const server = await startRedisServer()
  try {
    const program = Effect.scoped(Effect.gen(function*() {
      const cacheable = Cacheable.make({
        name: "big",
        query: Schema.Struct({ n: Schema.Number }),
        response: Schema.Array(Row),
        namespace: () => "tenant:big",
        policy: CachePolicy.make({ ttl: "10 minutes" }),
        resolve: () => Effect.succeed(rows)
      })
      const build = () =>
        Effect.map(
          Layer.build(
            ResponseCache.layerRedis({
              url: server.url,
              prefix: "big",
              maxEntryBytes: 2 * 1024 * 1024,
              commandTimeout: 5000
            })
          ),
          (context) => Context.get(context, ResponseCache.ResponseCache)
        )
      const time = (effect: Effect.Effect<unknown, unknown>) =>
        Effect.gen(function*() {
          const start = performance.now()
          yield* effect
          return performance.now() - start
        })
      const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2)
      const misses: Array<number> = []
      const firstHits: Array<number> = []
      const memoHits: Array<number> = []
      for (let i = 0; i < count; i++) {
        const writer = yield* build()
        misses.push(yield* time(writer.getOrResolve(cacheable, { n: i })))
        // A fresh instance: its memo is empty, so its first hit parses and decodes.
        const reader = yield* build()
        firstHits.push(yield* time(reader.getOrResolve(cacheable, { n: i })))
        memoHits.push(yield* time(reader.getOrResolve(cacheable, { n: i })))
      }
      const bytes = Buffer.byteLength(JSON.stringify(rows))
      console.log(
        `entry ${(bytes / 1024 / 1024).toFixed(2)} MiB; median of ${count}: miss (resolve, encode, store) ${
          median(misses)
        } ms, ` +
          `first hit of a process (read, parse, decode) ${median(firstHits)} ms, later hit (read, memo) ${
            median(memoHits)
          } ms`
      )
    }))
    await Effect.runPromise(program)
  } finally {
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
