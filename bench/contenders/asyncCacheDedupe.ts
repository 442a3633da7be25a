/**
 * async-cache-dedupe with its Redis storage on ioredis: one defined function, deduplicating concurrent calls in
 * process. Its invalidation is by references, which costs extra writes on every set, so it is configured without
 * it (as its Redis-only default) and takes no part in the invalidation workloads.
 */
import { createCache } from "async-cache-dedupe"
import { Redis } from "ioredis"
import type { Contender } from "../Contender.js"
import type { Snapshot } from "../Origin.js"

export const asyncCacheDedupe: ReadonlyArray<Contender> = [{
  id: "async-cache-dedupe",
  label: "async-cache-dedupe (Redis)",
  family: "peer",
  tier: "redis",
  shared: true,
  start: async (env) => {
    const redis = new Redis(env.url)
    const cache = createCache({
      ttl: Math.ceil(env.ttlMs / 1000),
      storage: { type: "redis", options: { client: redis } }
    })
      .define(
        "snapshot",
        { serialize: (query: { ns: string; id: number }) => `${env.prefix}:${query.ns}:${query.id}` },
        (query: { ns: string; id: number }): Promise<Snapshot> =>
          Promise.resolve(env.origin.resolve(query.ns, query.id))
      )
    return {
      caller: { _tag: "promise", get: (ns, id) => cache.snapshot({ ns, id }) },
      close: async () => {
        await redis.quit()
      }
    }
  }
}]
