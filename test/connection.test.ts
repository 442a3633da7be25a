/**
 * Connection options on real servers the tests start: TLS with a CA of the test's own passed as an option (no
 * NODE_EXTRA_CA_CERTS), mTLS, a TLS cluster (`tls-cluster yes`), Sentinel with a failover under load; and every
 * unusable setting failing the layer's construction with a typed error that names it.
 */
import { afterAll, assert, beforeAll, describe, inject, it } from "@effect/vitest"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Redis } from "ioredis"
import { fileURLToPath } from "node:url"
import * as RedisStore from "../src/CacheStore/Redis.js"
import { CacheStore, ResponseCache } from "../src/index.js"
import { probe, uniqueName } from "./conformance.js"
import { startRedisCluster } from "./support/redisCluster.js"
import { startRedisSentinel } from "./support/redisSentinel.js"
import { type RedisServer, startRedisServer } from "./support/redisServer.js"
import { makeCertificates, type TestCertificates } from "./support/tls.js"

const url = inject("redisUrl")

/** The layer's construction error: a ConfigError, InvalidData at `path`, with a message naming the setting. */
const expectInvalid = (
  layer: Layer.Layer<ResponseCache.ResponseCache, ConfigError.ConfigError>,
  path: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(Effect.provide(ResponseCache.ResponseCache, layer))
    assert.strictEqual(error._tag, "ConfigError")
    assert.strictEqual(error._op, "InvalidData", String(error))
    if (error._op === "InvalidData") {
      assert.deepStrictEqual(error.path, path)
      assert.include(error.message, path.at(-1)!)
    }
    return String(error)
  })

/** miss, then hit, on a fresh namespace of `layer`. */
const missThenHit = (layer: Layer.Layer<ResponseCache.ResponseCache, ConfigError.ConfigError>) =>
  Effect.gen(function*() {
    const { cacheable } = probe()
    const query = { tenant: uniqueName("t"), n: 1 }
    const first = yield* ResponseCache.getOrResolveWithOutcome(cacheable, query)
    const second = yield* ResponseCache.getOrResolveWithOutcome(cacheable, query)
    return [first.outcome, second.outcome]
  }).pipe(Effect.provide(layer))

