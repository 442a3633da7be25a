import { assert, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"

// Regression: a joiner was counted a step after it found the flight; a yield in between let the last other waiter,
// interrupted meanwhile, take the resolve down and leave the joiner waiting forever.
it.live("a caller that joins a flight while its last waiter is interrupted never hangs", () =>
  Effect.gen(function*() {
    const hangs: Array<number> = []
    for (let y = 10; y <= 60; y++) {
      for (let k = 0; k < 8; k++) {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        let runs = 0
        const c = Cacheable.make({
          name: `race${y}x${k}`,
          query: Schema.Struct({ n: Schema.Number }),
          response: Schema.Number,
          namespace: () => "ns",
          policy: CachePolicy.short,
          resolve: (q) =>
            Effect.sync(() => runs++).pipe(
              Effect.zipRight(
                Deferred.succeed(started, void 0).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(q.n))
              )
            )
        })
        const outcome = yield* Effect.gen(function*() {
          const cache = yield* ResponseCache.ResponseCache
          const leader = yield* Effect.fork(cache.getOrResolve(c, { n: 1 }))
          yield* Deferred.await(started)
          const joiner = yield* Effect.fork(
            cache.getOrResolve(c, { n: 1 }).pipe(Effect.locally(FiberRef.currentMaxOpsBeforeYield, y))
          )
          for (let i = 0; i < k; i++) yield* Effect.yieldNow()
          yield* Fiber.interrupt(leader)
          yield* Deferred.succeed(gate, void 0)
          const joined = yield* Effect.timeoutOption(Fiber.join(joiner), "300 millis")
          const inFlight = yield* cache.inFlight
          const status = yield* Fiber.status(joiner)
          if (Option.isNone(joined)) {
            console.log("hang at", { yieldBudget: y, yields: k, inFlight, status: status._tag, runs })
          }
          return { joined, inFlight }
        }).pipe(Effect.provide(ResponseCache.layerMemory()))
        if (Option.isNone(outcome.joined)) hangs.push(y * 100 + k)
      }
    }
    assert.deepStrictEqual(hangs, [])
  }), 60_000)
