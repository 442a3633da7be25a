/**
 * bentocache with its Redis driver only, and with its in-process (L1) tier in front, as its docs set them up.
 * A namespace is `bento.namespace(ns)`, kept per namespace as an application would; its `clear()` is SCAN +
 * UNLINK in Redis (and drops the L1 entries).
 */
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { redisDriver } from "bentocache/drivers/redis"
import type { Contender, Env, Instance } from "../Contender.js"
import { eachLimited } from "../Driver.js"
import { snapshot } from "../Origin.js"

const start = (env: Env, withMemoryTier: boolean): Instance => {
  const store = bentostore()
  if (withMemoryTier) store.useL1Layer(memoryDriver({ maxItems: 10_000 }))
  store.useL2Layer(redisDriver({ connection: { host: env.host, port: env.port } }))
  const bento = new BentoCache({ default: "cache", prefix: env.prefix, stores: { cache: store } })
  const namespaces = new Map<string, ReturnType<typeof bento.namespace>>()
  const namespace = (ns: string) => {
    let cache = namespaces.get(ns)
    if (cache === undefined) {
      cache = bento.namespace(ns)
      namespaces.set(ns, cache)
    }
    return cache
  }
  const clear = (ns: string) => namespace(ns).clear()
  return {
    fill: (ns, ids) =>
      eachLimited(
        ids,
        256,
        (id) => namespace(ns).set({ key: String(id), value: snapshot(ns, id, env.origin.version(ns)), ttl: env.ttlMs })
      ),
    caller: {
      _tag: "promise",
      get: (ns, id) =>
        namespace(ns).getOrSet({ key: String(id), ttl: env.ttlMs, factory: () => env.origin.resolve(ns, id) })
    },
    invalidateNamespace: clear,
    purgeNamespace: clear,
    capacity: withMemoryTier ? 10_000 : undefined,
    close: () => bento.disconnectAll()
  }
}

export const bentocache: ReadonlyArray<Contender> = [
  {
    id: "bentocache",
    label: "bentocache (Redis only)",
    family: "peer",
    tier: "redis",
    shared: true,
    start: async (env) => start(env, false)
  },
  {
    id: "bentocache-l1",
    label: "bentocache, memory tier + Redis",
    family: "peer",
    tier: "two-tier",
    shared: true,
    start: async (env) => start(env, true)
  }
]
