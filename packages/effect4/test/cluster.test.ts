import { afterAll, assert, beforeAll, describe, inject, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Cluster, Redis } from "ioredis"
import { type RedisCluster, startRedisCluster } from "../../../test/support/redisCluster.js"
import { redisServerBinary } from "../../../test/support/redisServer.js"
import { CacheKey, ResponseCache } from "../src/index.js"
import { conformance, expectLifetimeByPttl, probe, testCommandTimeout, uniqueName } from "./conformance.js"

const nodes = inject("redisClusterNodes")

/** A cluster client of the test's own, to look at what the cache wrote and where. */
const openInspector = (startup: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.callback<Cluster>((resume) => {
      const client = new Cluster([...startup], { redisOptions: { commandTimeout: 5000 } })
      client.on("error", () => {})
      client.once("ready", () => resume(Effect.succeed(client)))
    }).pipe(Effect.timeout("10 seconds"), Effect.orDie),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

const inspector = openInspector(nodes)

const keySlot = (client: Cluster, key: string) =>
  Effect.promise(() => client.call("CLUSTER", "KEYSLOT", key) as Promise<number>)

/** Every key matching `pattern`, by primary (`host:port`), SCANning each primary itself. */
const keysByPrimary = (client: Cluster, pattern: string) =>
  Effect.promise(async () => {
    const found = new Map<string, Array<string>>()
    for (const node of client.nodes("master")) {
      const keys: Array<string> = []
      let cursor = "0"
      do {
        const [next, page] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000)
        for (const key of page) keys.push(key)
        cursor = next
      } while (cursor !== "0")
      found.set(`${node.options.host}:${node.options.port}`, keys)
    }
    return found
  })

interface Primary {
  readonly id: string
  /** `host:port` */
  readonly address: string
  readonly slots: ReadonlyArray<readonly [number, number]>
}

/** The primaries that are up, with their slot ranges, by CLUSTER NODES. */
const clusterPrimaries = (client: Cluster) =>
  Effect.promise(async (): Promise<Array<Primary>> => {
    const text = await client.call("CLUSTER", "NODES") as string
    return text.trim().split("\n").map((line) => line.split(" "))
      .filter((fields) => fields[2]!.split(",").includes("master") && !fields[2]!.includes("fail"))
      .map((fields) => ({
        id: fields[0]!,
        address: fields[1]!.split("@")[0]!,
        slots: fields.slice(8).filter((range) => !range.startsWith("[")).map((range) => {
          const [from, to] = range.split("-").map(Number)
          return [from!, to ?? from!] as const
        })
      }))
  })

const connectTo = (address: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(`redis://${address}`, { commandTimeout: 5000 })),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

/**
 * Moves one slot between primaries the way `redis-cli --cluster reshard` does: IMPORTING on the target,
 * MIGRATING on the source, MIGRATE the keys in batches, then SETSLOT NODE on both.
 */
const startSlotMove = (slot: number, source: Primary, target: Primary) =>
  Effect.gen(function*() {
    const from = yield* connectTo(source.address)
    const to = yield* connectTo(target.address)
    const [host, port] = target.address.split(":") as [string, string]
    yield* Effect.promise(() => to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id))
    yield* Effect.promise(() => from.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id))
    return {
      /** Migrates up to `count` of the slot's keys. */
      migrate: (count: number) =>
        Effect.promise(async () => {
          for (let moved = 0; moved < count;) {
            const keys = await from.call("CLUSTER", "GETKEYSINSLOT", slot, Math.min(100, count - moved)) as Array<
              string
            >
            if (keys.length === 0) return
            await from.call("MIGRATE", host, port, "", 0, 5000, "KEYS", ...keys)
            moved += keys.length
          }
        }),
      finish: Effect.promise(async () => {
        await to.call("CLUSTER", "SETSLOT", slot, "NODE", target.id)
        await from.call("CLUSTER", "SETSLOT", slot, "NODE", target.id)
      })
    }
  })

// The cluster layer: Effect's Redis service over an ioredis Cluster, every script on the owner of its namespace's slot.
conformance({
  name: "redis cluster via ioredis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) => ResponseCache.layerRedisCluster({ nodes, commandTimeout: testCommandTimeout, ...options }),
  expectLifetime: expectLifetimeByPttl(inspector)
})

// The same with the near-cache in front: its subscriber a cluster subscriber of its own, PUBLISH reaching every node.
conformance({
  name: "redis cluster + near-cache via ioredis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) =>
    ResponseCache.layerRedisCluster({
      nodes,
      commandTimeout: testCommandTimeout,
      nearCache: { capacity: 1000, ttl: "1 minute" },
      ...options
    }),
  expectLifetime: expectLifetimeByPttl(inspector)
})

