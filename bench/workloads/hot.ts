/**
 * Hot hit: every key warm, N calls in flight for a fixed time per round. Ratios are taken against the raw ioredis
 * loop of the same round (then the median over rounds), so drift between rounds cancels out.
 */
import { type Bench, type Entrant, entrantsOf, interleave, median, type Table, type Workload } from "../Bench.js"
import { type LoopResult, runAll, runLoop } from "../Driver.js"

export const namespaceOf = (bench: Bench) => {
  const names = Array.from({ length: bench.sizes.namespaces }, (_, i) => `t${i}`)
  return (id: number) => names[id % names.length]!
}

export const warm = async (bench: Bench, entrants: ReadonlyArray<Entrant>) => {
  const ids = Array.from({ length: bench.sizes.warmKeys }, (_, i) => i)
  for (const { instance } of entrants) {
    await runAll(instance.caller, ids, namespaceOf(bench), 64)
    // Twice: two-tier contenders fill their memory tier from Redis on the second pass.
    await runAll(instance.caller, ids, namespaceOf(bench), 64)
  }
}

/** The usual columns of a throughput table, from each entrant's rounds and the baseline's. */
export const throughputRows = (
  results: Map<Entrant, Array<LoopResult>>,
  baseline: Entrant | undefined
) => {
  const base = baseline === undefined ? undefined : results.get(baseline)
  return [...results].map(([entrant, rounds]) => ({
    contender: entrant.contender.id,
    label: entrant.contender.label,
    values: {
      opsPerSec: median(rounds.map((r) => r.opsPerSec)),
      ratio: base === undefined ? undefined : median(rounds.map((r, i) => r.opsPerSec / base[i]!.opsPerSec)),
      p50Ms: median(rounds.map((r) => r.p50Ms)),
      p99Ms: median(rounds.map((r) => r.p99Ms)),
      cpuUsPerOp: median(rounds.map((r) => r.cpuUsPerOp)),
      errors: rounds.reduce((n, r) => n + r.errors, 0)
    },
    rounds
  }))
}

export const throughputColumns = [
  { key: "label", header: "contender", format: "text" },
  { key: "opsPerSec", header: "ops/s", format: "ops" },
  { key: "ratio", header: "× raw", format: "ratio" },
  { key: "p50Ms", header: "p50 ms", format: "ms" },
  { key: "p99Ms", header: "p99 ms", format: "ms" },
  { key: "cpuUsPerOp", header: "client CPU µs/op", format: "us" }
] as const

export const hot: Workload = {
  id: "hot",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "hot")
    bench.log(`hot: warming ${bench.sizes.warmKeys} keys in ${entrants.length} contenders`)
    await warm(bench, entrants)
    const tables: Array<Table> = []
    const { concurrency, roundMs, rounds, warmupMs } = bench.sizes.hot
    for (const inFlight of concurrency) {
      let counter = 0
      const next = () => counter++ % bench.sizes.warmKeys
      const loop = (entrant: Entrant, ms: number) =>
        runLoop(entrant.instance.caller, {
          concurrency: inFlight,
          durationMs: ms,
          next,
          namespaceOf: namespaceOf(bench)
        })
      bench.log(`hot: ${inFlight} in flight, warm-up round`)
      await interleave(entrants, 1, (entrant) => loop(entrant, warmupMs))
      bench.log(`hot: ${inFlight} in flight, ${rounds} rounds of ${roundMs} ms × ${entrants.length} contenders`)
      const results = await interleave(entrants, rounds, (entrant) => loop(entrant, roundMs))
      tables.push({
        id: `hot-${inFlight}`,
        title: `Hot hit, ${inFlight} in flight`,
        note: `${bench.sizes.warmKeys} warm keys of ~350 B JSON; median of ${rounds} interleaved rounds of ` +
          `${roundMs} ms; × raw is the median of per-round ratios to "raw ioredis GET + JSON.parse". ` +
          `Client CPU is this process's user + system time per call (Redis excluded). Ours is called with a new query ` +
          `object per call, as from a decoded request.`,
        columns: throughputColumns,
        rows: throughputRows(results, entrants.find((e) => e.contender.id === "raw"))
      })
    }
    return tables
  }
}
