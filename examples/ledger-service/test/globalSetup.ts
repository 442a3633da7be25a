import type { TestProject } from "vitest/node"
import { type RedisServer, startRedisServer } from "../../../test/support/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
  }
}

let server: RedisServer | undefined

/** One redis-server for the service's tests, unless REDIS_URL points them at another (which they then never flush). */
export async function setup(project: TestProject) {
  const url = process.env.REDIS_URL
  if (url !== undefined && url !== "") {
    project.provide("redisUrl", url)
    return
  }
  server = await startRedisServer()
  project.provide("redisUrl", server.url)
}

export async function teardown() {
  await server?.stop()
}
