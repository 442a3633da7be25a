/**
 * The baseline every ratio is taken against: ioredis `GET` + `JSON.parse`, `SET … PX` on a miss, no single flight.
 * "Purging" a namespace is SCAN + UNLINK over its key pattern, which is what deleting costs without generations.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Cluster, Redis } from "ioredis"
import type { Contender, Env, Instance } from "../Contender.js"
import { type Snapshot, snapshot } from "../Origin.js"
import { acquireCluster } from "./sharedCluster.js"

const start = (
  env: Env,
  options: { readonly enableAutoPipelining?: boolean },
  inEffect: boolean,
  cluster?: { readonly client: Cluster; readonly release: () => Promise<void> }
): Instance => {
  const redis = cluster?.client ?? new Redis(env.url, options)
  const keyOf = (ns: string, id: number) => `${env.prefix}:${ns}:${id}`
  const miss = async (key: string, ns: string, id: number): Promise<Snapshot> => {
    const value = await env.origin.resolve(ns, id)
    await redis.set(key, JSON.stringify(value), "PX", env.ttlMs)
    return value
  }
  const get = (ns: string, id: number): Promise<Snapshot> => {
    const key = keyOf(ns, id)
    return redis.get(key).then((json) => (json === null ? miss(key, ns, id) : JSON.parse(json)))
  }
  const purge = async (ns: string) => {
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${env.prefix}:${ns}:*`, "COUNT", 1000)
      if (keys.length > 0) await redis.unlink(...keys)
      cursor = next
    } while (cursor !== "0")
  }
  const fill = async (ns: string, ids: ReadonlyArray<number>) => {
    if (cluster !== undefined) {
      // A cluster pipeline takes one slot's keys only: plain SETs, 256 at a time.
      for (let i = 0; i < ids.length; i += 256) {
        await Promise.all(
          ids.slice(i, i + 256).map((id) =>
            redis.set(keyOf(ns, id), JSON.stringify(snapshot(ns, id, env.origin.version(ns))), "PX", env.ttlMs)
          )
        )
      }
      return
    }
    for (let i = 0; i < ids.length; i += 1000) {
      const pipeline = redis.pipeline()
      for (const id of ids.slice(i, i + 1000)) {
        pipeline.set(keyOf(ns, id), JSON.stringify(snapshot(ns, id, env.origin.version(ns))), "PX", env.ttlMs)
      }
      await pipeline.exec()
    }
  }
  const runtime = ManagedRuntime.make(Layer.empty)
  return {
    caller: inEffect
      ? {
        _tag: "effect",
        run: (effect) => runtime.runPromise(effect as Effect.Effect<any, unknown>),
        get: (ns, id) => Effect.promise(() => get(ns, id))
      }
      : { _tag: "promise", get },
    fill,
    invalidateNamespace: purge,
    purgeNamespace: purge,
    close: async () => {
      await runtime.dispose()
      await redis.quit()
      await cluster?.release()
    }
  }
}

export const raw: ReadonlyArray<Contender> = [
  {
    id: "raw",
    label: "raw ioredis GET + JSON.parse",
    family: "raw",
    tier: "redis",
    shared: true,
    start: async (env) => start(env, {}, false)
  },
  {
    id: "raw-autopipeline",
    only: ["hot", "miss"],
    label: "raw ioredis, enableAutoPipelining",
    family: "raw",
    tier: "redis",
    shared: false,
    start: async (env) => start(env, { enableAutoPipelining: true }, false)
  },
  // The baseline for our cluster layer: a GET through ioredis's Cluster client (default options) on the same
  // local cluster. Hot hits only: a purge would need a SCAN per primary, which this row does not do.
  {
    id: "raw-cluster",
    only: ["hot"],
    label: "raw ioredis Cluster GET + JSON.parse (3 primaries, local)",
    family: "raw",
    tier: "redis",
    shared: false,
    start: async (env) => {
      const { cluster, release } = await acquireCluster()
      const client = new Cluster(cluster.nodes.map((url) => {
        const { hostname, port } = new URL(url)
        return { host: hostname, port: Number(port) }
      }))
      return start(env, {}, false, { client, release })
    }
  },
  {
    id: "raw-effect",
    only: ["hot", "miss"],
    label: "raw ioredis GET in Effect.promise, from fibers",
    family: "raw",
    tier: "redis",
    shared: false,
    start: async (env) => start(env, {}, true)
  }
]
