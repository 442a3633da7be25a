/**
 * Failover chaos on real servers: readers and an invalidator (every ~50 ms) run against a cache while the primary
 * that holds their namespaces is SIGKILLed or SIGSTOPped, its replica takes over, and the old primary comes back
 * (restarted, or resumed) as a replica. Two caches run side by side on the same servers and the same fault, one
 * with `confirmInvalidation` and one without, each with its own ledger (test/support/staleness.ts): a read counts as
 * stale when it started after an invalidation of its namespace had returned and answered a version from before it.
 *
 * Topologies: Sentinel (a primary, a replica, three sentinels) and a Redis Cluster (scripts/redis-cluster.sh).
 * Used by test/failover.test.ts (one run each) and `npm run chaos:failover` (many).
 */
import calculateSlot from "cluster-key-slot"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { Cacheable, CacheKey, CachePolicy, ResponseCache } from "../../src/index.js"
import { type RedisCluster, startRedisCluster } from "./redisCluster.js"
import { startRedisSentinel } from "./redisSentinel.js"
import { startRedisServer } from "./redisServer.js"
import { Ledger } from "./staleness.js"

export type Fault = "kill" | "stop"

/** A primary with a replica, and how to reach it, break it and bring it back. */
export interface Topology {
  readonly name: string
  /** The cache on this topology; `confirm` adds `confirmInvalidation: { replicas: 1, timeout }`. */
  readonly layer: (
    prefix: string,
    confirm: boolean
  ) => Layer.Layer<ResponseCache.ResponseCache, ConfigError.ConfigError>
  /** Namespaces that live on the primary `fault` breaks. */
  readonly namespaces: ReadonlyArray<string>
  /**
   * Kills or freezes that primary, waits until its replica has taken over, then brings the old one back as a
   * replica (restarted, or resumed), and waits until it replicates.
   */
  readonly fault: (how: Fault) => Promise<void>
  readonly stop: () => Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The servers, not the cache, did not settle (a failover not made, an old primary never replicating): such a run
 * says nothing about the cache and is run again on fresh servers.
 */
export class TopologyDidNotRecover extends Error {}

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new TopologyDidNotRecover(`timed out waiting for ${what}`)
}

const withClient = async <A>(port: number, f: (client: Redis) => Promise<A>): Promise<A> => {
  const client = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on("error", () => {})
  try {
    await client.connect()
    return await f(client)
  } finally {
    client.disconnect()
  }
}

/** How many replicas the server on `port` says are online and caught up enough to answer WAIT. */
const onlineReplicas = (port: number) =>
  withClient(port, async (client) => {
    const info = await client.info("replication")
    return /role:master/.test(info) ? (info.match(/^slave\d+:.*state=online/gm) ?? []).length : 0
  })

/**
 * A primary, one replica and three sentinels (test/support/redisSentinel.ts: quorum 2, `down-after-milliseconds`
 * 500), on free loopback ports.
 */
export const startSentinelTopology = async (): Promise<Topology> => {
  const setup = await startRedisSentinel()
  // The data servers by port; a killed primary is restarted on its port, as a replica.
  const servers = new Map(setup.servers.map((server) => [server.port, server]))
  return {
    name: "sentinel",
    namespaces: ["chaos:a", "chaos:b", "chaos:c", "chaos:d"],
    layer: (prefix, confirm) =>
      ResponseCache.layerRedis({
        redis: {
          sentinels: [...setup.sentinels],
          name: setup.name,
          // Follow +switch-master at once, also when the old primary hangs rather than dies.
          failoverDetector: true
        },
        prefix,
        commandTimeout: 250,
        circuitBreaker: { failures: 3, cooldown: "250 millis" },
        ...(confirm ? { confirmInvalidation: { replicas: 1, timeout: "200 millis" } } : {})
      }),
    fault: async (how) => {
      const old = servers.get((await setup.primary()).port)!
      if (how === "kill") old.process.kill("SIGKILL")
      else old.process.kill("SIGSTOP")
      // By port: a restarted primary is another process on the same port. The port seen is kept: asked again, the
      // first sentinel to answer may be one that has not learned of the switch yet, and name the old primary.
      let promotedPort = old.port
      await until("a sentinel failover", async () => {
        promotedPort = (await setup.primary()).port
        return promotedPort !== old.port
      })
      const promoted = { port: promotedPort }
      if (how === "kill") {
        await old.stop()
        servers.set(
          old.port,
          await startRedisServer({
            port: old.port,
            args: ["--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", String(promoted.port)]
          })
        )
      } else {
        // Frozen a little past the failover, as a stalled VM would be; then it wakes believing it is the primary.
        await sleep(300)
        old.process.kill("SIGCONT")
      }
      // Sentinel makes the old primary a replica of the new one, but only once it has been up for a while (after a
      // freeze, ~16 s: twice Sentinel's 8 s role-change wait); after 10 s, do it as an operator would.
      await until(
        "the old primary to replicate the new one",
        async () => (await onlineReplicas(promoted.port)) === 1,
        10_000
      )
        .catch(() =>
          until("the old primary to replicate the new one", async () => {
            if ((await onlineReplicas(promoted.port)) === 1) return true
            // Idempotent; a sentinel reconfiguring it at the same moment kills this connection (CLIENT KILL TYPE
            // normal), and the next poll sees its work instead.
            await withClient(old.port, (client) => client.replicaof("127.0.0.1", promoted.port))
            return false
          })
        )
    },
    stop: async () => {
      await Promise.allSettled([setup.stop(), ...[...servers.values()].map((server) => server.stop())])
    }
  }
}

