/**
 * One local Redis Cluster (3 primaries + 3 replicas) for every cluster contender of a run: our cluster layer and
 * raw ioredis `Cluster` measure against the same nodes, and the 2-core machine does not run two clusters at once.
 * Started by the first contender that asks, stopped when the last one closes.
 */
import { type RedisCluster, startRedisCluster } from "../../test/support/redisCluster.js"

let shared: { cluster: Promise<RedisCluster>; users: number } | undefined

/** The cluster, and how to let go of it. */
export const acquireCluster = async (): Promise<
  { readonly cluster: RedisCluster; readonly release: () => Promise<void> }
> => {
  if (shared === undefined) shared = { cluster: startRedisCluster({ nodeTimeoutMs: 5000 }), users: 0 }
  const current = shared
  current.users++
  let released = false
  const release = async () => {
    if (released) return
    released = true
    if (--current.users > 0) return
    if (shared === current) shared = undefined
    await (await current.cluster).stop()
  }
  try {
    return { cluster: await current.cluster, release }
  } catch (error) {
    await release().catch(() => {})
    throw error
  }
}
