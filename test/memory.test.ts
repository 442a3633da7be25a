import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as MemoryStore from "../src/CacheStore/Memory.js"
import { CachePolicy, CacheStore, ResponseCache } from "../src/index.js"
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

describe("a store of one's own", () => {
  it.effect("ResponseCache.layer runs the engine over whatever CacheStore the context provides", () => {
    const writes: Array<string> = []
    const inner = MemoryStore.make({ capacity: 100 })
    // A backend written outside the package: here, one that records what it is asked to store.
    const recording = Layer.succeed(CacheStore.CacheStore, {
      ...inner,
      write: (key, write) => {
        writes.push(write.payload)
        return inner.write(key, write)
      }
    })
    return Effect.gen(function*() {
      const { cacheable, state } = probe()
      assert.strictEqual(
        (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 7 })).outcome,
        "miss"
      )
      assert.strictEqual(
        (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 7 })).outcome,
        "hit"
      )
      assert.deepStrictEqual(writes, ["71"]) // n × 10 + run 1
      assert.strictEqual(state.runs, 1)
    }).pipe(Effect.provide(ResponseCache.layer({ prefix: "own" }).pipe(Layer.provide(recording))))
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

  it.effect("rejects an unusable prefix or capacity when the layer is built", () =>
    Effect.gen(function*() {
      for (
        const [layer, setting] of [
          [ResponseCache.layerMemory({ prefix: "has space" }), "prefix"],
          [ResponseCache.layerMemory({ prefix: "{tag}" }), "prefix"],
          [ResponseCache.layerMemory({ capacity: 0 }), "capacity"]
        ] as const
      ) {
        // A typed ConfigError at the setting's path, whose message names it: not a defect.
        const error = yield* Effect.flip(Effect.provide(ResponseCache.ResponseCache, layer))
        assert.strictEqual(error._op, "InvalidData")
        assert.deepStrictEqual(error._op === "InvalidData" && error.path, [setting])
        assert.include(String(error), setting)
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