/** A cluster's view of itself: for each primary (`host:port`), whether a replica follows it. */
const clusterNodes = (port: number) =>
  withClient(
    port,
    async (client) =>
      (await client.call("CLUSTER", "NODES") as string).trim().split("\n").map((line) => line.split(" "))
  )

/**
 * A Redis Cluster of 3 primaries and 3 replicas (`cluster-node-timeout` 1000 ms); the faulted primary is one that
 * owns the namespaces' slot and has a replica.
 */
export const startClusterTopology = async (): Promise<Topology> => {
  const cluster: RedisCluster = await startRedisCluster({ nodeTimeoutMs: 1000 })
  try {
    const nodes = await clusterNodes(cluster.ports[0]!)
    const replicated = new Set(
      nodes.filter((fields) => fields[2]!.includes("slave")).map((fields) => fields[3]!)
    )
    const victim = nodes.find((fields) => fields[2]!.includes("master") && replicated.has(fields[0]!))!
    const victimPort = Number(victim[1]!.split("@")[0]!.split(":")[1])
    const slots = await withClient(
      victimPort,
      async (client) =>
        (await client.call("CLUSTER", "SLOTS") as Array<[number, number, [string, number]]>)
          .filter(([, , [, port]]) => port === victimPort)
    )
    const owned = (slot: number) => slots.some(([from, to]) => from <= slot && slot <= to)
    const namespaces: Array<string> = []
    for (let i = 0; namespaces.length < 4; i++) {
      // The slot comes from the hash tag alone, so any prefix will do.
      if (owned(calculateSlot(CacheKey.namespaceKeys("rc", `chaos:${i}`).generation))) namespaces.push(`chaos:${i}`)
    }
    return {
      name: "cluster",
      namespaces,
      layer: (prefix, confirm) =>
        ResponseCache.layerRedisCluster({
          nodes: cluster.nodes,
          prefix,
          commandTimeout: 250,
          circuitBreaker: { failures: 3, cooldown: "250 millis" },
          ...(confirm ? { confirmInvalidation: { replicas: 1, timeout: "200 millis" } } : {})
        }),
      fault: async (how) => {
        // The namespaces' slot owner now (an earlier fault may have moved it), asked of any other live node.
        const slot = slots[0]![0]
        const ownerSeenFrom = async (ports: ReadonlyArray<number>) => {
          for (const port of ports) {
            const owner = await withClient(port, async (client) => {
              const ranges = await client.call("CLUSTER", "SLOTS") as Array<[number, number, [string, number]]>
              return ranges.find(([from, to]) => from <= slot && slot <= to)![2][1]
            }).catch(() => undefined)
            if (owner !== undefined) return owner
          }
          throw new Error("no live cluster node answered")
        }
        const victim = await ownerSeenFrom(cluster.ports)
        const others = cluster.ports.filter((port) => port !== victim)
        if (how === "kill") await cluster.kill(victim)
        else process.kill(cluster.pid(victim), "SIGSTOP")
        await until("a cluster failover", async () => (await ownerSeenFrom(others)) !== victim)
        if (how === "stop") {
          await sleep(300)
          process.kill(cluster.pid(victim), "SIGCONT")
          const newOwner = await ownerSeenFrom(others)
          await until("the old primary to replicate the new one", async () => (await onlineReplicas(newOwner)) === 1)
        }
        // A killed node stays down: its shard's confirmed invalidations fail from then on (no replica to WAIT for).
      },
      stop: () => cluster.stop()
    }
  } catch (error) {
    await cluster.stop()
    throw error
  }
}