describe("unusable settings fail the layer's construction with a typed error naming the setting", () => {
  it.live("URL, database, commandTimeout, prefix, near-cache capacity", () =>
    Effect.gen(function*() {
      // The message never repeats a URL (it may hold a password).
      const notAUrl = yield* expectInvalid(ResponseCache.layerRedis({ url: "not a url" }), ["url"])
      assert.notInclude(notAUrl, "not a url")
      yield* expectInvalid(ResponseCache.layerRedis({ url: "http://127.0.0.1:1" }), ["url"])
      yield* expectInvalid(ResponseCache.layerRedis({ url: "redis://127.0.0.1:1/abc" }), ["url"])
      yield* expectInvalid(ResponseCache.layerRedis({ url, commandTimeout: 0 }), ["commandTimeout"])
      yield* expectInvalid(ResponseCache.layerRedis({ url, commandTimeout: -5 }), ["commandTimeout"])
      yield* expectInvalid(ResponseCache.layerRedis({ url, prefix: "a b" }), ["prefix"])
      yield* expectInvalid(
        ResponseCache.layerRedis({ url, nearCache: { capacity: 0, ttl: "1 minute" } }),
        ["nearCache", "capacity"]
      )
      yield* expectInvalid(ResponseCache.layerRedisCluster({ nodes: ["nope"] }), ["nodes", "0"])
      // A database the server does not have: Redis refuses the SELECT, and ioredis alone would go on in db 0.
      const db = yield* expectInvalid(ResponseCache.layerRedis({ url: `${url}/99` }), ["url"])
      assert.include(db, "DB index is out of range")
    }))

  it.live("ioredis options the guarantees rest on stay the cache's; reads stay on primaries", () =>
    Effect.gen(function*() {
      yield* expectInvalid(ResponseCache.layerRedis({ url, redis: { enableOfflineQueue: true } }), [
        "redis",
        "enableOfflineQueue"
      ])
      yield* expectInvalid(ResponseCache.layerRedis({ url, redis: { maxRetriesPerRequest: 3 } }), [
        "redis",
        "maxRetriesPerRequest"
      ])
      yield* expectInvalid(ResponseCache.layerRedis({ url, redis: { keyPrefix: "x:" } }), ["redis", "keyPrefix"])
      yield* expectInvalid(ResponseCache.layerRedis({ redis: { sentinels: [{ host: "127.0.0.1", port: 1 }] } }), [
        "redis",
        "name"
      ])
      yield* expectInvalid(ResponseCache.layerRedisCluster({ nodes: [url], cluster: { scaleReads: "slave" } }), [
        "cluster",
        "scaleReads"
      ])
    }))

  it.live("from Config: a URL that does not parse, a TLS file that cannot be read", () =>
    Effect.gen(function*() {
      const layer = ResponseCache.layerRedisConfig({
        url: Config.redacted("REDIS_URL"),
        tls: { ca: Config.string("REDIS_CA_FILE") }
      })
      const provide = (entries: Array<[string, string]>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
      yield* expectInvalid(layer, ["url"]).pipe(
        provide([["REDIS_URL", "not a url"], ["REDIS_CA_FILE", fileURLToPath(import.meta.url)]])
      )
      const file = yield* expectInvalid(layer, ["tls", "ca"]).pipe(
        provide([["REDIS_URL", url], ["REDIS_CA_FILE", "/nonexistent/ca.pem"]])
      )
      assert.include(file, "/nonexistent/ca.pem")
    }))
})

describe("TLS", () => {
  let certificates: TestCertificates
  let server: RedisServer
  let mutual: RedisServer
  beforeAll(async () => {
    certificates = makeCertificates()
    server = await startRedisServer({ tls: certificates })
    mutual = await startRedisServer({ tls: certificates, requireClientCert: true })
  })
  afterAll(async () => {
    await Promise.allSettled([server?.stop(), mutual?.stop()])
    certificates?.remove()
  })

  it.live("a self-signed CA passed as an option", () =>
    Effect.gen(function*() {
      const layer = ResponseCache.layerRedis({ url: server.url, redis: { tls: { ca: certificates.ca } } })
      assert.deepStrictEqual(yield* missThenHit(layer), ["miss", "hit"])
      // The same from Config, the CA read from its file.
      const fromConfig = ResponseCache.layerRedisConfig({
        url: Config.string("REDIS_URL"),
        tls: { ca: Config.string("REDIS_CA_FILE") }
      })
      const provider = ConfigProvider.fromMap(
        new Map([["REDIS_URL", server.url], ["REDIS_CA_FILE", certificates.files.ca]])
      )
      assert.deepStrictEqual(yield* missThenHit(fromConfig).pipe(Effect.withConfigProvider(provider)), ["miss", "hit"])
    }))

  it.live("mTLS: without a client certificate every call fails; with one the cache works", () =>
    Effect.gen(function*() {
      const { cacheable } = probe()
      const without = ResponseCache.layerRedis({
        url: mutual.url,
        strict: true,
        redis: { tls: { ca: certificates.ca } }
      })
      const failed = yield* Effect.flip(
        ResponseCache.getOrResolve(cacheable, { tenant: "a", n: 1 }).pipe(Effect.provide(without))
      )
      assert.strictEqual(failed._tag, "RedisError")
      const withCert = ResponseCache.layerRedisConfig({
        url: Config.string("REDIS_URL"),
        tls: { ca: Config.string("CA"), cert: Config.string("CERT"), key: Config.string("KEY") }
      })
      const provider = ConfigProvider.fromMap(
        new Map([
          ["REDIS_URL", mutual.url],
          ["CA", certificates.files.ca],
          ["CERT", certificates.files.clientCert],
          ["KEY", certificates.files.clientKey]
        ])
      )
      assert.deepStrictEqual(yield* missThenHit(withCert).pipe(Effect.withConfigProvider(provider)), ["miss", "hit"])
    }))

  it.live(
    "a TLS cluster (tls-cluster yes): rediss:// nodes are connected over TLS, discovered ones too",
    () =>
      Effect.gen(function*() {
        const cluster = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisCluster({ tls: certificates })),
          (cluster) => Effect.promise(() => cluster.stop())
        )
        // One startup node: the other five are discovered from CLUSTER SLOTS, and reached over TLS as well.
        const layer = ResponseCache.layerRedisCluster({
          nodes: [cluster.nodes[0]!],
          redis: { tls: { ca: certificates.ca } }
        })
        const { cacheable, state } = probe()
        const results = yield* Effect.gen(function*() {
          const outcomes: Array<string> = []
          // Ten namespaces: they spread over the three primaries.
          for (let i = 0; i < 10; i++) {
            outcomes.push((yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: `t${i}`, n: 1 })).outcome)
            outcomes.push((yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: `t${i}`, n: 1 })).outcome)
          }
          const purged = yield* ResponseCache.purgeNamespace("tenant:t0:v1")
          return { outcomes, purged }
        }).pipe(Effect.provide(layer))
        assert.deepStrictEqual(results.outcomes, Array.from({ length: 10 }, () => ["miss", "hit"]).flat())
        assert.strictEqual(results.purged, 1)
        assert.strictEqual(state.runs, 10)
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("Sentinel", () => {
  it.live(
    "miss → hit, invalidate, purge; the primary SIGKILLed under load: calls stay bounded, caching resumes on the promoted replica",
    () =>
      Effect.gen(function*() {
        const sentinel = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisSentinel()),
          (sentinel) => Effect.promise(() => sentinel.stop())
        )
        const context = yield* Layer.build(ResponseCache.layerRedis({
          commandTimeout: 200,
          circuitBreaker: { failures: 3, cooldown: 100 },
          redis: { sentinels: [...sentinel.sentinels], name: sentinel.name }
        }))
        const { cacheable, state } = probe()
        const call = (tenant: string, n: number) =>
          ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n }).pipe(
            Effect.provide(context),
            // The boundedness check: a generous bound, not a speed test.
            Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error(`unbounded call ${tenant}/${n}`) })
          )
        const outcome = (tenant: string, n: number) => Effect.map(call(tenant, n), (r) => r.outcome)
        const inContext = <A, E>(effect: Effect.Effect<A, E, ResponseCache.ResponseCache>) =>
          Effect.provide(effect, context)

        assert.deepStrictEqual([yield* outcome("a", 1), yield* outcome("a", 1)], ["miss", "hit"])
        yield* inContext(ResponseCache.invalidateNamespace("tenant:a:v1"))
        assert.deepStrictEqual([yield* outcome("a", 1), yield* outcome("a", 1)], ["miss", "hit"])
        assert.strictEqual(yield* inContext(ResponseCache.purgeNamespace("tenant:a:v1")), 1)
        assert.strictEqual(yield* outcome("a", 1), "miss")

        // Load on 20 keys while the primary dies: every call answers within its bound (from the resolver meanwhile).
        const primary = yield* Effect.promise(() => sentinel.primary())
        const load = Effect.forEach(Array.from({ length: 400 }, (_, i) => i), (i) => outcome("b", i % 20), {
          concurrency: 10
        })
        const killed = Effect.sleep("50 millis").pipe(
          Effect.zipRight(Effect.sync(() => primary.process.kill("SIGKILL")))
        )
        const [outcomes] = yield* Effect.all([load, killed], { concurrency: "unbounded" })
        assert.strictEqual(outcomes.length, 400)
        assert.isTrue(outcomes.includes("bypass"), "the kill was seen by the load")
        const promoted = yield* Effect.promise(() => sentinel.waitForFailover(primary))
        assert.notStrictEqual(promoted, primary)

        // Caching resumes on the promoted replica without rebuilding the layer: a fresh key misses, then hits.
        const deadline = Date.now() + 15_000
        let resumed: Array<string> = []
        for (let n = 0; Date.now() < deadline; n++) {
          resumed = [yield* outcome("c", n), yield* outcome("c", n)]
          if (resumed[0] === "miss" && resumed[1] === "hit") break
          yield* Effect.sleep("50 millis")
        }
        assert.deepStrictEqual(resumed, ["miss", "hit"])
        assert.isAbove(state.runs, 3)
      }).pipe(Effect.scoped),
    60_000
  )
})

