/**
 * Stampede: many callers at once on one cold key whose resolver takes a while. How many times does the resolver
 * run, and when has the last caller got its answer? A fresh key every round.
 */
import { entrantsOf, interleave, median, type Workload } from "../Bench.js"
import { runBurst } from "../Driver.js"

export const stampede: Workload = {
  id: "stampede",
  run: async (bench) => {
    const entrants = entrantsOf(bench, "stampede")
    const { callers, resolverMs, rounds } = bench.sizes.stampede
    let key = 20_000_000
    bench.log(`stampede: ${callers} callers, ${resolverMs} ms resolver, ${rounds} rounds × ${entrants.length}`)
    const results = await interleave(entrants, rounds, async (entrant) => {
      bench.origin.reset(resolverMs)
      const { errors, wallMs } = await runBurst(entrant.instance.caller, callers, "stampede", key++)
      const runs = bench.origin.runs
      bench.origin.reset()
      const inFlight = await entrant.instance.inFlight?.()
      return { runs, wallMs, errors, inFlightAfter: inFlight === undefined ? undefined : inFlight.resolves }
    })
    return [{
      id: "stampede",
      title: `Stampede, one process: ${callers} callers on one cold key`,
      note: `Resolver takes ${resolverMs} ms. Median of ${rounds} interleaved rounds; "resolver runs" is the most ` +
        `seen in any round.`,
      columns: [
        { key: "label", header: "contender", format: "text" },
        { key: "runs", header: "resolver runs", format: "count" },
        { key: "wallMs", header: "wall ms", format: "ms" },
        { key: "errors", header: "errors", format: "count" },
        { key: "inFlightAfter", header: "resolves in flight after", format: "count" }
      ],
      rows: [...results].map(([entrant, r]) => ({
        contender: entrant.contender.id,
        label: entrant.contender.label,
        values: {
          runs: Math.max(...r.map((x) => x.runs)),
          wallMs: median(r.map((x) => x.wallMs)),
          errors: r.reduce((n, x) => n + x.errors, 0),
          inFlightAfter: r[0]?.inFlightAfter === undefined ? undefined : Math.max(...r.map((x) => x.inFlightAfter ?? 0))
        },
        rounds: r
      }))
    }]
  }
}
