/**
 * `npm run bench:service`: hot-hit requests/s and p99 of the service against a minimal HttpApi server on the same
 * stack that returns a body of the same size (`bench/reference.ts`), side by side in one run: the service with the
 * embedded ledger and memory cache, and with Redis (a redis-server of the run's own, for the cache and the rate
 * limiter). Auth and rate limiting are on (the demo token; a limit no run reaches). Each server is a process of its
 * own; autocannon (64 connections) drives them one at a time, round by round, the order turning each round
 * (A B C, B C A, C A B, …), and the medians are reported. Nothing is asserted: it prints the ratios.
 *
 * Each server is first loaded for `--warmup` seconds: the service's JIT takes several seconds of load to settle,
 * the reference's about two. Besides requests/s, each round reads the server process's CPU time (Linux
 * `/proc/<pid>/stat`), which varies less from round to round on a shared machine than the throughput does.
 *
 *   npm run bench:service -- --rounds 5 --seconds 4 --warmup 6 --connections 64
 */
import autocannon from "autocannon"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { startRedisServer } from "../../../test/support/redisServer.js"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "4" },
    warmup: { type: "string", default: "6" },
    connections: { type: "string", default: "64" }
  }
})
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const warmup = Number(values.warmup)
const connections = Number(values.connections)

const root = fileURLToPath(new URL("..", import.meta.url))
const acme = "6b1f3c2a-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
const path = `/tenants/${acme}/snapshots/2025-06-30`
const token = "demo-acme-reader"

interface Server {
  readonly name: string
  readonly url: string
  readonly child: ChildProcess
}

/** Starts `script` with `env`, and waits for its line `<what> on http://…`. */
const start = (name: string, script: string, env: Record<string, string>): Promise<Server> =>
  new Promise((resolve, reject) => {
    const clean = { ...process.env }
    for (const key of ["REDIS_URL", "DATABASE_URL", "API_TOKENS", "LOG_LEVEL", "RATE_LIMIT_PER_SECOND"]) {
      delete clean[key]
    }
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: root,
      env: { ...clean, PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString()
      const match = / on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) {
        child.stdout!.off("data", onOutput)
        child.stderr!.off("data", onOutput)
        resolve({ name, url: match[1]!, child })
      }
    }
    child.stdout!.on("data", onOutput)
    child.stderr!.on("data", onOutput)
    child.once("exit", (code) => reject(new Error(`${name} exited (${code}) before listening:\n${output}`)))
  })

const stop = (server: Server) =>
  new Promise<void>((resolve) => {
    if (server.child.exitCode !== null) return resolve()
    server.child.once("exit", () => resolve())
    server.child.kill("SIGTERM")
  })

const get = async (server: Server) => {
  const response = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } })
  const body = await response.text()
  if (response.status !== 200) throw new Error(`${server.name}: ${response.status} ${body}`)
  return { body, cache: response.headers.get("x-cache") }
}

const load = (server: Server, duration: number) =>
  autocannon({
    url: server.url + path,
    connections,
    duration,
    headers: { authorization: `Bearer ${token}` }
  })

/** User + system CPU time of a process in µs, or undefined where `/proc` is not there (not Linux). */
const cpuTimeUs = (pid: number | undefined): number | undefined => {
  try {
    // Fields 14 and 15 (utime, stime), counted after the command name, which may hold spaces; in clock ticks of
    // 10 ms (USER_HZ is 100 on Linux).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const main = async () => {
  const redis = await startRedisServer()
  const servers: Array<Server> = []
  try {
    const common = { RATE_LIMIT_PER_SECOND: "1000000000" }
    const embedded = await start("service, embedded", "src/main.ts", common)
    servers.push(embedded)
    const withRedis = await start("service, Redis", "src/main.ts", { ...common, REDIS_URL: redis.url })
    servers.push(withRedis)
    for (const server of [embedded, withRedis]) {
      const [first, second] = [await get(server), await get(server)]
      if (second.cache !== "hit") throw new Error(`${server.name}: expected a hit, got ${first.cache}, ${second.cache}`)
    }
    const bytes = Buffer.byteLength((await get(embedded)).body)
    const reference = await start("reference", "bench/reference.ts", { BODY_BYTES: String(bytes) })
    servers.unshift(reference)
    const referenceBytes = Buffer.byteLength((await get(reference)).body)
    console.log(
      `bench:service ${new Date().toISOString()}: ${rounds} rounds of ${seconds} s, ${connections} connections; ` +
        `body ${bytes} bytes (reference ${referenceBytes})`
    )
    for (const server of servers) await load(server, warmup)
    const results = new Map<
      string,
      { rps: Array<number>; p99: Array<number>; cpuUsPerRequest: Array<number>; errors: number }
    >()
    for (let round = 1; round <= rounds; round++) {
      // The order turns each round (A B C, B C A, C A B …), so that no server always runs right after another.
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!)
      for (const server of order) {
        const cpuBefore = cpuTimeUs(server.child.pid)
        const result = await load(server, seconds)
        const cpuAfter = cpuTimeUs(server.child.pid)
        const entry = results.get(server.name) ?? { rps: [], p99: [], cpuUsPerRequest: [], errors: 0 }
        entry.rps.push(result.requests.average)
        entry.p99.push(result.latency.p99)
        const cpu = cpuBefore === undefined || cpuAfter === undefined || result.requests.total === 0
          ? undefined
          : (cpuAfter - cpuBefore) / result.requests.total
        if (cpu !== undefined) entry.cpuUsPerRequest.push(cpu)
        entry.errors += result.errors + result.non2xx
        results.set(server.name, entry)
        console.log(
          `  round ${round} ${server.name.padEnd(18)} ${result.requests.average.toFixed(0).padStart(7)} req/s  ` +
            `p99 ${result.latency.p99} ms  ${cpu === undefined ? "" : `CPU ${cpu.toFixed(0)} µs/req  `}` +
            `non-2xx ${result.non2xx}`
        )
      }
    }
    const ref = results.get("reference")!
    const refRps = median(ref.rps)
    const refP99 = median(ref.p99)
    const refCpu = ref.cpuUsPerRequest.length === rounds ? median(ref.cpuUsPerRequest) : undefined
    console.log(
      "\n| server | req/s (median) | × reference | p99 ms (median) | × reference p99 | CPU µs/req (median) | " +
        "× reference CPU | errors |"
    )
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (const [name, entry] of results) {
      const rps = median(entry.rps)
      const p99 = median(entry.p99)
      const cpu = refCpu === undefined || entry.cpuUsPerRequest.length !== rounds
        ? undefined
        : median(entry.cpuUsPerRequest)
      console.log(
        `| ${name} | ${rps.toFixed(0)} | ${(rps / refRps).toFixed(2)} | ${p99} | ${(p99 / refP99).toFixed(2)} | ` +
          `${cpu === undefined ? "–" : cpu.toFixed(0)} | ${cpu === undefined ? "–" : (cpu / refCpu!).toFixed(2)} | ` +
          `${entry.errors} |`
      )
    }
  } finally {
    await Promise.all(servers.map(stop))
    await redis.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
