/**
 * This library, in the configurations users run it in. Calls go through `getOrResolve` from fibers of one runtime
 * per contender, except for the Promise-boundary row, which pays a `runPromise` per call as a non-Effect caller
 * would.
 */
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Tracer from "effect/Tracer"
import { Redis } from "ioredis"
import type { ResponseCache as ResponseCacheTag } from "../../src/ResponseCache.js"
import type { Caller, Contender, Env, Instance } from "../Contender.js"
import { callOnce } from "../Driver.js"
import { Cacheable, CachePolicy, ResponseCache } from "../library.js"
import { Snapshot, snapshot, SnapshotQuery } from "../Origin.js"
import { acquireCluster } from "./sharedCluster.js"

const snapshots = (env: Env, lockMs: number) =>
  Cacheable.make({
    name: "bench.snapshot.v1",
    query: SnapshotQuery,
    response: Snapshot,
    namespace: (query) => query.ns,
    policy: CachePolicy.make(lockMs > 0 ? { ttl: env.ttlMs, lock: lockMs } : { ttl: env.ttlMs }),
    resolve: (query) =>
      Effect.suspend(() => {
        const value = env.origin.resolve(query.ns, query.id)
        return value instanceof Promise ? Effect.promise(() => value) : Effect.succeed(value)
      })
  })

/** Counts the spans it starts instead of keeping them, so a long run does not grow the heap. */
const countingTracer = (counter: { spans: number }) =>
  Layer.unwrapEffect(Effect.map(Effect.tracer, (native) =>
    Layer.setTracer(Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) => {
        counter.spans++
        return native.span(name, parent, context, links, startTime, kind, options)
      },
      context: native.context
    }))))

interface Options {
  readonly layer: (env: Env) => Layer.Layer<ResponseCacheTag, ConfigError.ConfigError>
  /** Extra runtime services (tracer settings) beside the cache. */
  readonly runtimeLayer?: Layer.Layer<never> | undefined
  readonly lockMs?: number | undefined
  /** Call through `runPromise` per call instead of from fibers. */
  readonly promiseBoundary?: boolean | undefined
  /** Reuse one query object per key (the library memoizes keys by query identity). */
  readonly sameQueries?: boolean | undefined
  readonly capacity?: number | undefined
  readonly counters?: { spans: number } | undefined
}

const start = async (env: Env, options: Options): Promise<Instance> => {
  const layer = options.layer(env)
  const runtime = ManagedRuntime.make(
    options.runtimeLayer === undefined ? layer : Layer.merge(layer, options.runtimeLayer)
  )
  await runtime.runPromise(Effect.asVoid(ResponseCache.ResponseCache))
  const cacheable = snapshots(env, options.lockMs ?? 0)
  const queries = new Map<string, { readonly ns: string; readonly id: number }>()
  const queryOf = options.sameQueries
    ? (ns: string, id: number) => {
      const key = `${ns}\u0000${id}`
      let query = queries.get(key)
      if (query === undefined) {
        query = { ns, id }
        queries.set(key, query)
      }
      return query
    }
    : (ns: string, id: number) => ({ ns, id })
  const get = (ns: string, id: number) => ResponseCache.getOrResolve(cacheable, queryOf(ns, id))
  const caller: Caller = options.promiseBoundary
    ? { _tag: "promise", get: (ns, id) => runtime.runPromise(get(ns, id)) }
    : { _tag: "effect", run: (effect) => runtime.runPromise(effect), get }
  return {
    caller,
    fill: (ns, ids) =>
      runtime.runPromise(Effect.forEach(
        ids,
        (id) => ResponseCache.set(cacheable, { ns, id }, snapshot(ns, id, env.origin.version(ns))),
        { concurrency: 256, discard: true }
      )),
    invalidateNamespace: (ns) => runtime.runPromise(ResponseCache.invalidateNamespace(ns)),
    purgeNamespace: (ns) => runtime.runPromise(Effect.asVoid(ResponseCache.purgeNamespace(ns))),
    inFlight: () => runtime.runPromise(Effect.flatMap(ResponseCache.ResponseCache, (cache) => cache.inFlight)),
    capacity: options.capacity,
    counters: options.counters === undefined ? undefined : () => ({ spans: options.counters!.spans }),
    close: () => runtime.dispose()
  }
}

const redisLayer = (env: Env) => ResponseCache.layerRedis({ url: env.url, prefix: env.prefix })