// Keeps the imports of the store's own layers honest: its Config layer takes the same settings.
describe("CacheStore/Redis", () => {
  it.live("layerConfig: the store on its own, its settings from Config", () =>
    Effect.gen(function*() {
      const store = RedisStore.layerConfig({ url: Config.string("REDIS_URL"), prefix: Config.string("PREFIX") })
      const prefix = uniqueName("store")
      const layer = ResponseCache.layer({ prefix }).pipe(Layer.provide(store))
      const provider = ConfigProvider.fromMap(new Map([["REDIS_URL", url], ["PREFIX", prefix]]))
      assert.deepStrictEqual(yield* missThenHit(layer).pipe(Effect.withConfigProvider(provider)), ["miss", "hit"])
      const missing = yield* Effect.flip(
        Effect.provide(CacheStore.CacheStore, store).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      )
      assert.strictEqual(Option.some(missing._tag).pipe(Option.getOrThrow), "ConfigError")
    }))
})

describe("failures that say why", () => {
  it.live("a wrong password: the server's WRONGPASS is in the RedisError, not only that the stream is closed", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer()),
        (server) => Effect.promise(() => server.stop())
      )
      // Set after the start: the start-up check PINGs without a password.
      yield* Effect.promise(async () => {
        const admin = new Redis(server.url)
        await admin.config("SET", "requirepass", "right")
        admin.disconnect()
      })
      const { cacheable } = probe()
      const layer = ResponseCache.layerRedis({ url: server.url, strict: true, redis: { password: "wrong" } })
      const error = yield* Effect.flip(
        ResponseCache.getOrResolve(cacheable, { tenant: "a", n: 1 }).pipe(Effect.provide(layer))
      )
      assert.strictEqual(error._tag, "RedisError")
      assert.match(error.message, /WRONGPASS/)
    }).pipe(Effect.scoped))

  it.live("TLS without the CA: the certificate error is in the RedisError", () =>
    Effect.gen(function*() {
      const certificates = yield* Effect.acquireRelease(Effect.sync(makeCertificates), (c) => Effect.sync(c.remove))
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer({ tls: certificates })),
        (server) => Effect.promise(() => server.stop())
      )
      const { cacheable } = probe()
      const layer = ResponseCache.layerRedis({ url: server.url, strict: true })
      const error = yield* Effect.flip(
        ResponseCache.getOrResolve(cacheable, { tenant: "a", n: 1 }).pipe(Effect.provide(layer))
      )
      assert.strictEqual(error._tag, "RedisError")
      assert.match(error.message, /certificate/i)
    }).pipe(Effect.scoped))
})