/** What one cache saw in one run. */
export interface Counts {
  readonly reads: number
  /** Reads that started after at least one invalidation of their namespace had returned. */
  readonly readsAfterInvalidation: number
  readonly invalidations: number
  readonly invalidationsFailed: number
  /** Reads that answered a version older than an invalidation that had returned before they started. */
  readonly stale: number
  readonly staleOutcomes: Record<string, number>
  /** Latency of the invalidations that returned, in ms: median and max. */
  readonly invalidationMs: { readonly p50: number; readonly max: number }
}

const Query = Schema.Struct({ ns: Schema.String, q: Schema.Number })
const Answer = Schema.Struct({ version: Schema.Number })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

/** Load on one cache: readers and one invalidator, until `running.value` turns false. */
const load = (
  cache: ResponseCache.ResponseCache.Service,
  namespaces: ReadonlyArray<string>,
  running: { value: boolean }
) => {
  const ledger = new Ledger()
  const latencies: Array<number> = []
  const cacheable = Cacheable.make({
    name: "chaos",
    query: Query,
    response: Answer,
    namespace: (query) => query.ns,
    policy: CachePolicy.make({ ttl: "1 minute" }),
    resolve: (query) => Effect.sync(() => ({ version: ledger.current(query.ns) }))
  })
  const pick = () => namespaces[Math.floor(Math.random() * namespaces.length)]!
  const reader = Effect.gen(function*() {
    while (running.value) {
      const ns = pick()
      yield* ledger.read(
        ns,
        cache.getOrResolveWithOutcome(cacheable, { ns, q: Math.floor(Math.random() * 4) }),
        (result) => ({ version: result.value.version, outcome: result.outcome })
      ).pipe(Effect.timeout("3 seconds"), Effect.ignore)
      yield* Effect.sleep("2 millis")
    }
  })
  const invalidator = Effect.gen(function*() {
    for (let i = 0; running.value; i++) {
      const start = performance.now()
      const ns = namespaces[i % namespaces.length]!
      const ok = yield* ledger.write(ns, cache.invalidateNamespace(ns).pipe(Effect.timeout("3 seconds")))
      if (ok) latencies.push(performance.now() - start)
      yield* Effect.sleep("50 millis")
    }
  })
  const counts = (): Counts => {
    const staleOutcomes: Record<string, number> = {}
    for (const read of ledger.stale) staleOutcomes[read.outcome] = (staleOutcomes[read.outcome] ?? 0) + 1
    const sorted = [...latencies].sort((a, b) => a - b)
    return {
      reads: ledger.reads,
      readsAfterInvalidation: ledger.readsAfterInvalidation,
      invalidations: ledger.invalidations,
      invalidationsFailed: ledger.invalidationsFailed,
      stale: ledger.stale.length,
      staleOutcomes,
      invalidationMs: { p50: Number(percentile(sorted, 0.5).toFixed(2)), max: Number((sorted.at(-1) ?? 0).toFixed(2)) }
    }
  }
  return {
    run: Effect.all([reader, reader, reader, reader, invalidator], { concurrency: "unbounded", discard: true }),
    counts
  }
}

/**
 * One run: both caches under load for ~1 s, the fault (through the replica's takeover and the old primary's
 * return), ~1.5 s more; the counts of the cache with `confirmInvalidation` and of the one without.
 */
export const chaosRun = (topology: Topology, how: Fault, id: string) =>
  Effect.scoped(Effect.gen(function*() {
    const running = { value: true }
    const build = (confirm: boolean) =>
      Effect.map(
        Layer.build(topology.layer(`chaos${id}${confirm ? "c" : "u"}`, confirm)),
        (context) => Context.get(context, ResponseCache.ResponseCache)
      )
    const confirmed = load(yield* build(true), topology.namespaces, running)
    const unconfirmed = load(yield* build(false), topology.namespaces, running)
    const fiber = yield* Effect.fork(Effect.all([confirmed.run, unconfirmed.run], { concurrency: 2, discard: true }))
    yield* Effect.sleep("1 second")
    yield* Effect.promise(() => topology.fault(how))
    yield* Effect.sleep("1500 millis")
    running.value = false
    yield* Fiber.join(fiber)
    return { confirmed: confirmed.counts(), unconfirmed: unconfirmed.counts() }
  })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none)))
