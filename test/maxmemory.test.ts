/**
 * A Redis that is full, on servers of this file's own started with `maxmemory 2mb` and each eviction policy: an
 * invalidation still goes through (it deletes the generation, which Redis accepts under `noeviction` where it
 * refuses a SET), nothing written before it is served afterwards, the writes Redis refuses are bypasses with a
 * warning that names the refusal, and a purge makes room again.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { uniqueName } from "./conformance.js"
import { startRedisServer } from "./support/redisServer.js"

const server = (policy: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisServer({ args: ["--maxmemory", "2mb", "--maxmemory-policy", policy] })),
    (server) => Effect.promise(() => server.stop())
  )

const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { maxRetriesPerRequest: 0 })),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

const warnings: Array<string> = []
const capture = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ annotations, message }) => {
    const cause = Option.getOrElse(HashMap.get(annotations, "cause"), () => "")
    warnings.push(`${Array.isArray(message) ? message.join(" ") : String(message)} ${String(cause)}`)
  })
)

const count = (outcomes: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
  return counts
}

describe("a full Redis (maxmemory 2mb)", () => {
  for (const policy of ["noeviction", "allkeys-lru", "volatile-lru", "volatile-ttl"] as const) {
    it.live(
      `${policy}: invalidation goes through, nothing older is served after it, refused writes are bypasses`,
      () =>
        Effect.scoped(
          Effect.gen(function*() {
            warnings.length = 0
            const redis = yield* server(policy)
            let version = 1
            const namespace = "tenant:full"
            const cacheable = Cacheable.make({
              name: uniqueName("full"),
              query: Schema.Struct({ n: Schema.Number }),
              response: Schema.Struct({ version: Schema.Number, pad: Schema.String }),
              namespace: () => namespace,
              policy: CachePolicy.make({ ttl: "10 minutes" }),
              resolve: () => Effect.sync(() => ({ version, pad: "x".repeat(1000) }))
            })
            const cache = Context.get(
              yield* Layer.build(ResponseCache.layerRedis({
                url: redis.url,
                prefix: uniqueName("full"),
                commandTimeout: 2000,
                // Kept closed, so that every refusal reaches the log as Redis said it (and caching resumes at once
                // after the purge); an open breaker would say "circuit open" instead, and hold reads back for its
                // cool-down — never invalidations or purges.
                circuitBreaker: { failures: 1_000_000 }
              })),
              ResponseCache.ResponseCache
            )
            const read = (n: number) => cache.getOrResolveWithOutcome(cacheable, { n })
            const queries = Array.from({ length: 1500 }, (_, n) => n)

            // ~1.8 MB of entries into ~1.1 MB of room.
            const filling = count(yield* Effect.forEach(queries, (n) => Effect.map(read(n), (r) => r.outcome)))
            const client = yield* rawClient(redis.url)
            if (policy === "noeviction") {
              // The cache's own writes were refused once it was full; fill what is left with keys of our own.
              assert.isAbove(filling.bypass ?? 0, 0)
              for (let i = 0;; i++) {
                const refused = yield* Effect.promise(() =>
                  client.set(`filler:${i}`, "y".repeat(1000)).then(
                    () => false,
                    (error: Error) => /OOM/.test(error.message)
                  )
                )
                if (refused) break
              }
              // Full: a write of the cache's is refused.
              const refused = yield* Effect.promise(() => client.set("probe", "1").then(() => false, () => true))
              assert.isTrue(refused)
            }
            // Entries that were stored are hits: the first ones under noeviction (then writes were refused), the last
            // ones under an evicting policy (which may have evicted the first).
            const stored = policy === "noeviction" ? queries.slice(0, 100) : queries.slice(-100)
            const before = count(yield* Effect.forEach(stored, (n) => Effect.map(read(n), (r) => r.outcome)))
            assert.isAbove(before.hit ?? 0, 0)

            version = 2
            yield* cache.invalidateNamespace(namespace)
            const warningsBefore = warnings.length
            const after = yield* Effect.forEach(queries, (n) => read(n))
            const stale = after.filter((r) => r.value.version !== 2).length
            const outcomes = count(after.map((r) => r.outcome))
            console.log(
              `maxmemory figures (${policy}): filling ${JSON.stringify(filling)}, before ${
                JSON.stringify(before)
              }, after invalidation ${JSON.stringify(outcomes)}, stale ${stale}`
            )
            assert.strictEqual(stale, 0)

            if (policy === "noeviction") {
              // Every read needs a new generation, which Redis refuses: each call is a bypass, and what was logged
              // names the refusal.
              assert.strictEqual(outcomes.bypass, queries.length)
              const logged = warnings.slice(warningsBefore)
              assert.isAbove(logged.length, 0)
              assert.isAtMost(logged.length, queries.length)
              for (const warning of logged) assert.match(warning, /OOM command not allowed/)
              // A purge still works when Redis is full, and the room it makes lets caching resume.
              const removed = yield* cache.purgeNamespace(namespace)
              assert.isAbove(removed, 0)
              yield* Effect.promise(() => client.unlink(...Array.from({ length: 100 }, (_, i) => `filler:${i}`)))
              version = 3
              assert.deepStrictEqual([(yield* read(0)).outcome, (yield* read(0)).outcome], ["miss", "hit"])
              assert.strictEqual((yield* read(0)).value.version, 3)
            }
          }).pipe(Effect.provide(capture))
        ),
      60_000
    )
  }
})
