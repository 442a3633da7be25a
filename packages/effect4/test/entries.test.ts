/**
 * What an entry may be: bounded in size (`maxEntryBytes`), tied to the response version it was written under
 * (`responseVersion`), and recognisably an entry of this cache — on the memory layer and on the suite's
 * redis-server. The Effect 3 package's `test/entries.test.ts`, with the same names, in Effect 4.
 */
import { assert, describe, inject, it } from "@effect/vitest"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { Cacheable, CacheKey, CachePolicy, IoRedis, ResponseCache, ResponseCacheMetrics } from "../src/index.js"
import { uniqueName } from "./conformance.js"

const url = inject("redisUrl")

const layers: ReadonlyArray<
  [string, (options: ResponseCache.MemoryOptions) => Layer.Layer<ResponseCache.ResponseCache, Config.ConfigError>]
> = [
  ["memory", (options) => ResponseCache.layerMemory(options)],
  ["redis", (options) => ResponseCache.layerRedis(options).pipe(Layer.provide(IoRedis.layer({ url })))]
]

const build = (layer: Layer.Layer<ResponseCache.ResponseCache, Config.ConfigError>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, ResponseCache.ResponseCache))

const Query = Schema.Struct({ n: Schema.Number })

for (const [name, layerOf] of layers) {
  describe(`entries (${name})`, () => {
    it.live("a response over maxEntryBytes is returned but not stored: miss each time, counted, warned once", () => {
      const warnings: Array<string> = []
      const logger = Logger.make(({ message }) => {
        warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      return Effect.scoped(Effect.gen(function*() {
        let runs = 0
        const cacheable = Cacheable.make({
          name: uniqueName("size"),
          query: Query,
          response: Schema.String,
          namespace: () => "tenant:size",
          policy: CachePolicy.make({ ttl: "1 minute" }),
          // n × 100 characters, plus the two quotes of its JSON; "é" is two bytes in UTF-8.
          resolve: (query) => Effect.sync(() => (runs++, "é".repeat(query.n * 50)))
        })
        const cache = yield* build(layerOf({ prefix: uniqueName("size"), maxEntryBytes: 1000 }))
        const outcomes = (n: number) =>
          Effect.forEach(
            [1, 2, 3],
            () =>
              Effect.map(cache.getOrResolveWithOutcome(cacheable, { n }), (r) => [r.outcome, r.value.length] as const)
          )
        // 998 + 2 bytes: stored.
        assert.deepStrictEqual(yield* outcomes(9.98), [["miss", 499], ["hit", 499], ["hit", 499]])
        // 1,000 + 2 bytes: never stored, resolved every time, its value returned.
        const before = runs
        assert.deepStrictEqual(yield* outcomes(10), [["miss", 500], ["miss", 500], ["miss", 500]])
        assert.strictEqual(runs - before, 3)
        // `set` does not store it either.
        yield* cache.set(cacheable, { n: 20 }, "x".repeat(2000))
        assert.strictEqual((yield* cache.getOrResolveWithOutcome(cacheable, { n: 20 })).outcome, "miss")
        const counted = yield* Metric.value(ResponseCacheMetrics.forCache(cacheable.name).oversize)
        assert.strictEqual(counted.count, 5)
        const oversize = warnings.filter((w) => /larger than maxEntryBytes/.test(w))
        assert.strictEqual(oversize.length, 1)
      })).pipe(Effect.provide(Logger.layer([logger])))
    })

    it.live("a response schema change is a miss with responseVersion, also when strict; a SerdeError without", () =>
      Effect.scoped(Effect.gen(function*() {
        const prefix = uniqueName("schema")
        const cacheName = uniqueName("schema")
        const V1 = Schema.Struct({ total: Schema.Number })
        const V2 = Schema.Struct({ total: Schema.Number, currency: Schema.String })
        const make = <A, I>(response: Schema.Codec<A, I>, value: A, responseVersion?: true) =>
          Cacheable.make({
            name: cacheName,
            query: Query,
            response,
            namespace: () => "tenant:schema",
            policy: CachePolicy.make({ ttl: "1 minute" }),
            resolve: () => Effect.succeed(value),
            ...(responseVersion ? { responseVersion } : {})
          })
        // One store: two layers over it would be two memory stores, so the memory case shares one instance.
        const cache = yield* build(layerOf({ prefix, strict: true }))
        const outcome = <A>(c: Cacheable.Cacheable<{ readonly n: number }, A>) =>
          Effect.map(cache.getOrResolveWithOutcome(c, { n: 1 }), (r) => r.outcome)

        // Without a fingerprint, the old entry is decoded with the new schema: a SerdeError when strict.
        yield* outcome(make(V1, { total: 1 }))
        const failed = yield* Effect.result(outcome(make(V2, { total: 2, currency: "EUR" })))
        assert.isTrue(Result.isFailure(failed) && failed.failure._tag === "SerdeError")

        // With one, the entry written under V1 has another key: a miss, then a hit of V2's own entry.
        yield* cache.invalidateNamespace("tenant:schema")
        assert.strictEqual(yield* outcome(make(V1, { total: 1 }, true)), "miss")
        const v2 = make(V2, { total: 2, currency: "EUR" }, true)
        assert.deepStrictEqual([yield* outcome(v2), yield* outcome(v2)], ["miss", "hit"])
        // And back: V1's entry is still its own.
        assert.strictEqual(yield* outcome(make(V1, { total: 1 }, true)), "hit")
      })))
  })
}

describe("entries (redis): what stands under an entry key", () => {
  const client = Effect.acquireRelease(Effect.sync(() => new Redis(url)), (c) => Effect.promise(() => c.quit()))

  it.live("a value with no entry envelope is a SerdeError when strict, a miss that is overwritten otherwise", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = uniqueName("corrupt")
      const redis = yield* client
      let runs = 0
      const cacheable = Cacheable.make({
        name: uniqueName("corrupt"),
        query: Query,
        response: Schema.Number,
        namespace: () => "tenant:corrupt",
        policy: CachePolicy.make({ ttl: "1 minute" }),
        resolve: (query) => Effect.sync(() => query.n * 10 + ++runs)
      })
      const over = Layer.provide(IoRedis.layer({ url }))
      const strict = yield* build(ResponseCache.layerRedis({ prefix, strict: true }).pipe(over))
      const lenient = yield* build(ResponseCache.layerRedis({ prefix }).pipe(over))
      const key = yield* CacheKey.make(CacheKey.namespaceKeys(prefix, "tenant:corrupt"), cacheable, { n: 1 })
      assert.strictEqual(yield* strict.getOrResolve(cacheable, { n: 1 }), 11)

      // Garbage over the whole entry.
      yield* Effect.promise(() => redis.set(key.entry, "{\"not\":\"an entry\"}", "PX", 60_000))
      const failed = yield* Effect.result(strict.getOrResolveWithOutcome(cacheable, { n: 1 }))
      assert.isTrue(Result.isFailure(failed) && failed.failure._tag === "SerdeError")
      const got = yield* Effect.result(strict.get(cacheable, { n: 1 }))
      assert.isTrue(Result.isFailure(got) && got.failure._tag === "SerdeError")
      // Lenient: a miss, and the resolve overwrites it.
      assert.deepStrictEqual(yield* lenient.getOrResolveWithOutcome(cacheable, { n: 1 }), {
        value: 12,
        outcome: "miss"
      })
      assert.deepStrictEqual(yield* strict.getOrResolveWithOutcome(cacheable, { n: 1 }), { value: 12, outcome: "hit" })

      // An entry of another generation is no corruption: a plain miss, strict or not.
      yield* Effect.promise(() => redis.set(key.entry, "someOldToken0|0|99", "PX", 60_000))
      assert.deepStrictEqual(yield* strict.getOrResolveWithOutcome(cacheable, { n: 1 }), { value: 13, outcome: "miss" })
    })))
})