export const ours: ReadonlyArray<Contender> = [
  {
    id: "ours-redis",
    label: "response-cache, Redis layer (Effect's default tracer)",
    family: "ours",
    tier: "redis",
    shared: true,
    start: (env) => start(env, { layer: redisLayer })
  },
  {
    id: "ours-redis-notrace",
    only: ["hot", "miss"],
    label: "response-cache, Redis layer, tracing disabled",
    family: "ours",
    tier: "redis",
    shared: false,
    start: (env) => start(env, { layer: redisLayer, runtimeLayer: Layer.setTracerEnabled(false) })
  },
  {
    id: "ours-redis-traced",
    only: ["hot", "miss"],
    label: "response-cache, Redis layer, recording tracer",
    family: "ours",
    tier: "redis",
    shared: false,
    start: (env) => {
      const counters = { spans: 0 }
      return start(env, { layer: redisLayer, runtimeLayer: countingTracer(counters), counters })
    }
  },
  {
    id: "ours-redis-promise",
    only: ["hot", "miss"],
    label: "response-cache, Redis layer, runPromise per call",
    family: "ours",
    tier: "redis",
    shared: false,
    start: (env) => start(env, { layer: redisLayer, promiseBoundary: true })
  },
  {
    id: "ours-redis-samequery",
    only: ["hot"],
    label: "response-cache, Redis layer, query objects reused",
    family: "ours",
    tier: "redis",
    shared: false,
    start: (env) => start(env, { layer: redisLayer, sameQueries: true })
  },
  {
    id: "ours-redis-lock",
    label: "response-cache, Redis layer, policy lock 2 s",
    family: "ours",
    tier: "redis",
    only: ["stampede", "stampede-processes"],
    shared: true,
    start: (env) => start(env, { layer: redisLayer, lockMs: 2000 })
  },
  // The cluster layer on a local Redis Cluster of its own (3 primaries + 3 replicas, scripts/redis-cluster.sh),
  // stopped with the contender. Not in sweep (it counts the harness server's keys) or stampede-processes.
  {
    id: "ours-cluster",
    label: "response-cache, Redis Cluster layer (3 primaries, local)",
    family: "ours",
    tier: "redis",
    only: ["hot", "miss", "stampede", "invalidation"],
    shared: false,
    start: async (env) => {
      const { cluster, release } = await acquireCluster()
      try {
        const instance = await start(env, {
          layer: () => ResponseCache.layerRedisCluster({ nodes: cluster.nodes, prefix: env.prefix })
        })
        return { ...instance, close: () => instance.close().finally(release) }
      } catch (error) {
        await release()
        throw error
      }
    }
  },
  {
    id: "ours-memory",
    label: "response-cache, memory layer",
    family: "ours",
    tier: "memory",
    shared: false,
    start: (env) =>
      start(env, {
        layer: () => ResponseCache.layerMemory({ prefix: env.prefix, capacity: 10_000 }),
        capacity: 10_000
      })
  },
  // The near-cache (issue 5, item 3): an in-process tier in front of the Redis layer. It runs only when hits
  // really stop reaching Redis, so on a build without the option the row says "skipped" instead of measuring
  // the plain Redis layer under another name.
  {
    id: "ours-near",
    label: "response-cache, Redis layer + near-cache",
    family: "ours",
    tier: "two-tier",
    shared: true,
    start: async (env) => {
      const instance = await start(env, {
        layer: () =>
          ResponseCache.layerRedis({
            url: env.url,
            prefix: env.prefix,
            nearCache: { capacity: 10_000, ttl: "10 seconds" }
          }),
        capacity: 10_000
      })
      if (await answersInProcess(env, instance.caller)) return instance
      await instance.close()
      return undefined
    }
  }
]

/**
 * Whether 100 hits on warm keys cost Redis (almost) no commands, within 3 seconds (a near-cache serves nothing
 * until its subscription is confirmed).
 */
const answersInProcess = async (env: Env, caller: Caller): Promise<boolean> => {
  const client = new Redis(env.url)
  try {
    const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await client.info("stats"))?.[1])
    const deadline = Date.now() + 3000
    while (Date.now() < deadline) {
      const before = await commands()
      for (let id = 0; id < 100; id++) await callOnce(caller, "probe", id)
      if ((await commands()) - before < 20) return true
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return false
  } finally {
    client.disconnect()
  }
}
