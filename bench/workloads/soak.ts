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

/** Lookups that reached Redis: MGETs and scripts (commandstats also counts the commands a script runs). */
const lookupsInRedis = async (bench: Bench) => {
  let calls = 0
  for (const m of (await bench.admin.info("commandstats")).matchAll(/cmdstat_(mget|evalsha|eval):calls=(\d+)/g)) {
    calls += Number(m[2])
  }
  return calls
}

/**
 * Entries an in-process store kept: reads the newest `2 × capacity` keys, newest first, one at a time, and counts
 * those answered in process — without the resolver (memory layer), or without a lookup in Redis (near-cache: every
 * read it does not answer is one MGET or script). Newest first, so the misses (which insert) come after the hits are
 * counted.
 */
const keptOf = async (bench: Bench, entrant: Entrant, lastId: number, nsOf: (id: number) => string) => {
  const capacity = entrant.instance.capacity
  if (capacity === undefined) return undefined
  const checked = Math.min(2 * capacity, lastId + 1)
  const runs = bench.origin.runs
  const lookups = await lookupsInRedis(bench)
  for (let id = lastId; id > lastId - checked; id--) await callOnce(entrant.instance.caller, nsOf(id), id)
  const notKept = entrant.contender.tier === "memory"
    ? bench.origin.runs - runs
    : (await lookupsInRedis(bench)) - lookups
  return checked - notKept
}

export const soak: Workload = {
  id: "soak",
  run: async (bench) => {
    const entrants = entrantsOf(
      bench,
      "soak",
      (e) => e.contender.family === "ours" && e.instance.inFlight !== undefined
    )
      .filter((e) => ["ours-memory", "ours-near", "ours-redis"].includes(e.contender.id))
    const { concurrency, keys, redisKeys } = bench.sizes.soak
    const rows = []
    for (const entrant of entrants) {
      const count = entrant.contender.tier === "memory" ? keys : redisKeys
      bench.log(
        `soak: ${entrant.contender.id}: ${count.toLocaleString("en-US")} distinct keys, ${concurrency} in flight`
      )
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
      const pass = () =>
        runLoop(entrant.instance.caller, { concurrency, durationMs: Infinity, maxOps: count, next, namespaceOf: nsOf })
      const t0 = performance.now()
      const misses = await pass()
      // A near-cache keeps what it reads from Redis, not what it writes: a second pass, of hits, fills it.
      let hits: typeof misses | undefined
      if (entrant.contender.tier === "two-tier") {
        counter = 0
        hits = await pass()
      }
      const seconds = (performance.now() - t0) / 1000
      const inFlight = await entrant.instance.inFlight!()
      const kept = await keptOf(bench, entrant, count - 1, nsOf)
      gc()
      const heapAfter = process.memoryUsage().heapUsed
      rows.push({
        contender: entrant.contender.id,
        label: entrant.contender.label,
        values: {
          calls: misses.ops + (hits?.ops ?? 0),
          errors: misses.errors + (hits?.errors ?? 0),
          callsPerSec: (misses.ops + (hits?.ops ?? 0)) / seconds,
          heapBeforeMb: mb(heapBefore),
          heapPeakMb: mb(peak),
          heapAfterMb: mb(heapAfter),
          growthMb: mb(heapAfter - heapBefore),
          inFlight: `${inFlight.resolves} / ${inFlight.callers}`,
          kept: kept === undefined
            ? undefined
            : `${kept.toLocaleString("en-US")} of ${entrant.instance.capacity!.toLocaleString("en-US")}`
        }
      })
      await bench.admin.flushall()
    }
    return [{
      id: "soak",
      title: "Soak: distinct keys through getOrResolve",
      note: `Every call a new key (a miss: lookup, resolve, write), ${concurrency} in flight; the near-cache ` +
        `then reads every key once more (hits from Redis, which it keeps). Heap after a full GC ` +
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
