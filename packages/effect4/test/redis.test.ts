import { NodeRedis } from "@effect/platform-node"
import { assert, describe, inject, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Redis } from "ioredis"
import { startRedisServer } from "../../../test/support/redisServer.js"
import { IoRedis, ResponseCache } from "../src/index.js"
import { conformance, expectLifetimeByPttl, probe, testCommandTimeout, uniqueName } from "./conformance.js"

const url = inject("redisUrl")

/** A plain client on the tests' own server, to look at what the cache wrote. */
const inspector = Effect.acquireRelease(
  Effect.sync(() => new Redis(url)),
  (client) => Effect.promise(() => client.quit())
)

const expectLifetime = expectLifetimeByPttl(inspector)

// Effect's own Redis service from @effect/platform-node (node-redis).
conformance({
  name: "redis via NodeRedis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) =>
    ResponseCache.layerRedis({ commandTimeout: testCommandTimeout, ...options }).pipe(
      Layer.provide(Layer.orDie(NodeRedis.layer({ url })))
    ),
  expectLifetime
})

// The same service over ioredis.
conformance({
  name: "redis via ioredis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) =>
    ResponseCache.layerRedis({ commandTimeout: testCommandTimeout, ...options }).pipe(
      Layer.provide(IoRedis.layer({ url }))
    ),
  expectLifetime
})

describe("redis layer (Effect 4)", () => {
  it.live("layerRedisConfig reads its settings from the application's Config", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("config")
      const { cacheable } = probe()
      const layer = ResponseCache.layerRedisConfig({
        prefix: Config.String("CACHE_PREFIX"),
        commandTimeout: Config.Duration("CACHE_COMMAND_TIMEOUT")
      }).pipe(
        Layer.provide(IoRedis.layer({ url })),
        Layer.provide(ConfigProvider.layer(
          ConfigProvider.fromUnknown({ CACHE_PREFIX: prefix, CACHE_COMMAND_TIMEOUT: "2 seconds" })
        ))
      )
      assert.strictEqual(
        (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 }).pipe(Effect.provide(layer)))
          .outcome,
        "miss"
      )
      // Written under the configured prefix.
      const keys = yield* Effect.scoped(
        Effect.flatMap(inspector, (client) => Effect.promise(() => client.keys(`${prefix}:*`)))
      )
      assert.strictEqual(keys.length, 3)
    }))

  it.live("builds while Redis is down, answers from the resolver (bypass), and caches once Redis is back", () =>
    Effect.gen(function*() {
      const server = yield* Effect.promise(() => startRedisServer())
      yield* Effect.promise(() => server.stop())
      const { cacheable, state } = probe()
      const layer = ResponseCache.layerRedis({ prefix: uniqueName("down"), breaker: false }).pipe(
        Layer.provide(IoRedis.layer({ url: server.url }))
      )
      yield* Effect.gen(function*() {
        const down = yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })
        assert.deepStrictEqual(down, { value: 11, outcome: "bypass" })
        const strict = yield* Effect.flip(
          ResponseCache.invalidateNamespace("tenant:a:v1")
        )
        assert.strictEqual(strict._tag, "RedisError")
        const back = yield* Effect.promise(() => startRedisServer({ port: server.port }))
        yield* Effect.addFinalizer(() => Effect.promise(() => back.stop()))
        // The client reconnects by itself: poll until a lookup is cached again.
        const outcome = yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 2 }).pipe(
          Effect.map((r) => r.outcome),
          Effect.tap(() => Effect.sleep(50)),
          Effect.repeat({ until: (outcome) => outcome === "miss" })
        )
        assert.strictEqual(outcome, "miss")
        assert.strictEqual(
          (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 2 })).outcome,
          "hit"
        )
        assert.isAtLeast(state.runs, 2)
      }).pipe(Effect.provide(layer), Effect.scoped)
    }))

  it.live("every store call is bounded by commandTimeout: a hung Redis costs the caller that, not a hang", () =>
    Effect.gen(function*() {
      const server = yield* Effect.promise(() => startRedisServer())
      yield* Effect.addFinalizer(() => Effect.promise(() => server.stop()))
      const { cacheable } = probe()
      yield* Effect.gen(function*() {
        assert.strictEqual(
          (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })).outcome,
          "miss"
        )
        // SIGSTOP: the connection stays open and nothing answers.
        server.process.kill("SIGSTOP")
        const hung = yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })
        assert.deepStrictEqual(hung, { value: 12, outcome: "bypass" })
        const error = yield* Effect.flip(ResponseCache.invalidateNamespace("tenant:a:v1"))
        assert.strictEqual(error._tag === "RedisError" && error.operation, "invalidateNamespace")
      }).pipe(
        // Woken before the layer closes: node-redis' close waits for the commands in flight.
        Effect.ensuring(Effect.sync(() => server.process.kill("SIGCONT"))),
        Effect.provide(
          ResponseCache.layerRedis({ prefix: uniqueName("hung"), commandTimeout: "200 millis", breaker: false }).pipe(
            Layer.provide(Layer.orDie(NodeRedis.layer({ url: server.url })))
          )
        )
      )
    }))

  it.live("the breaker opens after consecutive store failures and stops calling Redis meanwhile", () =>
    Effect.gen(function*() {
      const server = yield* Effect.promise(() => startRedisServer())
      yield* Effect.addFinalizer(() => Effect.promise(() => server.stop()))
      const { cacheable } = probe()
      yield* Effect.gen(function*() {
        server.process.kill("SIGSTOP")
        for (let i = 0; i < 2; i++) {
          const error = yield* Effect.flip(ResponseCache.invalidateNamespace("tenant:a:v1"))
          assert.match(error.message, /no answer within/)
        }
        // Open: the third call fails at once, without reaching the store.
        const open = yield* Effect.flip(ResponseCache.invalidateNamespace("tenant:a:v1"))
        assert.match(open.message, /circuit open/)
        assert.strictEqual(
          (yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })).outcome,
          "bypass"
        )
      }).pipe(
        Effect.ensuring(Effect.sync(() => server.process.kill("SIGCONT"))),
        Effect.provide(
          ResponseCache.layerRedis({
            prefix: uniqueName("breaker"),
            commandTimeout: "100 millis",
            breaker: { failures: 2, cooldown: "1 minute" }
          }).pipe(Layer.provide(IoRedis.layer({ url: server.url })))
        )
      )
    }))
})
