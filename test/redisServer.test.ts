/**
 * The tests' own redis-server helper: a server outlives no owner, even one that was SIGKILLed and ran no cleanup.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { startRedisSentinel } from "./support/redisSentinel.js"
import { startRedisServer, waitForRedis } from "./support/redisServer.js"
import { makeCertificates } from "./support/tls.js"

/** Whether `pid` is a running process (a zombie, exited but not yet reaped, counts as gone). */
const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // The state follows the command name, which is in parentheses.
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z"
  } catch {
    return true // no /proc: kill -0 is all we can ask
  }
}

/** Polls `condition` every 50 ms until it holds (true) or `timeoutMs` passes (false). */
const eventually = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

describe("startRedisServer", () => {
  it("stops the server when its owner is SIGKILLed", async () => {
    const root = fileURLToPath(new URL("..", import.meta.url))
    const owner = spawn(process.execPath, ["--import", "tsx", "test/support/redisOwner.ts"], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let server: { pid: number; port: number } | undefined
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the owner did not report its server within 20 s")), 20_000)
        owner.once("exit", (code) => reject(new Error(`the owner exited (${code}) before reporting its server`)))
        createInterface({ input: owner.stdout! }).once("line", (line) => {
          clearTimeout(timer)
          resolve(line)
        })
      })
      server = JSON.parse(line) as { pid: number; port: number }
      await waitForRedis(server.port)
      assert.isTrue(running(server.pid))

      owner.kill("SIGKILL")
      // The watcher polls every 0.2 s and the server exits on SIGTERM at once; 5 s leaves room for a loaded machine.
      const { pid, port } = server
      assert.isTrue(
        await eventually(() => !running(pid), 5000),
        `redis-server ${pid} still runs 5 s after its owner died`
      )
      await waitForRedis(port, 200).then(
        () => assert.fail(`something still answers on port ${port}`),
        () => {}
      )
    } finally {
      owner.kill("SIGKILL")
      // Never leave a server behind, whatever failed above.
      if (server !== undefined && running(server.pid)) process.kill(server.pid, "SIGKILL")
    }
  }, 30_000)

  it("a TLS server that requires a client certificate answers only a client that has one", async () => {
    const certificates = makeCertificates()
    const server = await startRedisServer({ tls: certificates, requireClientCert: true })
    try {
      assert.match(server.url, /^rediss:/)
      await waitForRedis(server.port, 2000, certificates)
      // Without the client certificate (plain TCP, then TLS with the CA only) nothing answers PING.
      await waitForRedis(server.port, 200).then(() => assert.fail("answered in plaintext"), () => {})
      await waitForRedis(server.port, 200, { ...certificates, clientCert: "", clientKey: "" }).then(
        () => assert.fail("answered a client without a certificate"),
        () => {}
      )
    } finally {
      await server.stop()
      certificates.remove()
    }
  }, 30_000)
})

describe("startRedisSentinel", () => {
  it("a SIGKILLed primary is replaced by its replica within seconds; stop ends every process", async () => {
    const setup = await startRedisSentinel()
    try {
      const primary = await setup.primary()
      assert.strictEqual(primary, setup.servers[0])
      primary.process.kill("SIGKILL")
      assert.strictEqual(await setup.waitForFailover(primary), setup.servers[1])
    } finally {
      await setup.stop()
    }
    for (const server of setup.servers) assert.isFalse(running(server.process.pid!))
  }, 30_000)
})
