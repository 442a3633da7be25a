/**
 * Invalidation visibility: how long a namespace keeps being served after the application invalidates it. The
 * namespace is filled, the origin moves to a new version, and a probe reads random keys of it while the
 * invalidation runs. Reported: how long the invalidation call took, when the last stale answer (of a read that
 * started after the call did) came back, and how many stale answers came from reads that started after the
 * call had returned (which must be none).
 */
import { performance } from "node:perf_hooks"
import { type Bench, entrantsOf, interleave, median, sleep, type Table, type Workload } from "../Bench.js"
import type { Entrant } from "../Bench.js"
import { callOnce, fill } from "../Driver.js"

const probeWhile = async (entrant: Entrant, ns: string, size: number, version: number, stop: () => boolean) => {
  const reads: Array<{ readonly start: number; readonly end: number; readonly stale: boolean }> = []
  while (!stop()) {
    const start = performance.now()
    const value = await callOnce(entrant.instance.caller, ns, Math.floor(Math.random() * size))
    reads.push({ start, end: performance.now(), stale: value.version < version })
    // In-process hits settle without a macrotask; let the timers that end the probe run.
    await new Promise((resolve) => setImmediate(resolve))
  }
  return reads
}

const measure = async (bench: Bench, entrant: Entrant, ns: string, size: number) => {
  const ids = Array.from({ length: size }, (_, i) => i)
  await fill(entrant.instance, ns, ids, 128)
  const version = bench.origin.bump(ns)
  let t0 = Infinity
  let t1 = Infinity
  let done = false
  // Probes: the first starts before the invalidation (it sees old answers), the rest run through it.
  const probes = Promise.all(Array.from({ length: 4 }, () => probeWhile(entrant, ns, size, version, () => done)))
  await sleep(2)
  t0 = performance.now()
  await entrant.instance.invalidateNamespace!(ns)
  t1 = performance.now()
  await sleep(Math.max(5, (t1 - t0) / 5))
  done = true
  const reads = (await probes).flat()
  const afterStart = reads.filter((r) => r.start >= t0 && r.stale)
  return {
    callMs: t1 - t0,
    lastStaleMs: afterStart.length === 0 ? 0 : Math.max(...afterStart.map((r) => r.end)) - t0,
    staleAfterReturn: reads.filter((r) => r.start >= t1 && r.stale).length,
    probes: reads.length
  }
}

export const invalidation: Workload = {
  id: "invalidation",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "invalidation", (e) => e.instance.invalidateNamespace !== undefined)
    const tables: Array<Table> = []
    const { namespaceSizes, rounds } = bench.sizes.invalidation
    bench.origin.reset()
    for (const size of namespaceSizes) {
      bench.log(`invalidation: namespaces of ${size} entries, ${rounds} rounds × ${entrants.length}`)
      const results = await interleave(entrants, rounds, (entrant, round) =>
        measure(bench, entrant, `inv-${size}-${round}`, size))
      await bench.admin.flushall()
      tables.push({
        id: `invalidation-${size}`,
        title: `Invalidation of a namespace of ${size.toLocaleString("en-US")} entries`,
        note: `"call" is how long the invalidation took to return; "last stale" is when the last stale answer to a ` +
          `read started after the call began came back (both from the call's start); "stale after return" counts ` +
          `stale answers to reads started after it returned. Ours: invalidateNamespace (a new generation); raw: ` +
          `SCAN + UNLINK; bentocache: namespace clear().`,
        columns: [
          { key: "label", header: "contender", format: "text" },
          { key: "callMs", header: "call ms", format: "ms" },
          { key: "lastStaleMs", header: "last stale ms", format: "ms" },
          { key: "staleAfterReturn", header: "stale after return", format: "count" }
        ],
        rows: [...results].map(([entrant, r]) => ({
          contender: entrant.contender.id,
          label: entrant.contender.label,
          values: {
            callMs: median(r.map((x) => x.callMs)),
            lastStaleMs: median(r.map((x) => x.lastStaleMs)),
            staleAfterReturn: r.reduce((n, x) => n + x.staleAfterReturn, 0)
          },
          rounds: r
        }))
      })
    }
    return tables
  }
}
