/**
 * Starts a `redis-server` of the tests' own on a free loopback port, and stops exactly that process. Tests never
 * use or flush a server they did not start.
 *
 * A server also stops when the process that started it (its owner) is gone, however it went — a test runner or a
 * benchmark SIGKILLed, say, which runs no cleanup: a small watcher process polls the owner and stops the server
 * then (as `scripts/redis-cluster.sh` does for its cluster with REDIS_CLUSTER_OWNER_PID).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Tls from "node:tls"
import type { TestCertificates } from "./tls.js"

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>`, or `rediss://127.0.0.1:<port>` for a TLS server. */
  readonly url: string
  /** The server's own directory (its config file, when it has one, is `redis.conf` there). */
  readonly dir: string
  readonly process: ChildProcess
  /** Stops the server and waits for the process to exit. */
  readonly stop: () => Promise<void>
}

export const redisServerBinary = (): string => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim()
  } catch {
    throw new Error(
      "redis-server is not installed: the tests start their own. Install it with `apt-get install redis-server` " +
        "(or `brew install redis`), or set REDIS_URL to a server the tests may use."
    )
  }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

const answersPing = (port: number, tls: TestCertificates | undefined): Promise<boolean> =>
  new Promise((resolve) => {
    const ping = () => socket.write("PING\r\n")
    // Over TLS with the client certificate, so that a server which requires one answers too.
    const socket = tls === undefined ? new Socket().connect(port, "127.0.0.1", ping) : Tls.connect({
      port,
      host: "127.0.0.1",
      servername: "localhost",
      ca: tls.ca,
      cert: tls.clientCert,
      key: tls.clientKey
    }, ping)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(200, () => done(false))
    socket.once("error", () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

/** Waits until the server on `port` answers PING (over TLS with `tls`), or fails after `timeoutMs`. */
export const waitForRedis = async (port: number, timeoutMs = 5000, tls?: TestCertificates): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await answersPing(port, tls)) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`)
}

// The watcher: `sh -c watcherScript watcher OWNER SERVER DIR`. While both the owner and the server live, it waits
// (polling every 0.2 s: `kill -0` only asks whether a pid exists, and a stopped — SIGSTOPped — server still does).
// When the owner is gone it stops the server — SIGCONT (in case a test stopped it), SIGTERM, SIGKILL if it still
// runs 5 s later — and removes its directory. When the server went first (stopped by `stop`, or killed by a test),
// it just exits. It only ever signals the server's pid, and only while it polls that pid alive, so a pid reused
// after the server exited is not hit (short of a reuse within one 0.2 s poll).
const watcherScript = `
while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.2; done
kill -0 "$1" 2>/dev/null && exit 0
kill -CONT "$2" 2>/dev/null
kill -TERM "$2" 2>/dev/null
for _ in $(seq 1 25); do kill -0 "$2" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$2" 2>/dev/null
rm -rf "$3"
`

/**
 * Starts a server; `args` are extra redis-server options (e.g. `["--maxmemory", "2mb"]`). With `port`, it starts
 * on that port (to restart a killed server where its clients expect it). `ownerPid` (default: this process) is
 * the process whose exit stops the server even when `stop` is never called.
 *
 * `config` is the text of a config file written into the server's directory and passed first (a sentinel needs
 * one it can rewrite); `sentinel` starts it as a Redis Sentinel. With `tls`, the server speaks TLS only, on `port`,
 * with the certificates' server certificate; `requireClientCert` makes it refuse clients without one the CA signed.
 */
export const startRedisServer = async (
  options: {
    readonly port?: number
    readonly args?: ReadonlyArray<string>
    readonly ownerPid?: number
    readonly config?: string
    readonly sentinel?: boolean
    readonly tls?: TestCertificates
    readonly requireClientCert?: boolean
  } = {}
): Promise<RedisServer> => {
  const binary = redisServerBinary()
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), "rc-redis-"))
  const tls = options.tls
  const config = options.config === undefined ? [] : [join(dir, "redis.conf")]
  if (options.config !== undefined) writeFileSync(config[0]!, options.config)
  const child = spawn(binary, [
    ...config,
    ...(options.sentinel === true ? ["--sentinel"] : []),
    ...(tls === undefined ? ["--port", String(port)] : [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--tls-cert-file",
      tls.files.serverCert,
      "--tls-key-file",
      tls.files.serverKey,
      "--tls-ca-cert-file",
      tls.files.ca,
      "--tls-auth-clients",
      options.requireClientCert === true ? "yes" : "no",
      // A replica of a TLS primary connects to it over TLS too.
      "--tls-replication",
      "yes"
    ]),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--protected-mode",
    "yes",
    ...(options.args ?? [])
  ], { stdio: ["ignore", "ignore", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  // Not detached: a Ctrl-C to our process group stops the watcher along with the server. Unreferenced, so it
  // never keeps this process alive.
  const owner = String(options.ownerPid ?? process.pid)
  const watcher = spawn("sh", ["-c", watcherScript, "watcher", owner, String(child.pid), dir], { stdio: "ignore" })
  watcher.unref()
  const cleanup = () => {
    watcher.kill("SIGTERM")
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.race([
      waitForRedis(port, 5000, tls),
      exited.then(() => {
        throw new Error(`redis-server exited at start (port ${port} taken?)`)
      })
    ])
  } catch (error) {
    child.kill("SIGKILL")
    cleanup()
    throw error
  }
  return {
    port,
    url: tls === undefined ? `redis://127.0.0.1:${port}` : `rediss://127.0.0.1:${port}`,
    dir,
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT")
        child.kill("SIGTERM")
        const killer = setTimeout(() => child.kill("SIGKILL"), 3000)
        await exited
        clearTimeout(killer)
      }
      cleanup()
    }
  }
}
