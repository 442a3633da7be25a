import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/testing/TestClock"
import { CachePolicy, ResponseCache } from "../src/index.js"
import { conformance, probe } from "./conformance.js"

conformance({
  name: "memory",
  live: false,
  advance: (ms) => TestClock.adjust(ms),
  layer: (options) => ResponseCache.layerMemory(options),
  expectLifetime: ({ jitter, lookup, ttlMs }) =>
    Effect.gen(function*() {
      assert.strictEqual((yield* lookup).outcome, "miss")
      // Jitter only shortens: the entry lives at least ttl × (1 − jitter) and never past ttl.
      yield* TestClock.adjust(Math.floor(ttlMs * (1 - jitter)) - 1)
      assert.strictEqual((yield* lookup).outcome, "hit")
      yield* TestClock.adjust(ttlMs - Math.floor(ttlMs * (1 - jitter)) + 1)
      assert.strictEqual((yield* lookup).outcome, "miss")
    })
})

describe("memory layer", () => {
  it.effect("keeps at most `capacity` entries, evicting the least recently used", () =>
    Effect.gen(function*() {
      const { cacheable, state } = probe()
      const lookup = (n: number) =>
        Effect.map(ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n }), (r) => r.outcome)
      yield* lookup(1)
      yield* lookup(2)
      yield* lookup(3)
      assert.strictEqual(yield* lookup(1), "hit") // 1 is now the most recently used
      yield* lookup(4) // evicts 2
      assert.strictEqual(yield* lookup(1), "hit")
      assert.strictEqual(yield* lookup(3), "hit")
      assert.strictEqual(yield* lookup(2), "miss")
      assert.strictEqual(state.runs, 5)
    }).pipe(Effect.provide(ResponseCache.layerMemory({ capacity: 3 }))))

  it.effect("rejects an unusable prefix, capacity or maxEntryBytes with a ConfigError naming the setting", () =>
    Effect.gen(function*() {
      for (
        const [layer, setting] of [
          [ResponseCache.layerMemory({ prefix: "has space" }), "prefix"],
          [ResponseCache.layerMemory({ prefix: "{tag}" }), "prefix"],
          [ResponseCache.layerMemory({ capacity: 0 }), "capacity"],
          [ResponseCache.layerMemory({ maxEntryBytes: 0 }), "maxEntryBytes"],
          [ResponseCache.layerMemory({ maxEntryBytes: 1.5 }), "maxEntryBytes"]
        ] as const
      ) {
        const error = yield* Effect.flip(Effect.provide(ResponseCache.ResponseCache.useSync(() => undefined), layer))
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, `["${setting}"]`)
      }
    }))

  it.effect("a policy can depend on the query", () =>
    Effect.gen(function*() {
      const { cacheable } = probe()
      const byTenant = {
        ...cacheable,
        policy: (q: { tenant: string }) => CachePolicy.make({ ttl: q.tenant === "a" ? 1000 : 5000 })
      }
      yield* ResponseCache.getOrResolve(byTenant, { tenant: "a", n: 1 })
      yield* ResponseCache.getOrResolve(byTenant, { tenant: "b", n: 1 })
      yield* TestClock.adjust(2000)
      assert.strictEqual(
        (yield* ResponseCache.getOrResolveWithOutcome(byTenant, { tenant: "a", n: 1 })).outcome,
        "miss"
      )
      assert.strictEqual((yield* ResponseCache.getOrResolveWithOutcome(byTenant, { tenant: "b", n: 1 })).outcome, "hit")
    }).pipe(Effect.provide(ResponseCache.layerMemory())))
})
