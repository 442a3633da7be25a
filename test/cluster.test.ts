/**
 * The cluster layer on a real local Redis Cluster (3 primaries, 3 replicas): the whole conformance suite, where a
 * namespace's keys live, the sweep's routing, purge, the cross-process lock — on the suite's shared cluster
 * (globalSetup; REDIS_CLUSTER_NODES to use another, which is never flushed) — and then a resharding, a primary
 * killed under load, and a lock subscription opened while the cluster is down, on a cluster of this file's own
 * that it may break (started with scripts/redis-cluster.sh, stopped after).
 */
import { afterAll, assert, beforeAll, describe, inject, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Cluster, Redis } from "ioredis"
import * as RedisStore from "../src/CacheStore/Redis.js"
import { Cacheable, CacheKey, CachePolicy, ResponseCache } from "../src/index.js"
import { conformance, expectLifetimeByPttl, probe, testCommandTimeout, uniqueName } from "./conformance.js"
import { type RedisCluster, startRedisCluster } from "./support/redisCluster.js"
import { freePort, redisServerBinary } from "./support/redisServer.js"

const nodes = inject("redisClusterNodes")

/** A cluster client of the test's own, to look at what the cache wrote and where. */
const openInspector = (startup: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.async<Cluster>((resume) => {
      const client = new Cluster([...startup], { redisOptions: { commandTimeout: 5000 } })
      client.on("error", () => {})
      client.once("ready", () => resume(Effect.succeed(client)))
    }).pipe(Effect.timeout("10 seconds"), Effect.orDie),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

const inspector = openInspector(nodes)

/** The primary (`host:port`) that serves `slot`, by CLUSTER SLOTS. */
const slotOwners = (client: Cluster) =>
  Effect.promise(async () => {
    const ranges = await client.cluster("SLOTS") as unknown as Array<
      [number, number, [string, number, string], ...Array<unknown>]
    >
    return (slot: number) => {
      const range = ranges.find(([from, to]) => from <= slot && slot <= to)
      if (range === undefined) throw new Error(`slot ${slot} is not served`)
      return `${range[2][0]}:${range[2][1]}`
    }
  })

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

/** How many SCAN and KEYS commands each primary has served (INFO commandstats; read, never reset). */
const commandCalls = (client: Cluster) =>
  Effect.promise(async () =>
    new Map(
      await Promise.all(
        client.nodes("master").map(async (node) => {
          const stats = await node.info("commandstats")
          const calls = (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
          return [`${node.options.host}:${node.options.port}`, { scan: calls("scan"), keys: calls("keys") }] as const
        })
      )
    )
  )

conformance({
  name: "redis cluster",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) => ResponseCache.layerRedisCluster({ nodes, commandTimeout: testCommandTimeout, ...options }),
  expectLifetime: expectLifetimeByPttl(inspector)
})

describe("redis cluster layer", () => {
  it.live("a namespace's keys share one slot; 30 namespaces spread over all three primaries", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = uniqueName("spread")
      const client = yield* inspector
      const { cacheable } = probe({ policy: CachePolicy.make({ ttl: "1 minute", lock: "5 seconds" }) })
      const tenants = Array.from({ length: 30 }, (_, i) => `s${i}`)
      yield* Effect.forEach(
        tenants,
        (tenant) =>
          Effect.forEach([1, 2], (n) => ResponseCache.getOrResolve(cacheable, { tenant, n }), { discard: true }),
        {
          concurrency: 10,
          discard: true
        }
      ).pipe(Effect.provide(ResponseCache.layerRedisCluster({ nodes, prefix })))

      const where = yield* keysByPrimary(client, `${prefix}:*`)
      // The suite's own cluster has three primaries; a cluster of REDIS_CLUSTER_NODES may have more.
      assert.isAtLeast(where.size, 3, "three primaries")
      const ownerOf = yield* slotOwners(client)
      const primariesUsed = new Set<string>()
      for (const tenant of tenants) {
        const keys = CacheKey.namespaceKeys(prefix, `tenant:${tenant}:v1`)
        const slot = yield* keySlot(client, keys.generation)
        const owner = ownerOf(slot)
        primariesUsed.add(owner)
        // The generation, the record of what it last wrote under and both entries are on the primary that owns the
        // namespace's slot, and nowhere else.
        const here = where.get(owner)!.filter((key) => key.startsWith(`${prefix}:{ns:tenant:${tenant}:v1}:`))
        assert.sameMembers(here.filter((key) => key.endsWith(":g")), [keys.generation])
        assert.sameMembers(here.filter((key) => key.endsWith(":w")), [keys.written])
        assert.strictEqual(here.filter((key) => key.startsWith(keys.entryPrefix)).length, 2)
        for (const key of here) assert.strictEqual(yield* keySlot(client, key), slot)
      }
      assert.isAtLeast(primariesUsed.size, 3, "the 30 namespaces live on all three primaries")
      const total = [...where.values()].reduce((sum, keys) => sum + keys.length, 0)
      assert.strictEqual(total, 30 * 4, "nothing else was written (locks are released and deleted)")
    })))

  it.live("the sweep SCANs only the primary that owns the namespace's slot", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = uniqueName("route")
      const client = yield* inspector
      const { cacheable } = probe()
      const namespace = "tenant:r:v1"
      const ownerOf = yield* slotOwners(client)
      const owner = ownerOf(yield* keySlot(client, CacheKey.namespaceKeys(prefix, namespace).generation))
      const [removed, before, after] = yield* Effect.gen(function*() {
        yield* Effect.forEach([1, 2, 3, 4], (n) => ResponseCache.getOrResolve(cacheable, { tenant: "r", n }))
        yield* ResponseCache.invalidateNamespace(namespace)
        const before = yield* commandCalls(client)
        const removed = yield* Stream.runSum(ResponseCache.sweepNamespace(namespace))
        return [removed, before, yield* commandCalls(client)] as const
      }).pipe(Effect.provide(ResponseCache.layerRedisCluster({ nodes, prefix })))
      assert.strictEqual(removed, 4)
      assert.isAtLeast(before.size, 3)
      for (const [primary, calls] of after) {
        const scans = calls.scan - before.get(primary)!.scan
        assert.strictEqual(scans > 0, primary === owner, `SCAN on ${primary}`)
        assert.strictEqual(calls.keys, before.get(primary)!.keys, `KEYS on ${primary}`)
      }
    })))

  it.live("purge of a namespace removes exactly its entries, wherever the namespaces live", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = uniqueName("purge")
      const client = yield* inspector
      const { cacheable } = probe()
      const tenants = Array.from({ length: 12 }, (_, i) => `p${i}`)
      const layer = ResponseCache.layerRedisCluster({ nodes, prefix })
      // Keys that only look alike: another prefix, and a key outside any prefix in the same slot.
      const foreign = [`${prefix}x:{ns:tenant:p0:v1}:e:0`, `{ns:tenant:p0:v1}:e:${prefix}`]
      for (const key of foreign) yield* Effect.promise(() => client.set(key, "keep"))
      const before = yield* Effect.gen(function*() {
        yield* Effect.forEach(
          tenants,
          (tenant) => Effect.forEach([1, 2, 3, 4, 5], (n) => ResponseCache.getOrResolve(cacheable, { tenant, n })),
          {
            concurrency: 4,
            discard: true
          }
        )
        return yield* keysByPrimary(client, `${prefix}:*`)
      }).pipe(Effect.provide(layer))
      assert.isAtLeast([...before.values()].filter((keys) => keys.length > 0).length, 3, "on three primaries")

      const removed = yield* ResponseCache.purgeNamespace("tenant:p0:v1").pipe(Effect.provide(layer))
      assert.strictEqual(removed, 5)
      const after = yield* keysByPrimary(client, `${prefix}:*`)
      const victim = CacheKey.namespaceKeys(prefix, "tenant:p0:v1")
      for (const [primary, keys] of before) {
        // Its entries are gone, and its generation (the invalidation deletes it; the next read makes a new one).
        const expected = keys.filter((key) => !key.startsWith(victim.entryPrefix) && key !== victim.generation)
        assert.sameMembers(after.get(primary)!, expected, `keys left on ${primary}`)
      }
      for (const key of foreign) assert.strictEqual(yield* Effect.promise(() => client.get(key)), "keep")
      yield* Effect.promise(() => Promise.all(foreign.map((key) => client.del(key))))
      // The other namespaces still hit; the purged one resolves again.
      const outcomes = yield* Effect.forEach(
        ["p0", "p1", "p7"],
        (tenant) => Effect.map(ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n: 1 }), (r) => r.outcome)
      ).pipe(
        Effect.provide(layer)
      )
      assert.deepStrictEqual(outcomes, ["miss", "hit", "hit"])
    })))

  it.live("the cross-process lock: a second instance waits for the first one's value, woken by pub/sub", () =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = uniqueName("lock")
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const { cacheable, state } = probe({
        policy: CachePolicy.make({ ttl: "1 minute", lock: "10 seconds" }),
        resolve: (query) =>
          Effect.as(Effect.zipRight(Deferred.succeed(started, void 0), Deferred.await(gate)), query.n * 10)
      })
      // Two instances, two cluster clients: what two processes look like to Redis.
      const a = yield* Layer.build(ResponseCache.layerRedisCluster({ nodes, prefix }))
      const b = yield* Layer.build(ResponseCache.layerRedisCluster({ nodes, prefix }))
      const lookup = ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 4 })
      const first = yield* Effect.fork(Effect.provide(lookup, a))
      yield* Deferred.await(started)
      const second = yield* Effect.fork(Effect.provide(lookup, b))
      yield* Effect.sleep("300 millis")
      const released = Date.now()
      yield* Deferred.succeed(gate, void 0)
      assert.deepStrictEqual(yield* Fiber.join(first), { value: 40, outcome: "miss" })
      assert.deepStrictEqual(yield* Fiber.join(second), { value: 40, outcome: "coalesced" })
      // Woken by the release, not by the lock running out.
      assert.isBelow(Date.now() - released, 3000)
      assert.strictEqual(state.runs, 1)
    })))

  it.live("layerRedisClusterConfig reads the nodes from the application's Config", () =>
    Effect.gen(function*() {
      const prefix = uniqueName("cfg")
      const { cacheable } = probe()
      const layer = ResponseCache.layerRedisClusterConfig({
        nodes: Config.array(Config.string(), "CACHE_REDIS_NODES"),
        prefix: Config.string("CACHE_PREFIX")
      })
      const provider = ConfigProvider.fromMap(
        new Map([["CACHE_REDIS_NODES", nodes.join(",")], ["CACHE_PREFIX", prefix]])
      )
      const lookup = ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })
      const results = yield* Effect.zip(lookup, lookup).pipe(Effect.provide(layer), Effect.withConfigProvider(provider))
      assert.deepStrictEqual(results.map((r) => r.outcome), ["miss", "hit"])
      const missing = yield* Effect.flip(
        ResponseCache.get(cacheable, { tenant: "a", n: 1 }).pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      assert.strictEqual(missing._tag, "ConfigError" as never)
    }))

  it.live("against nodes where nothing listens: builds, answers from the resolver, surfaces RedisError", () =>
    Effect.gen(function*() {
      const down = [`redis://127.0.0.1:${yield* Effect.promise(freePort)}`]
      const { cacheable, state } = probe()
      const lookup = ResponseCache.getOrResolveWithOutcome(cacheable, { tenant: "a", n: 1 })
      const open = ResponseCache.layerRedisCluster({ nodes: down, commandTimeout: 200 })
      const bounded = <A, E>(effect: Effect.Effect<A, E>) => Effect.timeout(effect, "3 seconds")
      assert.deepStrictEqual(yield* bounded(Effect.provide(lookup, open)), { value: 11, outcome: "bypass" })
      assert.strictEqual(state.runs, 1)
      const strict = ResponseCache.layerRedisCluster({ nodes: down, strict: true, commandTimeout: 200 })
      assert.strictEqual((yield* Effect.flip(bounded(Effect.provide(lookup, strict))))._tag, "RedisError")
      for (
        const op of [
          ResponseCache.purgeNamespace("tenant:a:v1"),
          ResponseCache.invalidateNamespace("tenant:a:v1"),
          ResponseCache.get(cacheable, { tenant: "a", n: 1 }),
          Stream.runDrain(ResponseCache.sweepNamespace("tenant:a:v1"))
        ]
      ) {
        const error = yield* Effect.flip(
          bounded(Effect.provide(op as Effect.Effect<unknown, any, ResponseCache.ResponseCache>, open))
        )
        assert.strictEqual(error._tag, "RedisError")
      }
    }))
})

