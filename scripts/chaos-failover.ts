/**
 * `npm run chaos:failover` — confirmed invalidation through failovers, many times over (test/failover.test.ts runs
 * each once). For each topology (Sentinel: a primary, a replica, three sentinels; a Redis Cluster of 3 primaries
 * and 3 replicas) and each fault (the primary SIGKILLed, or SIGSTOPped past its failover and then resumed), `--runs`
 * runs (default 5) on a fresh topology each: readers and an invalidator every ~50 ms on two caches side by side, one
 * with `confirmInvalidation: { replicas: 1, timeout: "200 millis" }` and one without (test/support/failoverChaos.ts).
 *
 * Prints one line per run and a summary: stale reads (a read that started after an invalidation of its namespace
 * had returned and answered a version from before it), invalidations returned / issued, and the median and
 * slowest invalidation that returned. Exits non-zero when the confirmed cache served a stale read.
 *
 * Options: --runs N --only sentinel|cluster
 */
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"
import {
  chaosRun,
  type Counts,
  type Fault,
  startClusterTopology,
  startSentinelTopology,
  type Topology
} from "../test/support/failoverChaos.js"

const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, only: { type: "string" } }
})
const runs = Number(values.runs)

const line = (counts: Counts) =>
  `stale ${counts.stale}${counts.stale > 0 ? ` ${JSON.stringify(counts.staleOutcomes)}` : ""}, ` +
  `invalidations ${counts.invalidations - counts.invalidationsFailed}/${counts.invalidations} returned ` +
  `(p50 ${counts.invalidationMs.p50} ms, max ${counts.invalidationMs.max} ms), reads ${counts.reads}`

const main = async () => {
  const topologies: Array<[string, () => Promise<Topology>]> = [
    ["sentinel", startSentinelTopology],
    ["cluster", startClusterTopology]
  ]
  const summary: Array<string> = []
  let confirmedStale = 0
  for (const [name, start] of topologies) {
    if (values.only !== undefined && values.only !== name) continue
    for (const how of ["kill", "stop"] as Array<Fault>) {
      const staleConfirmed: Array<number> = []
      const staleUnconfirmed: Array<number> = []
      let retries = 0
      for (let run = 1; run <= runs; run++) {
        const topology = await start()
        try {
          const { confirmed, unconfirmed } = await Effect.runPromise(chaosRun(topology, how, `${name}${how}${run}`))
          console.log(`${name} ${how} run ${run}: confirmed: ${line(confirmed)} | unconfirmed: ${line(unconfirmed)}`)
          staleConfirmed.push(confirmed.stale)
          staleUnconfirmed.push(unconfirmed.stale)
          confirmedStale += confirmed.stale
        } catch (error) {
          // The topology, not the cache, failed to recover (e.g. the old primary never came back): run again.
          console.log(`${name} ${how} run ${run}: not counted, the topology did not recover: ${String(error)}`)
          if (++retries > 3) throw error
          run--
        } finally {
          await topology.stop()
        }
      }
      const runsWith = (counts: Array<number>) => counts.filter((n) => n > 0).length
      summary.push(
        `${name} ${how}: stale reads per run, confirmed [${staleConfirmed.join(", ")}] (${
          runsWith(staleConfirmed)
        } of ${runs} runs), ` +
          `unconfirmed [${staleUnconfirmed.join(", ")}] (${runsWith(staleUnconfirmed)} of ${runs} runs)`
      )
    }
  }
  console.log("\nsummary")
  for (const entry of summary) console.log(entry)
  if (confirmedStale > 0) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
