/**
 * `confirmInvalidation` on a primary and its replica, over both providers of Effect's `Redis` service: the
 * invalidation (the wire package's DEL) and its WAIT go over a reserved connection. The Effect 3 package's
 * `test/failover.test.ts` scenarios of the same names, in Effect 4.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import * as Schema from "effect/Schema"
import { Redis as IORedis } from "ioredis"
import { startRedisServer } from "../../../test/support/redisServer.js"
import { Cacheable, CacheKey, CachePolicy, IoRedis, ResponseCache } from "../src/index.js"

const cacheable = Cacheable.make({
  name: "confirm",
  query: Schema.Struct({ n: Schema.Number }),
  response: Schema.Number,
  namespace: () => "tenant:confirm",
  policy: CachePolicy.make({ ttl: "1 minute" }),
  resolve: (query) => Effect.succeed(query.n)
})

const providers: ReadonlyArray<readonly [string, (url: string) => Layer.Layer<Redis.Redis>]> = [
  ["NodeRedis", (url) => Layer.orDie(NodeRedis.layer({ url }))],
  ["ioredis", (url) => IoRedis.layer({ url })]
]

const client = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new IORedis(url)), (client) => Effect.promise(() => client.quit()))

for (const [provider, redisOn] of providers) {
  describe(`confirmInvalidation on a primary and its replica (${provider})`, () => {
    const servers = Effect.acquireRelease(
      Effect.promise(async () => {
        const primary = await startRedisServer({ args: ["--repl-diskless-sync-delay", "0"] })
        const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] })
        return { primary, replica }
      }),
      ({ primary, replica }) => Effect.promise(() => Promise.all([replica.stop(), primary.stop()]))
    )
    const cacheOn = (url: string, timeout: Duration.Input) =>
      Effect.map(
        Layer.build(
          ResponseCache.layerRedis({ prefix: "confirm", confirmInvalidation: { replicas: 1, timeout } }).pipe(
            Layer.provide(redisOn(url))
          )
        ),
        (context) => Context.get(context, ResponseCache.ResponseCache)
      )

    it.live(
      "an invalidation returns once the replica has it; without a replica it fails, naming WAIT",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { primary, replica } = yield* servers
          const cache = yield* cacheOn(primary.url, "2 seconds")
          const onReplica = yield* client(replica.url)
          const generation = CacheKey.namespaceKeys("confirm", "tenant:confirm").generation
          yield* cache.getOrResolve(cacheable, { n: 1 })
          // Wait for the generation to reach the replica, so that its absence afterwards is the invalidation's doing.
          while ((yield* Effect.promise(() => onReplica.get(generation))) === null) yield* Effect.sleep("5 millis")
          yield* cache.invalidateNamespace("tenant:confirm")
          // Returned: the replica has the invalidation already.
          assert.isNull(yield* Effect.promise(() => onReplica.get(generation)))

          // Now with no replica to acknowledge.
          yield* Effect.promise(() => onReplica.replicaof("NO", "ONE"))
          const alone = yield* cacheOn(primary.url, "100 millis")
          const error = yield* Effect.flip(alone.invalidateNamespace("tenant:confirm"))
          assert.strictEqual(error._tag, "RedisError")
          assert.strictEqual(error._tag === "RedisError" ? error.operation : undefined, "invalidateNamespace")
          assert.match(error.message, /0 of 1 replicas acknowledged/)
          const purge = yield* Effect.flip(alone.purgeNamespace("tenant:confirm"))
          assert.match(purge.message, /0 of 1 replicas acknowledged/)
        })),
      30_000
    )

    it.live(
      "a WAIT longer than commandTimeout is waited out, and its answer is what fails the call",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const primary = yield* Effect.acquireRelease(
            Effect.promise(() => startRedisServer()),
            (server) => Effect.promise(() => server.stop())
          )
          // commandTimeout 500 ms (the default), WAIT 1.2 s, no replica: WAIT answers 0 when its time is up.
          const cache = yield* cacheOn(primary.url, "1200 millis")
          const started = Date.now()
          const error = yield* Effect.flip(cache.invalidateNamespace("tenant:confirm"))
          assert.match(error.message, /0 of 1 replicas acknowledged/)
          assert.isAtLeast(Date.now() - started, 1000)
        })),
      30_000
    )

    it.live("hits and misses never queue behind a WAIT", () =>
      Effect.scoped(Effect.gen(function*() {
        const primary = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (server) => Effect.promise(() => server.stop())
        )
        const cache = yield* cacheOn(primary.url, "10 seconds")
        const inspector = yield* client(primary.url)
        yield* cache.getOrResolve(cacheable, { n: 1 })
        // No replica: this WAIT blocks its connection for its whole timeout.
        const invalidation = yield* Effect.forkChild(cache.invalidateNamespace("tenant:confirm"))
        while (!/cmd=wait/.test(yield* Effect.promise(() => inspector.client("LIST") as Promise<string>))) {
          yield* Effect.sleep("5 millis")
        }
        const outcomes = yield* Effect.forEach([1, 2, 3, 1, 2, 3], (n) =>
          Effect.map(cache.getOrResolveWithOutcome(cacheable, { n }), (result) => result.outcome))
        // All answered by Redis (a fresh generation, then entries of it) while the WAIT still blocks.
        assert.deepStrictEqual(outcomes, ["miss", "miss", "miss", "hit", "hit", "hit"])
        assert.isUndefined(invalidation.pollUnsafe())
        yield* Fiber.interrupt(invalidation)
      })), 30_000)
  })
}

describe("confirmInvalidation: unusable settings", () => {
  it.live("replicas and timeout are checked when the layer is built, with a ConfigError naming the setting", () =>
    Effect.gen(function*() {
      for (
        const [confirmInvalidation, setting] of [
          [{ replicas: 0, timeout: "1 second" }, `["confirmInvalidation"]["replicas"]`],
          [{ replicas: 1.5, timeout: "1 second" }, `["confirmInvalidation"]["replicas"]`],
          [{ replicas: 1, timeout: Duration.zero }, `["confirmInvalidation"]["timeout"]`],
          [{ replicas: 1, timeout: Duration.infinity }, `["confirmInvalidation"]["timeout"]`]
        ] as const
      ) {
        const error = yield* Effect.flip(
          ResponseCache.ResponseCache.useSync(() => undefined).pipe(
            Effect.provide(
              ResponseCache.layerRedis({ confirmInvalidation }).pipe(
                Layer.provide(IoRedis.layer({ url: "redis://127.0.0.1:1" }))
              )
            )
          )
        )
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.message, setting)
      }
    }))
})
