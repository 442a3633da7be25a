/**
 * One benchmark run in one process: starts its own redis-server, starts every contender against it, runs the
 * workloads in order (each one interleaving its contenders round by round), stops everything, and returns the
 * results (written to `outDir` as `<date>.json` and `<date>.md` when given).
 */
import { Redis } from "ioredis"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { startRedisServer } from "../test/support/redisServer.js"
import type { Bench, Entrant, Table, Workload } from "./Bench.js"
import { prefixOf } from "./Contender.js"
import { contenders as allContenders } from "./contenders/index.js"
import { describeMachine } from "./Machine.js"
import { Origin } from "./Origin.js"
import { type Results, resultsMarkdown } from "./Report.js"
import { sizesNamed } from "./Sizes.js"
import { hot } from "./workloads/hot.js"
import { invalidation } from "./workloads/invalidation.js"
import { miss } from "./workloads/miss.js"
import { processes } from "./workloads/processes.js"
import { soak } from "./workloads/soak.js"
import { stampede } from "./workloads/stampede.js"
import { sweep } from "./workloads/sweep.js"

/** In the order they run. */
export const workloads: ReadonlyArray<Workload> = [hot, miss, stampede, processes, invalidation, sweep, soak]

export interface RunOptions {
  readonly sizes?: "tiny" | "full" | undefined
  /** Workload ids to run (default: all). */
  readonly workloads?: ReadonlyArray<string> | undefined
  /** Contender ids to run (default: all but the extra ones). */
  readonly contenders?: ReadonlyArray<string> | undefined
  /** Also run the contenders marked extra. */
  readonly all?: boolean | undefined
  /** Distinct keys of the soak, for every layer (default: the sizes'). */
  readonly soakKeys?: number | undefined
  /**
   * Where to write `<date>.json` and `<date>.md` (`<date>-<workloads>.…` for a partial run); nothing is written
   * without it.
   */
  readonly outDir?: string | undefined
  readonly log?: ((line: string) => void) | undefined
}

export const run = async (options: RunOptions = {}): Promise<Results> => {
  const sizes = sizesNamed(options.sizes ?? "full", options.soakKeys)
  const log = options.log ?? (() => {})
  const started = new Date()
  const t0 = performance.now()
  const server = await startRedisServer()
  // Interrupted (Ctrl-C): stop our redis-server rather than leave it running.
  const onSignal = () => void server.stop().finally(() => process.exit(130))
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const admin = new Redis(server.url)
  const entrants: Array<Entrant> = []
  const skipped: Array<{ contender: string; reason: string }> = []
  try {
    const machine = await describeMachine(admin)
    const origin = new Origin()
    const chosen = allContenders.filter((c) =>
      options.contenders !== undefined ? options.contenders.includes(c.id) : options.all === true || !c.extra
    )
    for (const contender of chosen) {
      const env = {
        url: server.url,
        host: "127.0.0.1",
        port: server.port,
        prefix: prefixOf(contender.id),
        origin,
        ttlMs: 600_000
      }
      log(`starting ${contender.id}`)
      const instance = await contender.start(env)
      if (instance === undefined) skipped.push({ contender: contender.id, reason: "not supported by this build" })
      else entrants.push({ contender, instance, env })
    }
    const bench: Bench = {
      sizes,
      redis: { url: server.url, host: "127.0.0.1", port: server.port },
      admin,
      origin,
      entrants,
      log
    }
    const tables: Array<Table> = []
    for (const workload of workloads) {
      if (options.workloads !== undefined && !options.workloads.includes(workload.id)) continue
      const w0 = performance.now()
      for (const table of await workload.run(bench)) tables.push(table)
      log(`${workload.id}: ${((performance.now() - w0) / 1000).toFixed(1)} s`)
    }
    for (const entrant of entrants) {
      const counters = entrant.instance.counters?.()
      if (counters !== undefined) log(`${entrant.contender.id}: ${JSON.stringify(counters)}`)
    }
    const results: Results = {
      startedAt: started.toISOString(),
      durationS: (performance.now() - t0) / 1000,
      sizes: sizes.name,
      machine,
      skipped,
      tables
    }
    if (options.outDir !== undefined) {
      mkdirSync(options.outDir, { recursive: true })
      const date = started.toISOString().slice(0, 10)
      const name = options.workloads === undefined ? date : `${date}-${options.workloads.join("-")}`
      writeFileSync(join(options.outDir, `${name}.json`), JSON.stringify(results, null, 2) + "\n")
      writeFileSync(join(options.outDir, `${name}.md`), resultsMarkdown(results))
    }
    return results
  } finally {
    for (const entrant of entrants) await entrant.instance.close().catch(() => {})
    admin.disconnect()
    await server.stop()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}
