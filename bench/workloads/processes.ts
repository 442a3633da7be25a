/**
 * Stampede across processes: the same cold key hit by callers in several processes at once (4 × 250 by default),
 * each process with its own client and its own in-process single flight. Only a lock in Redis brings the resolver
 * runs down to one here. Worker processes are started once for the whole workload; each round sends every worker
 * the same command at once.
 */
import { performance } from "node:perf_hooks"
import { type Bench, entrantsOf, interleave, median, type Workload } from "../Bench.js"
import { startWorker, type Worker } from "../Worker.js"

export interface Command {
  readonly contender: string
  readonly ns: string
  readonly id: number
  readonly callers: number
  readonly resolverMs: number
  readonly counterKey: string
}

interface Reply {
  readonly wallMs: number
  readonly errors: number
  readonly runs: number
  readonly error?: string
}

const startProcess = (bench: Bench, ids: ReadonlyArray<string>, ttlMs: number): Worker =>
  startWorker("./processWorker.ts", [
    bench.redis.url,
    bench.redis.host,
    String(bench.redis.port),
    ids.join(","),
    String(ttlMs)
  ])

export const processes: Workload = {
  id: "stampede-processes",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "stampede-processes", (e) => e.contender.shared)
    const { callersEach, processes: count, resolverMs, rounds } = bench.sizes.processes
    bench.log(`stampede across ${count} processes: starting workers`)
    const ids = entrants.map((e) => e.contender.id)
    const workers = Array.from({ length: count }, () => startProcess(bench, ids, entrants[0]?.env.ttlMs ?? 600_000))
    try {
      for (const worker of workers) {
        const line = await worker.next()
        if (line !== "ready") throw new Error(`a stampede worker did not start: ${line}`)
      }
      bench.log(`stampede across ${count} processes × ${callersEach} callers, ${rounds} rounds × ${entrants.length}`)
      let key = 30_000_000
      const results = await interleave(entrants, rounds, async (entrant, round) => {
        const command: Command = {
          contender: entrant.contender.id,
          ns: "stampede-processes",
          id: key++,
          callers: callersEach,
          resolverMs,
          counterKey: `bench:resolver-runs:${entrant.contender.id}:${round}`
        }
        const t0 = performance.now()
        for (const worker of workers) worker.send(JSON.stringify(command))
        const replies = (await Promise.all(workers.map((w) => w.next()))).map((line) => JSON.parse(line) as Reply)
        const wallMs = performance.now() - t0
        const failed = replies.find((r) => r.error !== undefined)
        if (failed !== undefined) throw new Error(`stampede worker: ${failed.error}`)
        const runs = Number(await bench.admin.get(command.counterKey) ?? 0)
        return {
          runs,
          wallMs,
          errors: replies.reduce((n, r) => n + r.errors, 0),
          runsByProcess: replies.map((r) => r.runs)
        }
      })
      return [{
        id: "stampede-processes",
        title: `Stampede across ${count} processes: ${count} × ${callersEach} callers on one cold key`,
        note: `Resolver takes ${resolverMs} ms and counts its runs with INCR in Redis. Wall time from sending the ` +
          `command to the last process's answer (includes the pipe to each process). Median of ${rounds} rounds; ` +
          `"resolver runs" is the most seen in any round.`,
        columns: [
          { key: "label", header: "contender", format: "text" },
          { key: "runs", header: "resolver runs", format: "count" },
          { key: "wallMs", header: "wall ms", format: "ms" },
          { key: "errors", header: "errors", format: "count" }
        ],
        rows: [...results].map(([entrant, r]) => ({
          contender: entrant.contender.id,
          label: entrant.contender.label,
          values: {
            runs: Math.max(...r.map((x) => x.runs)),
            wallMs: median(r.map((x) => x.wallMs)),
            errors: r.reduce((n, x) => n + x.errors, 0)
          },
          rounds: r
        }))
      }]
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()))
    }
  }
}
