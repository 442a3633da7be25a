/**
 * Sweep: purge a namespace of many entries beside another namespace whose entries must all survive, while another
 * application's client (a process of its own) keeps reading an unrelated key. Reported: entries removed per second
 * (by DBSIZE), the other client's latency during the purge against its latency just before, and how many
 * survivors were lost (each lost one makes the resolver run when the survivors are read back).
 */
import { performance } from "node:perf_hooks"
import { type Bench, entrantsOf, gc, type Workload } from "../Bench.js"
import { fill, runAll } from "../Driver.js"
import type { LatencySummary } from "../Histogram.js"
import { snapshot } from "../Origin.js"
import { startWorker } from "../Worker.js"

export const sweep: Workload = {
  id: "sweep",
  run: async (bench: Bench) => {
    const entrants = entrantsOf(
      bench,
      "sweep",
      // Redis-only contenders: a memory tier in front changes nothing in what a purge costs Redis.
      (e) => e.instance.purgeNamespace !== undefined && e.contender.tier === "redis"
    )
    const { doomed, fillConcurrency, survivors } = bench.sizes.sweep
    const rows = []
    const other = startWorker("./otherClientWorker.ts", [bench.redis.url, "bench:other-client"])
    // The other client's latency while `during` runs (started once the client says it is measuring).
    const measured = async (during: () => Promise<unknown>): Promise<LatencySummary> => {
      other.send("measure")
      if ((await other.next()) !== "measuring") throw new Error("sweep: the other client stopped")
      await during()
      other.send("report")
      return JSON.parse(await other.next()) as LatencySummary
    }
    try {
      if ((await other.next()) !== "ready") throw new Error("sweep: the other client did not start")
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

        const baseline = await measured(() => new Promise((resolve) => setTimeout(resolve, 300)))
        let sweepMs = 0
        const during = await measured(async () => {
          const t0 = performance.now()
          await entrant.instance.purgeNamespace!("sweep-doomed")
          sweepMs = performance.now() - t0
        })
        const removed = before - (await bench.admin.dbsize())

        const runsBefore = bench.origin.runs
        await runAll(entrant.instance.caller, survivorIds, () => "sweep-kept", fillConcurrency)
        const lost = bench.origin.runs - runsBefore
        rows.push({
          contender: entrant.contender.id,
          label: entrant.contender.label,
          values: {
            removed,
            sweepMs,
            keysPerSec: removed / (sweepMs / 1000),
            otherP50Ms: during.p50Ms,
            otherP99Ms: during.p99Ms,
            otherMaxMs: during.maxMs,
            baselineP99Ms: baseline.p99Ms,
            lost
          },
          rounds: [{ other: during, baseline }]
        })
      }
    } finally {
      await other.stop()
    }
    await bench.admin.flushall()
    return [{
      id: "sweep",
      title: `Purge of ${doomed.toLocaleString("en-US")} entries beside ${survivors.toLocaleString("en-US")} that stay`,
      note: `Entries removed counted by DBSIZE; the other client reads one unrelated key, one GET at a time, from ` +
        `a process of its own ("before" is its p99 over 300 ms just before the purge). "lost" counts entries of ` +
        `the kept namespace that had to be resolved again afterwards. Ours: purgeNamespace; raw: SCAN + UNLINK ` +
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
