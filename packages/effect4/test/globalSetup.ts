import type { TestProject } from "vitest/node"
import { type RedisCluster, startRedisCluster } from "../../../test/support/redisCluster.js"
import { type RedisServer, startRedisServer } from "../../../test/support/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    /** Node URLs of a Redis Cluster: REDIS_CLUSTER_NODES (comma-separated), or one the suite started. */
    redisClusterNodes: Array<string>
  }
}

let server: RedisServer | undefined
let cluster: RedisCluster | undefined

/** One redis-server for the suite (the root's helper: a free loopback port, stopped by PID), unless REDIS_URL. */
const redis = async (project: TestProject) => {
  const url = process.env.REDIS_URL
  if (url !== undefined && url !== "") {
    project.provide("redisUrl", url)
    return
  }
  server = await startRedisServer()
  project.provide("redisUrl", server.url)
}

/** One local Redis Cluster (the root's helper: 3 primaries, 3 replicas), unless REDIS_CLUSTER_NODES. */
const redisCluster = async (project: TestProject) => {
  const nodes = process.env.REDIS_CLUSTER_NODES
  if (nodes !== undefined && nodes !== "") {
    project.provide("redisClusterNodes", nodes.split(",").map((node) => node.trim()).filter((node) => node !== ""))
    return
  }
  cluster = await startRedisCluster({ nodeTimeoutMs: 5000 })
  project.provide("redisClusterNodes", [...cluster.nodes])
}

export async function setup(project: TestProject) {
  const started = await Promise.allSettled([redis(project), redisCluster(project)])
  const failed = started.find((result) => result.status === "rejected")
  if (failed !== undefined) {
    await teardown()
    throw failed.reason
  }
}

export async function teardown() {
  await Promise.allSettled([server?.stop(), cluster?.stop()])
}