describe("redis cluster layer (Effect 4)", () => {
  it.live("near-cache on a cluster: another process stops serving an invalidated entry, for good", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("clusternear")
      const layer = ResponseCache.layerRedisCluster({ nodes, prefix, nearCache: { capacity: 100, ttl: "1 minute" } })
      const a = yield* Layer.build(layer)
      const b = yield* Layer.build(layer)
      const { cacheable } = probe()
      const query = { tenant: "n", n: 1 }
      const inB = ResponseCache.getOrResolveWithOutcome(cacheable, query).pipe(Effect.provide(b))
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "miss" })
      assert.deepStrictEqual(yield* inB, { value: 11, outcome: "hit" })
      yield* ResponseCache.invalidateNamespace("tenant:n:v1").pipe(Effect.provide(a))
      // Read until the change is seen (the pub/sub delivery time), then never the old value again.
      const changed = yield* inB.pipe(
        Effect.tap(() => Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))),
        Effect.repeat({ until: (r) => r.value !== 11 }),
        Effect.timeout("2 seconds")
      )
      assert.deepStrictEqual(changed, { value: 12, outcome: "miss" })
      for (let i = 0; i < 20; i++) assert.strictEqual((yield* inB).value, 12)
    }).pipe(Effect.scoped))

  it.live("namespaces on every shard: each purge finds its entries on the node that owns its slot", () =>
    Effect.gen(function*() {
      const { cacheable } = probe()
      // Enough tenants that their slots fall on all three primaries.
      const tenants = Array.from({ length: 12 }, (_, i) => `c${i}`)
      for (const tenant of tenants) {
        for (const n of [1, 2]) yield* ResponseCache.getOrResolve(cacheable, { tenant, n })
      }
      for (const tenant of tenants) {
        yield* ResponseCache.invalidateNamespace(`tenant:${tenant}:v1`)
        assert.strictEqual(yield* Stream.runSum(ResponseCache.sweepNamespace(`tenant:${tenant}:v1`)), 2, tenant)
        assert.strictEqual((yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n: 1 })).outcome, "miss")
      }
    }).pipe(Effect.provide(ResponseCache.layerRedisCluster({ nodes, prefix: uniqueName("shards") }))))
})

describe("redis cluster layer (Effect 4): confirmed invalidation", () => {
  it.live("confirmInvalidation on the namespace's shard: one replica acknowledges; two cannot, and it fails naming WAIT", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("confirm")
      const { cacheable } = probe()
      const cacheWith = (replicas: number) =>
        Effect.map(
          Layer.build(ResponseCache.layerRedisCluster({
            nodes,
            prefix,
            confirmInvalidation: { replicas, timeout: "300 millis" }
          })),
          (context) => Context.get(context, ResponseCache.ResponseCache)
        )
      const one = yield* cacheWith(1)
      // Namespaces on every shard: each invalidation goes to the owner of its slot, whose replica acknowledges.
      for (const tenant of Array.from({ length: 6 }, (_, i) => `k${i}`)) {
        yield* one.getOrResolve(cacheable, { tenant, n: 1 })
        yield* one.invalidateNamespace(`tenant:${tenant}:v1`)
        assert.strictEqual((yield* one.getOrResolveWithOutcome(cacheable, { tenant, n: 1 })).outcome, "miss")
      }
      const two = yield* cacheWith(2)
      const error = yield* Effect.flip(two.invalidateNamespace("tenant:k0:v1"))
      assert.strictEqual(error._tag === "RedisError" && error.operation, "invalidateNamespace")
      assert.match(error.message, /1 of 2 replicas acknowledged/)
    }).pipe(Effect.scoped))
})

