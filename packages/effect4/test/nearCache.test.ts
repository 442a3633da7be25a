/**
 * The near-cache of the Effect 4 package: the conformance suite with it in front, and the Effect 3 package's
 * near-cache coherence tests with the same names (`test/redis.test.ts`, `test/nearCacheReconnect.test.ts`). It
 * runs over the `Redis` service of `IoRedis.layer`, whose connection events it needs; over any other provider the
 * layer refuses it with a `ConfigError` (tested last).
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, inject, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { makeProxy } from "../../../test/support/proxy.js"
import { startRedisServer } from "../../../test/support/redisServer.js"
import { Cacheable, CachePolicy, IoRedis, ResponseCache } from "../src/index.js"
import { conformance, expectLifetimeByPttl, probe, testCommandTimeout, uniqueName } from "./conformance.js"
import { Ledger } from "./support/staleness.js"

const url = inject("redisUrl")

const inspector = Effect.acquireRelease(
  Effect.sync(() => new Redis(url)),
  (client) => Effect.promise(() => client.quit())
)

// The same guarantees with the near-cache in front (entries answered in process, kept coherent over pub/sub).
conformance({
  name: "redis + near-cache via ioredis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) =>
    ResponseCache.layerRedis({
      commandTimeout: testCommandTimeout,
      nearCache: { capacity: 1000, ttl: "1 minute" },
      ...options
    }).pipe(
      Layer.provide(IoRedis.layer({ url }))
    ),
  expectLifetime: expectLifetimeByPttl(inspector)
})

/** A near-cached layer over a provider of its own (a process of its own, as far as Redis can tell). */
const nearLayer = (prefix: string, over = url) =>
  ResponseCache.layerRedis({ prefix, nearCache: { capacity: 100, ttl: "1 minute" } }).pipe(
    Layer.provide(IoRedis.layer({ url: over }))
  )

