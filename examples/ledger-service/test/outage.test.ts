/**
 * The service while its Redis is hung or down, on a redis-server of this file's own (so that it can be stopped):
 * snapshots keep being answered, /health says the cache is unreachable, and a POST whose invalidation fails never
 * lets a stale balance be served — not even once Redis is back with the old entry still in it.
 */
import { assert, describe, it } from "@effect/vitest"
import { RedisError, ResponseCache } from "@ledgerlink/response-cache"
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { type RedisServer, startRedisServer } from "../../../test/support/redisServer.js"
import * as EmbeddedLedger from "../src/LedgerRepo/Embedded.js"
import { cacheOf, freshTenant, post, request, serviceUnderTest, snapshot, uniquePrefix } from "./harness.js"

const ownRedis = (port?: number) =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisServer(port === undefined ? {} : { port })),
    (server) => Effect.promise(() => server.stop())
  )

/** The service on `redis`, with short timeouts so an outage shows within a test's time. */
const serviceOn = (redis: RedisServer) =>
  Layer.build(serviceUnderTest(
    cacheOf(
      "redis",
      ResponseCache.layerRedis({
        url: redis.url,
        prefix: uniquePrefix("outage"),
        commandTimeout: "100 millis",
        circuitBreaker: { failures: 3, cooldown: "100 millis" }
      })
    ),
    EmbeddedLedger.layer()
  ))

/** Reads until `done` says so (a condition, polled; bounded), checking every answer on the way. */
const readUntil = (
  tenant: string,
  asOf: string,
  check: (reply: { readonly status: number; readonly body: any; readonly cache: string | null }) => void,
  done: (cache: string | null) => boolean
) =>
  Effect.gen(function*() {
    const seen: Array<string | null> = []
    for (let i = 0; i < 400; i++) {
      const reply = yield* snapshot(tenant, asOf)
      const cache = reply.headers.get("x-cache")
      seen.push(cache)
      check({ status: reply.status, body: reply.body, cache })
      if (done(cache)) return seen
      yield* Effect.sleep("10 millis")
    }
    return assert.fail(`condition never met; x-cache seen: ${seen.join(",")}`)
  })

/** A cache whose `invalidateNamespace` fails while `failing.on`; every other call goes to the real cache. */
class FailingInvalidations extends Context.Tag("test/service/FailingInvalidations")<
  FailingInvalidations,
  { on: boolean; attempts: number }
>() {}

const failingInvalidations = <E>(inner: Layer.Layer<ResponseCache.ResponseCache, E>) =>
  Layer.effectContext(Effect.gen(function*() {
    const cache = yield* ResponseCache.ResponseCache
    const failing = { on: false, attempts: 0 }
    return Context.make(FailingInvalidations, failing).pipe(Context.add(ResponseCache.ResponseCache, {
      ...cache,
      invalidateNamespace: (namespace) =>
        Effect.suspend(() => {
          failing.attempts++
          return failing.on
            ? Effect.fail(new RedisError({ operation: "invalidateNamespace", cause: "failing on purpose (test)" }))
            : cache.invalidateNamespace(namespace)
        })
    }))
  })).pipe(Layer.provide(inner))