/** The primaries (`host:port`) that have a replica up, by CLUSTER NODES. */
const replicatedPrimaries = (client: Cluster) =>
  Effect.promise(async () => {
    const nodes = (await client.call("CLUSTER", "NODES") as string).trim().split("\n").map((line) => line.split(" "))
    const masters = new Set(
      nodes.filter((fields) => fields[2]!.includes("slave") && !fields[2]!.includes("fail")).map((fields) => fields[3]!)
    )
    return new Set(nodes.filter((fields) => masters.has(fields[0]!)).map((fields) => fields[1]!.split("@")[0]!))
  })

/**
 * Six readers and an invalidating fiber on a cluster while one primary (one with a replica) is killed or hangs:
 * every call must answer within a generous bound, no read may return a version older than the last invalidation
 * that returned before it started, and caching must resume on the failed shard without rebuilding the layer.
 */
const failoverUnderLoad = (cluster: RedisCluster, how: "kill" | "hang") =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* openInspector(cluster.nodes)
    const prefix = uniqueName("failover")
    const tenants = Array.from({ length: 24 }, (_, i) => `f${i}`)
    // The source of truth: a version per namespace, bumped before each invalidation of that namespace.
    const versions = new Map<string, number>(tenants.map((t) => [t, 0]))
    // The version whose invalidation has returned: every read that starts later must see at least that.
    const committed = new Map<string, number>(tenants.map((t) => [t, 0]))
    const cacheable = Cacheable.make({
      name: uniqueName("versioned"),
      query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
      response: Schema.Struct({ version: Schema.Number }),
      namespace: (query) => `tenant:${query.tenant}:v1`,
      policy: CachePolicy.make({ ttl: "1 minute" }),
      resolve: (query) => Effect.sync(() => ({ version: versions.get(query.tenant)! }))
    })
    const cache = yield* Layer.build(ResponseCache.layerRedisCluster({
      nodes: cluster.nodes,
      prefix,
      commandTimeout: 250,
      circuitBreaker: { failures: 3, cooldown: "250 millis" }
    }))
    const inCache = <A, E>(effect: Effect.Effect<A, E, ResponseCache.ResponseCache>) => Effect.provide(effect, cache)

    const ownerOf = yield* slotOwners(client)
    const ownerOfTenant = new Map<string, string>()
    for (const tenant of tenants) {
      ownerOfTenant.set(
        tenant,
        ownerOf(yield* keySlot(client, CacheKey.namespaceKeys(prefix, `tenant:${tenant}:v1`).generation))
      )
    }
    assert.strictEqual(new Set(ownerOfTenant.values()).size, 3)
    // A primary whose replica can take over (an earlier failover leaves one primary without a replica).
    const replicated = yield* replicatedPrimaries(client)
    const victim = [...ownerOfTenant.values()].find((owner) => replicated.has(owner))!
    const victimTenants = tenants.filter((t) => ownerOfTenant.get(t) === victim)
    const victimPort = Number(victim.split(":")[1])
    const victimPid = cluster.pid(victimPort)

    interface Call {
      readonly tenant: string
      readonly start: number
      readonly end: number
      readonly outcome: string
      readonly version: number
      readonly floor: number
    }
    const calls: Array<Call> = []
    const problems: Array<string> = []
    let invalidations = 0
    let failedInvalidations = 0
    let running = true

    const reader = Effect.gen(function*() {
      while (running) {
        const tenant = tenants[Math.floor(Math.random() * tenants.length)]!
        const n = 1 + Math.floor(Math.random() * 4)
        const floor = committed.get(tenant)!
        const start = Date.now()
        const result = yield* inCache(ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n })).pipe(
          // The bound asserted: generous, not a speed check (commandTimeout is 250 ms).
          Effect.timeout("2 seconds"),
          Effect.either
        )
        const end = Date.now()
        if (result._tag === "Left") {
          problems.push(`${tenant}: ${String(result.left)} after ${end - start} ms`)
        } else {
          const { outcome, value } = result.right
          calls.push({ tenant, start, end, outcome, version: value.version, floor })
        }
        yield* Effect.sleep("3 millis")
      }
    })

    const invalidator = Effect.gen(function*() {
      let i = 0
      while (running) {
        const tenant = tenants[i++ % tenants.length]!
        const version = versions.get(tenant)! + 1
        versions.set(tenant, version)
        const done = yield* inCache(ResponseCache.invalidateNamespace(`tenant:${tenant}:v1`)).pipe(
          Effect.timeout("2 seconds"),
          Effect.either
        )
        invalidations++
        if (done._tag === "Right") committed.set(tenant, Math.max(committed.get(tenant)!, version))
        else failedInvalidations++
        yield* Effect.sleep("20 millis")
      }
    })

    const load = yield* Effect.fork(Effect.all([...Array.from({ length: 6 }, () => reader), invalidator], {
      concurrency: "unbounded",
      discard: true
    }))
    yield* Effect.sleep("1500 millis")
    const hitsBefore = calls.filter((c) => c.outcome === "hit").length
    if (how === "kill") {
      yield* Effect.promise(() => cluster.kill(victimPort))
    } else {
      // Frozen, not dead: its connections stay open and it answers nothing (a stalled VM, a swap storm).
      yield* Effect.acquireRelease(
        Effect.sync(() => process.kill(victimPid, "SIGSTOP")),
        () => Effect.sync(() => process.kill(victimPid, "SIGCONT"))
      )
    }
    const killedAt = Date.now()

    // Wait for the first hit on a namespace of the failed shard, from a call that started after the kill (or,
    // for a hang, while the old primary is still frozen).
    const firstVictimHit = () =>
      calls.find((c) => c.start > killedAt && c.outcome === "hit" && victimTenants.includes(c.tenant))
    const deadline = killedAt + 30_000
    while (firstVictimHit() === undefined && Date.now() < deadline) yield* Effect.sleep("20 millis")
    const recovered = firstVictimHit()
    yield* Effect.sleep("1 second")
    running = false
    yield* Fiber.join(load)

    const after = calls.filter((c) => c.start > killedAt)
    const during = recovered === undefined ? after : after.filter((c) => c.end <= recovered.end)
    const count = (list: ReadonlyArray<Call>, outcome: string) => list.filter((c) => c.outcome === outcome).length
    const slowest = Math.max(...after.map((c) => c.end - c.start))
    const figures = {
      how,
      victim,
      victimNamespaces: victimTenants.length,
      hitsBefore,
      toFirstHitOnFailedShardMs: recovered === undefined ? undefined : recovered.end - killedAt,
      callsDuringFailover: during.length,
      bypassDuringFailover: count(during, "bypass"),
      hitsDuringFailoverOnOtherShards: during.filter((c) => c.outcome === "hit" && !victimTenants.includes(c.tenant))
        .length,
      slowestCallAfterKillMs: slowest,
      invalidations,
      failedInvalidations
    }
    console.log(`failover figures (${how}): ${JSON.stringify(figures)}`)

    assert.deepStrictEqual(problems, [], "every call answered within its bound")
    const stale = calls.filter((c) => c.version < c.floor)
    assert.deepStrictEqual(stale, [], "no read returned a version older than the last invalidation before it")
    assert.isDefined(recovered, "caching resumed on the failed shard")
    assert.isAbove(count(during, "bypass"), 0, "the outage was answered from the resolver")
    // Caching resumed without rebuilding the layer: every namespace of the failed shard caches again.
    for (const tenant of victimTenants) {
      const twice = yield* inCache(Effect.zipRight(
        ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n: 9 }),
        ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n: 9 })
      ))
      assert.strictEqual(twice.outcome, "hit", tenant)
    }
    if (how === "hang") {
      // Woken up (with no invalidation in flight), the old primary learns it was replaced and rejoins as a replica.
      process.kill(victimPid, "SIGCONT")
      const old = yield* connectTo(victim)
      yield* Effect.promise(() => old.info("replication")).pipe(
        Effect.repeat({ until: (info) => info.includes("role:slave"), schedule: Schedule.spaced("50 millis") }),
        Effect.timeout("10 seconds")
      )
    }
    // The replica took over the slots: another primary serves them.
    const victimSlot = yield* keySlot(
      client,
      CacheKey.namespaceKeys(prefix, `tenant:${victimTenants[0]}:v1`).generation
    )
    assert.notStrictEqual((yield* slotOwners(client))(victimSlot), victim)
  }))

