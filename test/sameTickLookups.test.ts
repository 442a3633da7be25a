import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { Redis } from "ioredis"
import { ResponseCache } from "../src/index.js"
import { probe } from "./conformance.js"
import { startRedisServer } from "./support/redisServer.js"

// A server of its own: the assertions count commands, which other test files would add to on the shared server.
const withServer = <A, E, R>(body: (client: Redis, url: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const server = await startRedisServer()
      return { server, client: new Redis(server.url) }
    }),
    ({ client, server }) => body(client, server.url),
    ({ client, server }) => Effect.promise(() => client.quit().finally(() => server.stop()))
  )

const calls = (client: Redis, command: string) =>
  Effect.promise(async () =>
    Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await client.info("commandstats"))?.[1] ?? 0)
  )

describe("redis layer: lookups of one tick", () => {
  it.live("a stampede's callers that start in the same tick cost Redis one lookup, and one resolve", () =>
    withServer((client, url) =>
      Effect.gen(function*() {
        const { cacheable, state } = probe()
        // The namespace has its generation already, so a lookup is the MGET alone.
        yield* ResponseCache.getOrResolve(cacheable, { tenant: "a", n: 0 })
        yield* Effect.promise(() => client.config("RESETSTAT"))
        // Forked together, the 500 fibers start in one run of the scheduler: one tick.
        const answers = yield* Effect.all(
          Array.from({ length: 500 }, () => ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(yield* calls(client, "mget"), 1)
        assert.strictEqual(state.runs, 2)
        assert.isTrue(answers.every((answer) => answer.value === 12))
        assert.strictEqual(answers.filter((answer) => answer.outcome === "miss").length, 1)

        // Calls one after another (each in a tick of its own, after the previous one's reply) share nothing.
        yield* Effect.promise(() => client.config("RESETSTAT"))
        for (let i = 0; i < 3; i++) {
          assert.deepStrictEqual(yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 }), {
            value: 12,
            outcome: "hit"
          })
        }
        assert.strictEqual(yield* calls(client, "mget"), 3)

        // An invalidation that returned is seen by the very next callers, all of them starting after it.
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        const after = yield* Effect.all(
          Array.from({ length: 100 }, () => ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })),
          { concurrency: "unbounded" }
        )
        assert.isTrue(after.every((answer) => answer.value === 13))
        assert.strictEqual(state.runs, 3)
      }).pipe(Effect.provide(ResponseCache.layerRedis({ url })))
    ))

  it.live("lookups made in separate callbacks of one event-loop turn, as a server's requests are, share one write", () =>
    withServer((client, url) =>
      Effect.gen(function*() {
        const { cacheable } = probe()
        yield* ResponseCache.getOrResolve(cacheable, { tenant: "b", n: 1 })
        yield* Effect.promise(() => client.config("RESETSTAT"))
        const run = Runtime.runPromise(yield* Effect.runtime<ResponseCache.ResponseCache>())
        const lookup = () => run(ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "b", n: 1 }))
        // Two timers due together run in one timers phase, each a callback of its own with its own ticks.
        const answers = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 2 }, () => new Promise((resolve) => setTimeout(() => resolve(lookup()), 0))))
        )
        assert.deepStrictEqual(answers, [{ value: 11, outcome: "hit" }, { value: 11, outcome: "hit" }])
        assert.strictEqual(yield* calls(client, "mget"), 1)
      }).pipe(Effect.provide(ResponseCache.layerRedis({ url })))
    ))
})
