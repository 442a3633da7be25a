import type { TestProject } from "vitest/node"
import { type RedisCluster, startRedisCluster } from "./support/redisCluster.js"
import { type RedisServer, startRedisServer } from "./support/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    /** Node URLs of a Redis Cluster: REDIS_CLUSTER_NODES (comma-separated), or one the suite started. */
    redisClusterNodes: Array<string>
  }
}

let server: RedisServer | undefined
let cluster: RedisCluster | undefined

/** One redis-server for the suite, unless REDIS_URL points the tests at another (which they then never flush). */
const redis = async (project: TestProject) => {
  const url = process.env.REDIS_URL
  if (url !== undefined && url !== "") {
    project.provide("redisUrl", url)
    return
  }
  server = await startRedisServer()
  project.provide("redisUrl", server.url)
}

/**
 * One local Redis Cluster (3 primaries, 3 replicas) for the suite, unless REDIS_CLUSTER_NODES names the nodes of
 * another (which the tests then never flush).
 */
const redisCluster = async (project: TestProject) => {
  const nodes = process.env.REDIS_CLUSTER_NODES
  if (nodes !== undefined && nodes !== "") {
    project.provide("redisClusterNodes", nodes.split(",").map((node) => node.trim()).filter((node) => node !== ""))
    return
  }
  // A generous node timeout: nothing in the shared cluster should ever fail over, however loaded the machine.
  cluster = await startRedisCluster({ nodeTimeoutMs: 5000 }).catch((error) => {
    throw new Error(
      `${
        error instanceof Error ? error.message : String(error)
      }\n(Or set REDIS_CLUSTER_NODES to the nodes of a cluster ` +
        "the tests may use, e.g. `docker compose --profile cluster up -d redis-cluster` and " +
        "REDIS_CLUSTER_NODES=redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002.)"
    )
  })
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
