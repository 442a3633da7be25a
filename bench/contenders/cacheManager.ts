/**
 * cache-manager 7 with a Keyv store on @keyv/redis (node-redis underneath), calls through `wrap` (which
 * coalesces concurrent misses in process). Keyv's namespace is the contender's prefix; it has no per-tenant
 * namespaces, so it takes no part in the invalidation workloads.
 */
import KeyvRedis from "@keyv/redis"
import { createCache } from "cache-manager"
import { Keyv } from "keyv"
import type { Contender } from "../Contender.js"
import type { Snapshot } from "../Origin.js"

export const cacheManager: ReadonlyArray<Contender> = [{
  id: "cache-manager",
  label: "cache-manager + @keyv/redis",
  family: "peer",
  tier: "redis",
  shared: true,
  start: async (env) => {
    const keyv = new Keyv({ store: new KeyvRedis(env.url), namespace: env.prefix })
    const cache = createCache({ stores: [keyv] })
    await keyv.get("warm-up") // connects
    return {
      caller: {
        _tag: "promise",
        get: (ns, id) => cache.wrap<Snapshot>(`${ns}:${id}`, () => env.origin.resolve(ns, id), env.ttlMs)
      },
      close: async () => {
        await cache.disconnect()
      }
    }
  }
}]
