/**
 * @epic-web/cachified over ioredis, through the adapter its docs describe (the entry as JSON, expiring with the
 * entry's total ttl). It has no namespaces, so it takes no part in the invalidation workloads.
 */
import { type Cache, type CacheEntry, cachified as cachifiedCall, totalTtl } from "@epic-web/cachified"
import { Redis } from "ioredis"
import type { Contender } from "../Contender.js"
import type { Snapshot } from "../Origin.js"

export const cachified: ReadonlyArray<Contender> = [{
  id: "cachified",
  label: "@epic-web/cachified (Redis)",
  family: "peer",
  tier: "redis",
  shared: true,
  start: async (env) => {
    const redis = new Redis(env.url)
    const cache: Cache<Snapshot> = {
      name: "ioredis",
      get: async (key) => {
        const json = await redis.get(key)
        return json === null ? null : (JSON.parse(json) as CacheEntry<Snapshot>)
      },
      set: (key, entry) => {
        const ttl = totalTtl(entry.metadata)
        return Number.isFinite(ttl)
          ? redis.set(key, JSON.stringify(entry), "PX", Math.max(1, Math.ceil(ttl)))
          : redis.set(key, JSON.stringify(entry))
      },
      delete: (key) => redis.del(key)
    }
    return {
      caller: {
        _tag: "promise",
        get: (ns, id) =>
          cachifiedCall({
            key: `${env.prefix}:${ns}:${id}`,
            cache,
            ttl: env.ttlMs,
            getFreshValue: () => env.origin.resolve(ns, id)
          })
      },
      close: async () => {
        await redis.quit()
      }
    }
  }
}]