/** These tests start clusters of their own, so they need redis-server even when REDIS_CLUSTER_NODES names one. */
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
    // A short node timeout, so a silent primary is failed over within seconds.
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
    "a primary killed under load: calls stay bounded and answer, caching resumes, nothing stale is served",
    () => failoverUnderLoad(own!, "kill"),
    60_000
  )

  it.live(
    "a primary that hangs under load: caching resumes on its replica while it still hangs, nothing stale",
    () => failoverUnderLoad(own!, "hang"),
    60_000
  )

  it.live(
    "a lock waiter's subscription: fails within its bound while the cluster is down, works once it is back",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cluster = own!
        const inspect = yield* openInspector(cluster.nodes)
        const primaries = yield* clusterPrimaries(inspect)
        // A primary that still has a replica (an earlier failover promoted one that has none), and that replica.
        const replicas = yield* Effect.promise(async () =>
          (await inspect.call("CLUSTER", "NODES") as string).trim().split("\n").map((line) => line.split(" "))
            .filter((fields) => fields[2]!.includes("slave") && !fields[2]!.includes("fail"))
            .map((fields) => ({ address: fields[1]!.split("@")[0]!, primary: fields[3]! }))
        )
        const victim = primaries.find((node) => replicas.some((replica) => replica.primary === node.id))!
        const replica = replicas.find((replica) => replica.primary === victim.id)!
        const survivor = yield* connectTo(primaries.find((node) => node !== victim)!.address)
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const client = new Cluster([...cluster.nodes], {
              enableOfflineQueue: false,
              retryDelayOnFailover: 0,
              retryDelayOnClusterDown: 0,
              redisOptions: { commandTimeout: 250, connectTimeout: 1000, maxRetriesPerRequest: 0 }
            })
            client.on("error", () => {})
            return RedisStore.defineScripts(client)
          }),
          (client) => Effect.sync(() => client.disconnect())
        )
        const store = yield* RedisStore.make(client, { channel: `${uniqueName("sub")}:lock-released` })
        // The replica frozen first, so that the cluster stays down (no election) until the test lets it go.
        const replicaPid = cluster.pid(Number(replica.address.split(":")[1]))
        yield* Effect.acquireRelease(
          Effect.sync(() => process.kill(replicaPid, "SIGSTOP")),
          () => Effect.sync(() => process.kill(replicaPid, "SIGCONT"))
        )
        yield* Effect.promise(() => cluster.kill(Number(victim.address.split(":")[1])))
        const clusterState = Effect.promise(() =>
          survivor.call("CLUSTER", "INFO").then((info) => /cluster_state:(\w+)/.exec(info as string)?.[1])
        )
        yield* clusterState.pipe(
          Effect.repeat({ until: (state) => state === "fail", schedule: Schedule.spaced("50 millis") })
        )
        const key = yield* CacheKey.make(CacheKey.namespaceKeys("sub", "tenant:a:v1"), probe().cacheable, {
          tenant: "a",
          n: 1
        })
        const waited = yield* Effect.scoped(store.listenForRelease(key)).pipe(
          Effect.either,
          Effect.timeout("5 seconds")
        )
        assert.strictEqual(waited._tag, "Left", "the subscription fails (the caller then resolves by itself)")
        // The replica wakes up and takes over; the next wait subscribes afresh.
        process.kill(replicaPid, "SIGCONT")
        yield* clusterState.pipe(
          Effect.repeat({ until: (state) => state === "ok", schedule: Schedule.spaced("50 millis") }),
          Effect.timeout("15 seconds")
        )
        // The cluster says ok a moment before every client has its new slot map (a CI run's first wait still
        // failed): a caller's next waits subscribe afresh, and one of them soon does.
        const again = yield* Effect.scoped(store.listenForRelease(key)).pipe(
          Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 40 }),
          Effect.either,
          Effect.timeout("10 seconds")
        )
        assert.strictEqual(again._tag, "Right", "subscribed once the cluster is back")
      })),
    45_000
  )
})
