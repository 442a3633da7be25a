/**
 * Near-cache coherence across a reconnect of the subscriber: an invalidation made while the subscriber is back
 * but not yet resubscribed must not be missed.
 */
import { assert, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { uniqueName } from "./conformance.js"
import { makeProxy } from "./support/proxy.js"
import { startRedisServer } from "./support/redisServer.js"
import { Ledger } from "./support/staleness.js"

const Query = Schema.Struct({ ns: Schema.String, q: Schema.Number })
const Answer = Schema.Struct({ version: Schema.Number })

it.scopedLive(
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
          Layer.build(ResponseCache.layerRedis({
            url,
            prefix,
            commandTimeout: 200,
            circuitBreaker: { failures: 3, cooldown: 50 },
            nearCache: { capacity: 1000, ttl: "30 seconds" }
          })),
          (context) => Context.get(context, ResponseCache.ResponseCache)
        )
      const a = yield* build(redis.url)
      const b = yield* build(`redis://127.0.0.1:${proxy.port}`)
      const ledger = new Ledger()
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
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))),
  30_000
)
