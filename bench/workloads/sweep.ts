/**
 * Sweep: purge a namespace of many entries beside another namespace whose entries must all survive, while another
 * client keeps reading an unrelated key. Reported: entries removed per second (by DBSIZE), the other client's
 * latency during the purge against its latency just before, and how many survivors were lost (each lost one
 * makes the resolver run when the survivors are read back).
 */
import { Redis } from "ioredis"
import { performance } from "node:perf_hooks"
import { type Bench, entrantsOf, gc, type Workload } from "../Bench.js"
import { fill, runAll } from "../Driver.js"
import { Histogram } from "../Histogram.js"
import { snapshot } from "../Origin.js"

/** Another application's client: sequential GETs of one key, timed, until `stop`. */
const otherClient = (url: string, stop: () => boolean) => {
  const client = new Redis(url)
  const histogram = new Histogram()
  const run = async () => {
    while (!stop()) {
      const start = performance.now()
      await client.get("bench:other-client")
      histogram.record(performance.now() - start)
    }
  }
  return { histogram, done: run().finally(() => client.disconnect()) }
}

export const sweep: Workload = {
  id: "sweep",
  run: async (bench: Bench) => {
    const entrants = entrantsOf(
      bench,
      "sweep",
      // Redis-only contenders: a memory tier in front changes nothing in what a purge costs Redis.
      (e) => e.instance.purgeNamespace !== undefined && e.contender.tier === "redis"
    )
    const { doomed, survivors, fillConcurrency } = bench.sizes.sweep
    const rows = []
    for (const entrant of entrants) {
      await bench.admin.flushall()
      bench.log(`sweep: ${entrant.contender.id}: filling ${doomed} + ${survivors} entries`)
      const doomedIds = Array.from({ length: doomed }, (_, i) => i)
      const survivorIds = Array.from({ length: survivors }, (_, i) => i)
      bench.origin.reset()
      await fill(entrant.instance, "sweep-doomed", doomedIds, fillConcurrency)
      await fill(entrant.instance, "sweep-kept", survivorIds, fillConcurrency)
      await bench.admin.set("bench:other-client", JSON.stringify(snapshot("other", 1, 0)))
      gc()
      const before = await bench.admin.dbsize()

      let phase: "baseline" | "sweep" | "done" = "baseline"
      const baseline = otherClient(bench.redis.url, () => phase !== "baseline")
      await new Promise((resolve) => setTimeout(resolve, 300))
      phase = "sweep"
      await baseline.done
      const during = otherClient(bench.redis.url, () => phase === "done")
      const t0 = performance.now()
      await entrant.instance.purgeNamespace!("sweep-doomed")
      const sweepMs = performance.now() - t0
      phase = "done"
      await during.done
      const removed = before - (await bench.admin.dbsize())

      const runsBefore = bench.origin.runs
      await runAll(entrant.instance.caller, survivorIds, () => "sweep-kept", fillConcurrency)
      const lost = bench.origin.runs - runsBefore
      const other = during.histogram.summary()
      rows.push({
        contender: entrant.contender.id,
        label: entrant.contender.label,
        values: {
          removed,
          sweepMs,
          keysPerSec: removed / (sweepMs / 1000),
          otherP50Ms: other.p50Ms,
          otherP99Ms: other.p99Ms,
          otherMaxMs: other.maxMs,
          baselineP99Ms: baseline.histogram.quantileMs(0.99),
          lost
        },
        rounds: [{ other, baseline: baseline.histogram.summary() }]
      })
    }
    await bench.admin.flushall()
    return [{
      id: "sweep",
      title: `Purge of ${doomed.toLocaleString("en-US")} entries beside ${survivors.toLocaleString("en-US")} that stay`,
      note: `Entries removed counted by DBSIZE; the other client reads one unrelated key, one GET at a time, on ` +
        `its own connection ("before" is its p99 over 300 ms just before the purge). "lost" counts entries of the ` +
        `kept namespace that had to be resolved again afterwards. Ours: purgeNamespace; raw: SCAN + UNLINK ` +
        `(COUNT 1000); bentocache: namespace clear().`,
      columns: [
        { key: "label", header: "contender", format: "text" },
        { key: "removed", header: "removed", format: "count" },
        { key: "sweepMs", header: "purge ms", format: "ms" },
        { key: "keysPerSec", header: "keys/s", format: "ops" },
        { key: "otherP50Ms", header: "other p50 ms", format: "ms" },
        { key: "otherP99Ms", header: "other p99 ms", format: "ms" },
        { key: "otherMaxMs", header: "other max ms", format: "ms" },
        { key: "baselineP99Ms", header: "other p99 before", format: "ms" },
        { key: "lost", header: "lost", format: "count" }
      ],
      rows
    }]
  }
}