describe("service while Redis is hung or down", () => {
  it.scopedLive(
    "while an invalidation is owed, the tenant's snapshots bypass the cache that holds the old one",
    () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(serviceUnderTest(
          cacheOf("memory", failingInvalidations(ResponseCache.layerMemory())),
          EmbeddedLedger.layer()
        ))
        yield* Effect.gen(function*() {
          const tenant = yield* freshTenant()
          const failing = yield* FailingInvalidations
          assert.strictEqual((yield* snapshot(tenant, "2025-12-31")).headers.get("x-cache"), "miss")
          assert.strictEqual((yield* snapshot(tenant, "2025-12-31")).headers.get("x-cache"), "hit")
          // The cache answers, but invalidations fail: the old snapshot (0 entries) stays in it.
          failing.on = true
          const stored = yield* post(tenant, { account: "cash", amount: "12.34", postedOn: "2025-03-03" })
          assert.strictEqual(stored.status, 503)
          assert.strictEqual(stored.body._tag, "InvalidationPending")
          for (let i = 0; i < 5; i++) {
            const reply = yield* snapshot(tenant, "2025-12-31")
            assert.strictEqual(reply.headers.get("x-cache"), "bypass")
            assert.deepInclude(reply.body, { balance: "12.34", entries: 1 })
          }
          // Another tenant is still served from the cache meanwhile.
          const other = yield* freshTenant()
          yield* snapshot(other, "2025-12-31")
          assert.strictEqual((yield* snapshot(other, "2025-12-31")).headers.get("x-cache"), "hit")
          // Once the background retry gets through, the tenant is cached again, fresh.
          failing.on = false
          const seen = yield* readUntil(tenant, "2025-12-31", (reply) => {
            assert.deepInclude(reply.body, { balance: "12.34", entries: 1 })
          }, (cache) => cache === "hit")
          assert.deepStrictEqual(seen.filter((cache) => cache !== "bypass"), ["miss", "hit"])
        }).pipe(Effect.provide(context))
      }),
    20_000
  )

  it.scopedLive(
    "a POST whose invalidation fails is a 503 with the stored entry; no stale balance is ever served",
    () =>
      Effect.gen(function*() {
        const redis = yield* ownRedis()
        const context = yield* serviceOn(redis)
        yield* Effect.gen(function*() {
          const tenant = yield* freshTenant()
          const first = yield* post(tenant, { account: "cash", amount: "100", postedOn: "2025-01-01" })
          assert.strictEqual(first.status, 201)
          assert.strictEqual((yield* snapshot(tenant, "2025-12-31")).headers.get("x-cache"), "miss")
          assert.strictEqual((yield* snapshot(tenant, "2025-12-31")).headers.get("x-cache"), "hit")

          // Redis hangs: its old entry (balance 100) is still in it.
          redis.process.kill("SIGSTOP")
          const stored = yield* post(tenant, { account: "cash", amount: "0.5", postedOn: "2025-02-01" })
          assert.strictEqual(stored.status, 503)
          assert.strictEqual(stored.body._tag, "InvalidationPending")
          assert.match(stored.body.message, /was stored/)
          assert.deepInclude(stored.body.entry, { tenantId: tenant, amount: "0.5", postedOn: "2025-02-01" })
          const during = yield* snapshot(tenant, "2025-12-31")
          assert.strictEqual(during.status, 200)
          assert.strictEqual(during.headers.get("x-cache"), "bypass")
          assert.deepInclude(during.body, { balance: "100.5", entries: 2 })
          const health = yield* request("GET", "/health")
          assert.strictEqual(health.status, 200)
          assert.deepInclude(health.body, { status: "degraded" })
          assert.deepInclude(health.body.cache, { backend: "redis", reachable: false, status: "degraded" })
          // The cache says why, in Redis's or the socket's words.
          assert.match(health.body.cache.reason, /timed out/)

          // Redis is back with the old entry: every answer stays fresh until the owed invalidation is done, after
          // which the snapshot is resolved again (miss) and cached (hit) — never the old entry's hit.
          redis.process.kill("SIGCONT")
          const seen = yield* readUntil(tenant, "2025-12-31", (reply) => {
            assert.strictEqual(reply.status, 200)
            assert.deepInclude(reply.body, { balance: "100.5", entries: 2 })
          }, (cache) => cache === "hit")
          assert.deepStrictEqual(seen.filter((cache) => cache !== "bypass"), ["miss", "hit"])
        }).pipe(Effect.provide(context))
      }),
    20_000
  )

  it.scopedLive(
    "with Redis down, snapshots and posts are served from the ledger; caching resumes once it is up",
    () =>
      Effect.gen(function*() {
        const redis = yield* ownRedis()
        const context = yield* serviceOn(redis)
        yield* Effect.gen(function*() {
          const tenant = yield* freshTenant()
          yield* Effect.promise(() => redis.stop())
          const read = yield* snapshot(tenant, "2025-12-31")
          assert.strictEqual(read.status, 200)
          assert.strictEqual(read.headers.get("x-cache"), "bypass")
          const health = yield* request("GET", "/health")
          assert.deepInclude(health.body, { status: "degraded" })
          // A purge cannot fail open: a 503 that says the cache is unreachable, without the driver's message.
          const purge = yield* request("DELETE", `/tenants/${tenant}/cache`)
          assert.strictEqual(purge.status, 503)
          assert.strictEqual(purge.body._tag, "CacheUnavailable")
          assert.strictEqual(purge.body.message, "the cache store could not be reached; try again later")
          // The entry is stored; the invalidation is owed (nothing to invalidate in a dead Redis, but it cannot tell).
          const stored = yield* post(tenant, { account: "cash", amount: "7", postedOn: "2025-01-01" })
          assert.strictEqual(stored.status, 503)
          assert.strictEqual(stored.body._tag, "InvalidationPending")
          assert.deepInclude((yield* snapshot(tenant, "2025-12-31")).body, { balance: "7", entries: 1 })

          yield* ownRedis(redis.port)
          yield* readUntil(tenant, "2025-12-31", (reply) => {
            assert.strictEqual(reply.status, 200)
            assert.deepInclude(reply.body, { balance: "7", entries: 1 })
          }, (cache) => cache === "hit")
          const healthy = yield* request("GET", "/health")
          assert.deepInclude(healthy.body, { status: "ok" })
          assert.deepStrictEqual(healthy.body.cache, { backend: "redis", reachable: true, status: "ok" })
        }).pipe(Effect.provide(context))
      }),
    20_000
  )

  it.scopedLive(
    "Redis refuses the password, then goes down: /health says why (WRONGPASS, ECONNREFUSED), never the password",
    () =>
      Effect.gen(function*() {
        const redis = yield* ownRedis()
        // Set after the start: the start-up check PINGs without a password.
        yield* Effect.promise(async () => {
          const admin = new Redis(redis.url)
          await admin.config("SET", "requirepass", "the-right-secret")
          admin.disconnect()
        })
        const context = yield* Layer.build(serviceUnderTest(
          cacheOf(
            "redis",
            ResponseCache.layerRedis({
              url: redis.url,
              prefix: uniquePrefix("auth"),
              redis: { password: "a-wrong-secret" }
            })
          ),
          EmbeddedLedger.layer()
        ))
        yield* Effect.gen(function*() {
          const tenant = yield* freshTenant()
          const read = yield* snapshot(tenant, "2025-12-31")
          assert.strictEqual(read.status, 200)
          assert.strictEqual(read.headers.get("x-cache"), "bypass")
          const health = yield* request("GET", "/health")
          assert.strictEqual(health.status, 200)
          assert.deepInclude(health.body, { status: "degraded" })
          assert.deepInclude(health.body.cache, { backend: "redis", reachable: false, status: "degraded" })
          assert.match(health.body.cache.reason, /WRONGPASS invalid username-password pair/)
          assert.notInclude(JSON.stringify(health.body), "secret")

          yield* Effect.promise(() => redis.stop())
          const down = yield* readUntilHealth((body) => /ECONNREFUSED/.test(body.cache.reason ?? ""))
          assert.match(down.cache.reason, /the Redis connection failed: connect ECONNREFUSED 127\.0\.0\.1:\d+/)
          assert.notInclude(JSON.stringify(down), "secret")
        }).pipe(Effect.provide(context))
      }),
    20_000
  )
})

/** Asks /health until `done` holds of its body (the connection's next failure is reported as it happens). */
const readUntilHealth = (done: (body: any) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const health = yield* request("GET", "/health")
      if (done(health.body)) return health.body
      yield* Effect.sleep("20 millis")
    }
    return assert.fail("/health never said so")
  })
