/**
 * A local Redis Cluster of the tests' own (3 primaries, 3 replicas), started and stopped with
 * `scripts/redis-cluster.sh` on six free loopback ports whose cluster-bus ports (+10000) are free too. Tests only
 * ever stop or kill the processes of a cluster they started.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { redisServerBinary } from "./redisServer.js"
import type { TestCertificates } from "./tls.js"

const run = promisify(execFile)

export const clusterScript = resolve(dirname(fileURLToPath(import.meta.url)), "../../scripts/redis-cluster.sh")

const NODES = 6

export interface RedisCluster {
  /** `redis://127.0.0.1:<port>` (`rediss://` for a TLS cluster) of each node (which are primaries is for the cluster to say: CLUSTER NODES). */
  readonly nodes: ReadonlyArray<string>
  readonly ports: ReadonlyArray<number>
  readonly dir: string
  /** The pid of the node on `port`, as its pid file says. */
  readonly pid: (port: number) => number
  /** SIGKILLs the node on `port`: a crash. */
  readonly kill: (port: number) => Promise<void>
  /** Stops exactly this cluster's processes and removes its files. */
  readonly stop: () => Promise<void>
}

/** Whether 127.0.0.1:`port` can be bound right now (what redis-server will do). */
const bindable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once("error", () => resolve(false))
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)))
  })

/**
 * A base port whose six node ports and six bus ports are all free. Bases are drawn from 20000–29990, so that the
 * bus ports (30000–39995) exist; a free port may be taken before the cluster binds it, so `startRedisCluster`
 * retries with another base.
 */
export const freeBasePort = async (): Promise<number> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 999) * 10
    const ports = Array.from({ length: NODES }, (_, i) => base + i)
    const free = await Promise.all([...ports, ...ports.map((p) => p + 10_000)].map(bindable))
    if (free.every(Boolean)) return base
  }
  throw new Error("no free range of 6 loopback ports (and their +10000 cluster-bus ports) found")
}

const script = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run("bash", [clusterScript, ...args], { env: { ...process.env, ...env }, timeout: 60_000 })

/**
 * Starts a cluster. `nodeTimeoutMs` is the cluster-node-timeout: how long a silent primary takes to be declared
 * failed (and its replica promoted). With `tls`, the nodes speak TLS only (`tls-cluster yes`), with the
 * certificates' server certificate, and do not ask clients for one.
 */
export const startRedisCluster = async (
  options: { readonly nodeTimeoutMs?: number; readonly tls?: TestCertificates } = {}
): Promise<RedisCluster> => {
  redisServerBinary()
  const dir = mkdtempSync(join(tmpdir(), "rc-cluster-"))
  const tls = options.tls
  const env = {
    ...(tls === undefined ? {} : {
      REDIS_CLUSTER_TLS_CERT: tls.files.serverCert,
      REDIS_CLUSTER_TLS_KEY: tls.files.serverKey,
      REDIS_CLUSTER_TLS_CA: tls.files.ca
    }),
    REDIS_CLUSTER_NODE_TIMEOUT: String(options.nodeTimeoutMs ?? 2000),
    // If this process dies without stopping the cluster (killed by a CI timeout, say), the script stops it.
    REDIS_CLUSTER_OWNER_PID: String(process.pid)
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const base = await freeBasePort()
    try {
      const { stdout } = await script(["start", dir, String(base)], env)
      const nodes = stdout.trim().split("\n").at(-1)!.split(",")
      const ports = nodes.map((url) => Number(new URL(url).port))
      const pid = (port: number) => Number(readFileSync(join(dir, `${port}.pid`), "utf8").trim())
      return {
        nodes,
        ports,
        dir,
        pid,
        kill: async (port) => {
          await script(["kill", dir, String(port)])
        },
        stop: async () => {
          await script(["stop", dir])
          rmSync(dir, { recursive: true, force: true })
        }
      }
    } catch (error) {
      lastError = error
      // The script stops what it started when `start` fails; make sure, then try another range.
      if (existsSync(dir)) await script(["stop", dir]).catch(() => undefined)
    }
  }
  rmSync(dir, { recursive: true, force: true })
  const stderr = (lastError as { stderr?: string } | undefined)?.stderr
  throw new Error(`could not start a local Redis Cluster: ${stderr ?? String(lastError)}`)
}
