/**
 * Miss path: every call is a key never seen, so each one reads, resolves (synchronously, no delay) and writes.
 * Redis is flushed after each round (outside the timing) so that memory does not grow through the run.
 */
import { entrantsOf, interleave, type Workload } from "../Bench.js"
import { runLoop } from "../Driver.js"
import { namespaceOf, throughputColumns, throughputRows } from "./hot.js"

export const miss: Workload = {
  id: "miss",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "miss")
    const { concurrency, roundMs, rounds } = bench.sizes.miss
    let counter = 10_000_000
    const next = () => counter++
    bench.origin.reset()
    bench.log(`miss: ${concurrency} in flight, ${rounds} rounds of ${roundMs} ms × ${entrants.length} contenders`)
    const results = await interleave(entrants, rounds, async (entrant) => {
      const result = await runLoop(entrant.instance.caller, {
        concurrency,
        durationMs: roundMs,
        next,
        namespaceOf: namespaceOf(bench)
      })
      await bench.admin.flushall()
      return result
    })
    return [{
      id: "miss",
      title: `Miss path, ${concurrency} in flight`,
      note: `Every call a new key: lookup, resolver (synchronous), write. Median of ${rounds} interleaved rounds of ` +
        `${roundMs} ms; raw is GET, then SET … PX.`,
      columns: throughputColumns,
      rows: throughputRows(results, entrants.find((e) => e.contender.id === "raw"))
    }]
  }
}