/** These tests start a cluster of their own, so they need redis-server even when REDIS_CLUSTER_NODES names one. */
const canStartClusters = (() => {
  try {
    redisServerBinary()
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!canStartClusters)("on a cluster of this file's own, which it may break", () => {
  let own: RedisCluster | undefined
  beforeAll(async () => {
    own = await startRedisCluster({ nodeTimeoutMs: 1000 })
  }, 60_000)
  afterAll(async () => {
    await own?.stop()
  }, 30_000)

  it.live(
    "a resharding: calls answer while the slot migrates; the sweep follows the slot to its new primary",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cluster = own!
        const client = yield* openInspector(cluster.nodes)
        const prefix = uniqueName("reshard")
        const namespace = "tenant:m:v1"
        const { cacheable } = probe({ resolve: (query) => Effect.succeed(query.n * 10) })
        const cache = yield* Layer.build(ResponseCache.layerRedisCluster({ nodes: cluster.nodes, prefix }))
        const inCache = <A, E>(effect: Effect.Effect<A, E, ResponseCache.ResponseCache>) =>
          Effect.provide(effect, cache)
        const lookup = (n: number) =>
          inCache(ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "m", n })).pipe(
            Effect.timeout("3 seconds")
          )
        // A second instance with a short commandTimeout, for the calls made while the slot migrates.
        const quick = yield* Layer.build(
          ResponseCache.layerRedisCluster({ nodes: cluster.nodes, prefix, commandTimeout: 200 })
        )

        yield* inCache(Effect.forEach(
          Array.from({ length: 200 }, (_, n) => n),
          (n) => ResponseCache.getOrResolve(cacheable, { tenant: "m", n }),
          { concurrency: 20, discard: true }
        ))
        yield* inCache(ResponseCache.invalidateNamespace(namespace))
        // Written after the invalidation: an entry no sweep may remove.
        assert.strictEqual((yield* lookup(1000)).outcome, "miss")

        const slot = yield* keySlot(client, CacheKey.namespaceKeys(prefix, namespace).generation)
        const primaries = yield* clusterPrimaries(client)
        const source = primaries.find((node) => node.slots.some(([from, to]) => from <= slot && slot <= to))!
        const target = primaries.find((node) => node !== source)!
        const move = yield* startSlotMove(slot, source, target)

        // Half the namespace's keys moved, the slot MIGRATING: Redis answers TRYAGAIN to a script whose keys are
        // split or missing, which the client retries within commandTimeout (200 ms here; the bound asserted is
        // generous). Every call answers, with the resolver's value when the store cannot.
        yield* move.migrate(100)
        const stored = new Set([1000])
        for (const n of [0, 150, 1000, 2000]) {
          const result = yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "m", n }).pipe(
            Effect.provide(quick),
            Effect.timeout("1200 millis")
          )
          assert.strictEqual(result.value, n * 10)
          assert.include(["miss", "hit", "bypass"], result.outcome)
          if (result.outcome === "miss") stored.add(n)
        }
        yield* move.migrate(Infinity)
        yield* move.finish

        // This client still believes the slot is on the source: the sweep must find the entries on the target.
        const removed = yield* inCache(Stream.runSum(ResponseCache.sweepNamespace(namespace)))
        const overwritten = [0, 150].filter((n) => stored.has(n)).length
        assert.strictEqual(removed, 200 - overwritten, "every dead entry was swept")
        const left = yield* keysByPrimary(client, `${prefix}:*`)
        assert.deepStrictEqual(left.get(source.address), [], "nothing is left on the old owner")
        const entries = left.get(target.address)!.filter((key) => key.includes(":e:"))
        assert.strictEqual(entries.length, stored.size, "the live entries are all that is left")
        for (const n of stored) assert.strictEqual((yield* lookup(n)).outcome, "hit", `entry ${n} survived`)
      })),
    30_000
  )

  it.live(
    "a resharding in the middle of a sweep: the sweep starts over on the slot's new primary and misses nothing",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cluster = own!
        const client = yield* openInspector(cluster.nodes)
        const prefix = uniqueName("midsweep")
        const namespace = "tenant:w:v1"
        const { cacheable } = probe({ resolve: (query) => Effect.succeed(query.n) })
        const cache = yield* Layer.build(ResponseCache.layerRedisCluster({ nodes: cluster.nodes, prefix }))
        const inCache = <A, E>(effect: Effect.Effect<A, E, ResponseCache.ResponseCache>) =>
          Effect.provide(effect, cache)
        // Enough entries for many sweep pages (a page SCANs about 250 keys).
        yield* inCache(Effect.forEach(
          Array.from({ length: 3000 }, (_, n) => n),
          (n) => ResponseCache.set(cacheable, { tenant: "w", n }, n),
          { concurrency: 50, discard: true }
        ))
        yield* inCache(ResponseCache.invalidateNamespace(namespace))
        const slot = yield* keySlot(client, CacheKey.namespaceKeys(prefix, namespace).generation)
        const primaries = yield* clusterPrimaries(client)
        const source = primaries.find((node) => node.slots.some(([from, to]) => from <= slot && slot <= to))!
        const target = primaries.find((node) => node !== source)!

        // After the first page, the whole slot moves: the next pages' cursor belongs to the old owner.
        let pages = 0
        const removed = yield* inCache(
          ResponseCache.sweepNamespace(namespace).pipe(
            Stream.tap(() =>
              pages++ === 0
                ? Effect.gen(function*() {
                  const move = yield* startSlotMove(slot, source, target)
                  yield* move.migrate(Infinity)
                  yield* move.finish
                }).pipe(Effect.scoped)
                : Effect.void
            ),
            Stream.runSum
          )
        )
        assert.isAbove(pages, 2)
        assert.strictEqual(removed, 3000, "every dead entry was swept")
        const left = yield* keysByPrimary(client, `${prefix}:*:e:*`)
        assert.deepStrictEqual([...left.values()].flat(), [], "no entry is left anywhere")
      })),
    60_000
  )
})