describe("near-cache (Effect 4)", () => {
  it.live("near-cache: another process stops serving an invalidated entry within the pub/sub window, for good", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("near")
      const a = yield* Layer.build(nearLayer(prefix))
      const b = yield* Layer.build(nearLayer(prefix))
      const { cacheable } = probe()
      const query = { tenant: "n", n: 1 }
      const inB = ResponseCache.getOrResolveWithOutcome(cacheable, query).pipe(Effect.provide(b))
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "miss" })
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "hit" })
      yield* ResponseCache.invalidateNamespace("tenant:n:v1").pipe(Effect.provide(a))
      const invalidated = performance.now()
      let changedAfterMs = Infinity
      let oldAfterChange = 0
      while (performance.now() - invalidated < 600) {
        const { value } = yield* inB
        if (value !== 11 && changedAfterMs === Infinity) changedAfterMs = performance.now() - invalidated
        if (value === 11 && changedAfterMs !== Infinity) oldAfterChange++
        // Let I/O in (Effect.yieldNow mostly stays in microtasks, where no socket is read).
        yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      }
      // The window is the pub/sub delivery time: well under a millisecond on loopback; the bound is loose for a
      // loaded 2-core machine. What must hold exactly is that after the change the old value never comes back.
      assert.isBelow(changedAfterMs, 100)
      assert.strictEqual(oldAfterChange, 0)
      assert.strictEqual((yield* inB).value, 12)
    }).pipe(Effect.scoped))

  it.live("near-cache: an entry is never kept near longer than Redis keeps it", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("nearttl")
      const a = yield* Layer.build(nearLayer(prefix))
      const b = yield* Layer.build(nearLayer(prefix))
      const { cacheable } = probe({ policy: CachePolicy.make({ ttl: 150 }) })
      const query = { tenant: "t", n: 1 }
      const lookupIn = (context: typeof a) =>
        ResponseCache.getOrResolveWithOutcome(cacheable, query).pipe(Effect.provide(context))
      assert.deepStrictEqual(yield* lookupIn(b), { value: 11, outcome: "miss" })
      assert.deepStrictEqual(yield* lookupIn(b), { value: 11, outcome: "hit" })
      // Redis drops the entry; A writes a new one on its miss, which publishes nothing. B must not keep the old.
      yield* Effect.sleep(250)
      assert.deepStrictEqual(yield* lookupIn(a), { value: 12, outcome: "miss" })
      assert.deepStrictEqual(yield* lookupIn(b), { value: 12, outcome: "hit" })
    }).pipe(Effect.scoped))

  it.live("near-cache: `set` and `invalidate` in one process drop the entry near in the other", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("nearset")
      const a = yield* Layer.build(nearLayer(prefix))
      const b = yield* Layer.build(nearLayer(prefix))
      const { cacheable } = probe()
      const query = { tenant: "s", n: 1 }
      const inB = ResponseCache.getOrResolveWithOutcome(cacheable, query).pipe(Effect.provide(b))
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "miss" })
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "hit" })
      yield* ResponseCache.set(cacheable, query, 99).pipe(Effect.provide(a))
      const seen = (value: number) =>
        inB.pipe(
          Effect.tap(() => Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))),
          Effect.repeat({ until: (r) => r.value === value }),
          Effect.timeout("2 seconds")
        )
      assert.strictEqual((yield* seen(99)).outcome, "hit")
      yield* ResponseCache.invalidate(cacheable, query).pipe(Effect.provide(a))
      assert.strictEqual((yield* seen(12)).outcome, "miss")
    }).pipe(Effect.scoped))

  it.live(
    "near-cache: an invalidation made while another process's subscriber reconnects is not missed for good",
    () =>
      Effect.gen(function*() {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (s) => Effect.promise(() => s.stop())
        )
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => makeProxy(redis.port)),
          (p) => Effect.promise(() => p.close())
        )
        const prefix = uniqueName("near")
        const build = (url: string) =>
          Effect.map(
            Layer.build(
              ResponseCache.layerRedis({
                prefix,
                commandTimeout: 200,
                breaker: { failures: 3, cooldown: 50 },
                nearCache: { capacity: 1000, ttl: "30 seconds" }
              }).pipe(Layer.provide(IoRedis.layer({ url, commandTimeout: 200 })))
            ),
            (context) => Context.get(context, ResponseCache.ResponseCache)
          )
        const a = yield* build(redis.url)
        const b = yield* build(`redis://127.0.0.1:${proxy.port}`)
        const ledger = new Ledger()
        const Query = Schema.Struct({ ns: Schema.String, q: Schema.Number })
        const Answer = Schema.Struct({ version: Schema.Number })
        const cacheable = Cacheable.make({
          name: uniqueName("near"),
          query: Query,
          response: Answer,
          namespace: (q) => q.ns,
          policy: CachePolicy.make({ ttl: "1 minute" }),
          resolve: (q) => Effect.sync(() => ({ version: ledger.current(q.ns) }))
        })
        const ns = "ledger"
        const readB = ledger.read(
          ns,
          b.getOrResolveWithOutcome(cacheable, { ns, q: 0 }),
          (r) => ({ version: r.value.version, outcome: r.outcome })
        )
        const trace: Array<string> = []
        const note =
          (label: string) => <E, R>(self: Effect.Effect<ResponseCache.WithOutcome<typeof Answer.Type>, E, R>) =>
            Effect.tap(self, (r) => Effect.sync(() => trace.push(`${label}: v${r.value.version} ${r.outcome}`)))

        yield* readB.pipe(note("warm"))
        yield* readB.pipe(note("warm again"))

        // B loses its connections; its subscriber comes back, but its SUBSCRIBE is slow to reach Redis.
        const { held, release } = proxy.hold()
        proxy.cut()
        yield* Effect.promise(() => held)
        trace.push("B's subscriber reconnected; its SUBSCRIBE is held")
        // B's main connection is back too: B reads the entry from Redis (and may remember it near).
        for (let i = 0; i < 200; i++) {
          const r = yield* readB.pipe(note("B during reconnect"))
          if (r.outcome === "hit") break
          yield* Effect.sleep("10 millis")
        }
        // Process A writes the ledger and invalidates; its invalidation returns.
        assert.isTrue(yield* ledger.write(ns, a.invalidateNamespace(ns)))
        trace.push(`A invalidated; floor now v${ledger.floor(ns)}`)
        yield* readB.pipe(note("B right after A's invalidation"))
        release()
        yield* Effect.sleep("200 millis")
        yield* readB.pipe(note("B 200 ms after its subscription is back"))
        yield* Effect.sleep("1 second")
        yield* readB.pipe(note("B 1.2 s after"))
        if (ledger.stale.length > 0) console.log(trace.join("\n"))
        assert.deepStrictEqual(ledger.stale, [])
      }).pipe(Effect.scoped, Effect.provide(Logger.layer([]))),
    30_000
  )

  it.live("nearCache over a Redis service without connection events fails the layer with a ConfigError", () =>
    Effect.gen(function*() {
      const layer = ResponseCache.layerRedis({ nearCache: { capacity: 100, ttl: "1 minute" } }).pipe(
        Layer.provide(Layer.orDie(NodeRedis.layer({ url })))
      )
      const error = yield* Effect.flip(Effect.provide(ResponseCache.ResponseCache.useSync(() => undefined), layer))
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, `["nearCache"]`)
      assert.include(error.message, "IoRedis.layer")
      // And its settings are checked too, where it is allowed.
      for (
        const [nearCache, setting] of [
          [{ capacity: 0, ttl: "1 minute" }, `["nearCache"]["capacity"]`],
          [{ capacity: 10, ttl: 0 }, `["nearCache"]["ttl"]`]
        ] as const
      ) {
        const refused = yield* Effect.flip(
          Effect.provide(
            ResponseCache.ResponseCache.useSync(() => undefined),
            ResponseCache.layerRedis({ nearCache }).pipe(Layer.provide(IoRedis.layer({ url })))
          )
        )
        assert.include(refused.message, setting)
      }
    }))
})
