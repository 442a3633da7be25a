import type { TestProject } from "vitest/node"
import { type RedisServer, startRedisServer } from "../../../test/support/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
  }
}

let server: RedisServer | undefined

/** One redis-server for the suite (the root's helper: a free loopback port, stopped by PID), unless REDIS_URL. */
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
