/**
 * Invalidation visibility: how long a namespace keeps being served after the application invalidates it. The
 * namespace is filled, the origin moves to a new version, and a probe reads random keys of it while the
 * invalidation runs. Reported: how long the invalidation call took, when the last stale answer (of a read that
 * started after the call did) came back, and how many stale answers came from reads that started after the
 * call had returned (which must be none) — in the instance that invalidated, and in a second instance of the same
 * contender, which sees what another process would (in-process tiers are where stale data survives).
 */
import { performance } from "node:perf_hooks"
import { type Bench, entrantsOf, interleave, median, sleep, type Table, type Workload } from "../Bench.js"
import type { Entrant } from "../Bench.js"
import type { Instance } from "../Contender.js"
import { callOnce, fill, runAll } from "../Driver.js"

const probeWhile = async (instance: Instance, ns: string, size: number, version: number, stop: () => boolean) => {
  const reads: Array<Read> = []
  while (!stop()) {
    const start = performance.now()
    const value = await callOnce(instance.caller, ns, Math.floor(Math.random() * size))
    reads.push({ start, end: performance.now(), stale: value.version < version })
    // In-process hits settle without a macrotask; let the timers that end the probe run.
    await new Promise((resolve) => setImmediate(resolve))
  }
  return reads
}

type Read = { readonly start: number; readonly end: number; readonly stale: boolean }

const staleness = (reads: ReadonlyArray<Read>, t0: number, t1: number) => {
  const afterStart = reads.filter((r) => r.start >= t0 && r.stale)
  return {
    lastStaleMs: afterStart.length === 0 ? 0 : Math.max(...afterStart.map((r) => r.end)) - t0,
    staleAfterReturn: reads.filter((r) => r.start >= t1 && r.stale).length
  }
}

const measure = async (bench: Bench, entrant: Entrant, ns: string, size: number) => {
  const ids = Array.from({ length: size }, (_, i) => i)
  await fill(entrant.instance, ns, ids, 128)
  // Another process's view: a second instance of the contender, with its own client and its own in-process tier,
  // is what a process that did not invalidate sees.
  const other = entrant.contender.shared ? await entrant.contender.start(entrant.env) : undefined
  try {
    // Read everything once in both, so in-process tiers hold what they can.
    await runAll(entrant.instance.caller, ids, () => ns, 128)
    if (other !== undefined) await runAll(other.caller, ids, () => ns, 128)
    const version = bench.origin.bump(ns)
    let t0 = Infinity
    let t1 = Infinity
    let done = false
    const probe = (instance: Instance) =>
      Promise.all(Array.from({ length: 4 }, () => probeWhile(instance, ns, size, version, () => done)))
    const probes = [probe(entrant.instance), other === undefined ? Promise.resolve([]) : probe(other)]
    await sleep(2)
    t0 = performance.now()
    await entrant.instance.invalidateNamespace!(ns)
    t1 = performance.now()
    await sleep(Math.max(50, (t1 - t0) / 5))
    done = true
    const [own, others] = await Promise.all(probes)
    const mine = staleness(own!.flat(), t0, t1)
    const theirs = other === undefined ? undefined : staleness(others!.flat(), t0, t1)
    return {
      callMs: t1 - t0,
      ...mine,
      otherLastStaleMs: theirs?.lastStaleMs,
      otherStaleAfterReturn: theirs?.staleAfterReturn,
      probeMs: performance.now() - t0
    }
  } finally {
    await other?.close()
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
      const results = await interleave(
        entrants,
        rounds,
        (entrant, round) => measure(bench, entrant, `inv-${size}-${round}`, size)
      )
      await bench.admin.flushall()
      tables.push({
        id: `invalidation-${size}`,
        title: `Invalidation of a namespace of ${size.toLocaleString("en-US")} entries`,
        note: `"call" is how long the invalidation took to return; "last stale" is when the last stale answer to a ` +
          `read started after the call began came back (both from the call's start); "stale after return" counts ` +
          `stale answers to reads started after it returned, probing for 50 ms after it. "other instance" is the ` +
          `same seen from a second instance of the contender (its own client and in-process tier), as another ` +
          `process would. Ours: invalidateNamespace (a new generation); raw: SCAN + UNLINK; bentocache: ` +
          `namespace clear().`,
        columns: [
          { key: "label", header: "contender", format: "text" },
          { key: "callMs", header: "call ms", format: "ms" },
          { key: "lastStaleMs", header: "last stale ms", format: "ms" },
          { key: "staleAfterReturn", header: "stale after return", format: "count" },
          { key: "otherLastStaleMs", header: "other instance: last stale ms", format: "ms" },
          { key: "otherStaleAfterReturn", header: "other instance: stale after return", format: "count" }
        ],
        rows: [...results].map(([entrant, r]) => ({
          contender: entrant.contender.id,
          label: entrant.contender.label,
          values: {
            callMs: median(r.map((x) => x.callMs)),
            lastStaleMs: median(r.map((x) => x.lastStaleMs)),
            staleAfterReturn: r.reduce((n, x) => n + x.staleAfterReturn, 0),
            otherLastStaleMs: r[0]?.otherLastStaleMs === undefined
              ? undefined
              : median(r.map((x) => x.otherLastStaleMs!)),
            otherStaleAfterReturn: r[0]?.otherStaleAfterReturn === undefined
              ? undefined
              : r.reduce((n, x) => n + x.otherStaleAfterReturn!, 0)
          },
          rounds: r
        }))
      })
    }
    return tables
  }
}
