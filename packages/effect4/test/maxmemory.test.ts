/**
 * A Redis that is full (`maxmemory 2mb`, `maxmemory-policy noeviction`, on a server of this file's own): an
 * invalidation still goes through — the wire package's DEL of the generation, which Redis accepts where it refuses
 * a SET — and nothing written before it is served afterwards, over both providers of Effect's `Redis` service. The
 * Effect 3 package's `test/maxmemory.test.ts` (noeviction case), in Effect 4.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as Redis from "effect/persistence/Redis"
import * as Schema from "effect/Schema"
import { Redis as IORedis } from "ioredis"
import { startRedisServer } from "../../../test/support/redisServer.js"
import { Cacheable, CachePolicy, IoRedis, ResponseCache } from "../src/index.js"
import { uniqueName } from "./conformance.js"

const providers: ReadonlyArray<readonly [string, (url: string) => Layer.Layer<Redis.Redis>]> = [
  ["NodeRedis", (url) => Layer.orDie(NodeRedis.layer({ url }))],
  ["ioredis", (url) => IoRedis.layer({ url, commandTimeout: 2000 })]
]

const count = (outcomes: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
  return counts
}

describe("a full Redis (maxmemory 2mb)", () => {
  for (const [provider, redisOn] of providers) {
    it.live(
      `noeviction (${provider}): invalidation goes through, nothing older is served after it, refused writes are bypasses`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const redis = yield* Effect.acquireRelease(
            Effect.promise(() =>
              startRedisServer({ args: ["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"] })
            ),
            (server) => Effect.promise(() => server.stop())
          )
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
            yield* Layer.build(
              ResponseCache.layerRedis({ prefix: uniqueName("full"), commandTimeout: 2000, breaker: false }).pipe(
                Layer.provide(redisOn(redis.url))
              )
            ),
            ResponseCache.ResponseCache
          )
          const read = (n: number) => cache.getOrResolveWithOutcome(cacheable, { n })
          const queries = Array.from({ length: 1500 }, (_, n) => n)

          // ~1.8 MB of entries into ~1.1 MB of room: the cache's own writes are refused once it is full.
          const filling = count(yield* Effect.forEach(queries, (n) => Effect.map(read(n), (r) => r.outcome)))
          assert.isAbove(filling.bypass ?? 0, 0)
          // Fill what is left with keys of our own, until a SET is refused.
          const client = yield* Effect.acquireRelease(
            Effect.sync(() => new IORedis(redis.url, { maxRetriesPerRequest: 0 })),
            (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
          )
          for (let i = 0;; i++) {
            const refused = yield* Effect.promise(() =>
              client.set(`filler:${i}`, "y".repeat(1000)).then(() => false, (error: Error) => /OOM/.test(error.message))
            )
            if (refused) break
          }
          // The first entries were stored before it filled up: hits.
          const before = count(
            yield* Effect.forEach(queries.slice(0, 100), (n) => Effect.map(read(n), (r) => r.outcome))
          )
          assert.isAbove(before.hit ?? 0, 0)

          version = 2
          // Full, and still the invalidation returns.
          yield* cache.invalidateNamespace(namespace)
          const after = yield* Effect.forEach(queries, (n) => read(n))
          assert.strictEqual(after.filter((r) => r.value.version !== 2).length, 0, "nothing older is served")
          // Nothing can be stored while Redis is full: answered from the resolver.
          assert.deepStrictEqual(count(after.map((r) => r.outcome)), { bypass: queries.length })
        })).pipe(Effect.provide(Logger.layer([]))),
      60_000
    )
  }
})
