/**
 * Starts a `redis-server` of the tests' own on a free loopback port, and stops exactly that process. Tests never
 * use or flush a server they did not start.
 *
 * A server also stops when the process that started it (its owner) is gone, however it went — a test runner or a
 * benchmark SIGKILLed, say, which runs no cleanup: a small watcher process polls the owner and stops the server
 * then (as `scripts/redis-cluster.sh` does for its cluster with REDIS_CLUSTER_OWNER_PID).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface RedisServer {
  readonly port: number
  readonly url: string
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

const answersPing = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(200, () => done(false))
    socket.once("error", () => done(false))
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

/** Waits until the server on `port` answers PING, or fails after `timeoutMs`. */
export const waitForRedis = async (port: number, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await answersPing(port)) return
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
 */
export const startRedisServer = async (
  options: {
    readonly port?: number
    readonly args?: ReadonlyArray<string>
    readonly ownerPid?: number
    /** A configuration file, given before every other option (a sentinel needs one it can rewrite). */
    readonly config?: string
  } = {}
): Promise<RedisServer> => {
  const binary = redisServerBinary()
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), "rc-redis-"))
  const child = spawn(binary, [
    ...(options.config === undefined ? [] : [options.config]),
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", "no",
    "--dir", dir,
    "--protected-mode", "yes",
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
      waitForRedis(port),
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
    url: `redis://127.0.0.1:${port}`,
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
