/**
 * A process that owns a test redis-server and never stops it, for test/redisServer.test.ts: starts one with
 * `startRedisServer`, prints `{"pid":…,"port":…}` on one line, then waits to be killed.
 */
import { startRedisServer } from "./redisServer.js"

const server = await startRedisServer()
process.stdout.write(`${JSON.stringify({ pid: server.process.pid, port: server.port })}\n`)
setInterval(() => {}, 60_000)
