/**
 * Soak (issue 5, item 4): a long stream of distinct keys through getOrResolve, each one a miss. Afterwards nothing
 * may be left in flight, the heap must come back to where it started (within what the bounded in-process parts
 * may hold), and an in-process store must hold no more than its capacity. Heap figures are after a full GC; the
 * peak is sampled every 10,000 calls during the run.
 */
import { performance } from "node:perf_hooks"
import { type Bench, type Entrant, entrantsOf, gc, type Workload } from "../Bench.js"
import { callOnce, runLoop } from "../Driver.js"

const mb = (bytes: number) => bytes / 2 ** 20

/**
 * Entries an in-process store kept: reads the newest `2 × capacity` keys, newest first, one at a time, and counts
 * those answered without the resolver. Newest first, so the misses (which insert) come after the hits are counted.
 */
const keptOf = async (bench: Bench, entrant: Entrant, lastId: number, nsOf: (id: number) => string) => {
  const capacity = entrant.instance.capacity
  if (capacity === undefined || entrant.contender.tier !== "memory") return undefined
  const checked = Math.min(2 * capacity, lastId + 1)
  const before = bench.origin.runs
  for (let id = lastId; id > lastId - checked; id--) await callOnce(entrant.instance.caller, nsOf(id), id)
  return checked - (bench.origin.runs - before)
}

export const soak: Workload = {
  id: "soak",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "soak", (e) => e.contender.family === "ours" && e.instance.inFlight !== undefined)
      .filter((e) => ["ours-memory", "ours-near", "ours-redis"].includes(e.contender.id))
    const { keys, redisKeys, concurrency } = bench.sizes.soak
    const rows = []
    for (const entrant of entrants) {
      const count = entrant.contender.tier === "memory" ? keys : redisKeys
      bench.log(`soak: ${entrant.contender.id}: ${count.toLocaleString("en-US")} distinct keys, ${concurrency} in flight`)
      await bench.admin.flushall()
      bench.origin.reset()
      gc()
      const heapBefore = process.memoryUsage().heapUsed
      let peak = heapBefore
      let counter = 0
      // Sampled from the loop, not a timer: an all-in-process miss loop can keep timers from running for its
      // whole length (seen with the memory layer: Effect's scheduler only yields to microtasks there).
      const next = () => {
        if (counter % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed)
        return counter++
      }
      const nsOf = (id: number) => `soak-${id % 100}`
      const t0 = performance.now()
      const result = await runLoop(entrant.instance.caller, {
        concurrency,
        durationMs: Infinity,
        maxOps: count,
        next,
        namespaceOf: nsOf
      })
      const seconds = (performance.now() - t0) / 1000
      const inFlight = await entrant.instance.inFlight!()
      const kept = await keptOf(bench, entrant, counter - 1, nsOf)
      gc()
      const heapAfter = process.memoryUsage().heapUsed
      rows.push({
        contender: entrant.contender.id,
        label: entrant.contender.label,
        values: {
          calls: result.ops,
          errors: result.errors,
          callsPerSec: result.ops / seconds,
          heapBeforeMb: mb(heapBefore),
          heapPeakMb: mb(peak),
          heapAfterMb: mb(heapAfter),
          growthMb: mb(heapAfter - heapBefore),
          inFlight: `${inFlight.resolves} / ${inFlight.callers}`,
          kept: kept === undefined ? undefined : `${kept.toLocaleString("en-US")} of ${entrant.instance.capacity!.toLocaleString("en-US")}`
        }
      })
      await bench.admin.flushall()
    }
    return [{
      id: "soak",
      title: "Soak: distinct keys through getOrResolve",
      note: `Every call a new key (a miss: lookup, resolve, write), ${concurrency} in flight. Heap after a full GC ` +
        `before and after, peak sampled every 10,000 calls; "in flight" is resolves / waiting callers left in the instance afterwards; "kept" is ` +
        `how many of the newest 2 × capacity keys an in-process store still answers without the resolver.`,
      columns: [
        { key: "label", header: "contender", format: "text" },
        { key: "calls", header: "calls", format: "count" },
        { key: "callsPerSec", header: "calls/s", format: "ops" },
        { key: "heapBeforeMb", header: "heap before MB", format: "mb" },
        { key: "heapPeakMb", header: "heap peak MB", format: "mb" },
        { key: "heapAfterMb", header: "heap after MB", format: "mb" },
        { key: "growthMb", header: "growth MB", format: "mb" },
        { key: "inFlight", header: "in flight after", format: "text" },
        { key: "kept", header: "kept", format: "text" }
      ],
      rows
    }]
  }
}
