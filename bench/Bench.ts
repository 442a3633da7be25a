/**
 * What every workload gets: the benchmark's Redis, the shared origin, the started contenders, and the shape of
 * the table it returns. Helpers for the interleaved rounds and their medians live here too.
 */
import type { Redis } from "ioredis"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { Contender, Env, Instance } from "./Contender.js"
import type { Origin } from "./Origin.js"
import type { Sizes } from "./Sizes.js"

export interface Entrant {
  readonly contender: Contender
  readonly instance: Instance
  readonly env: Env
}

export interface Bench {
  readonly sizes: Sizes
  readonly redis: { readonly url: string; readonly host: string; readonly port: number }
  /** A client of the harness's own, for FLUSHALL, DBSIZE and INFO. */
  readonly admin: Redis
  readonly origin: Origin
  readonly entrants: ReadonlyArray<Entrant>
  readonly log: (line: string) => void
}

export interface Column {
  readonly key: string
  readonly header: string
  readonly format: "ops" | "ms" | "us" | "ratio" | "count" | "mb" | "text"
}

export interface Row {
  readonly contender: string
  readonly label: string
  readonly values: Record<string, number | string | undefined>
  /** Per-round figures, kept in the JSON only. */
  readonly rounds?: ReadonlyArray<unknown> | undefined
}

export interface Table {
  readonly id: string
  readonly title: string
  readonly note: string
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<Row>
}

export interface Workload {
  readonly id: string
  readonly run: (bench: Bench) => Promise<ReadonlyArray<Table>>
}

/** The contenders that take part in a workload (those that declare `only` take part in the ones listed). */
export const entrantsOf = (bench: Bench, workload: string, keep: (entrant: Entrant) => boolean = () => true) =>
  bench.entrants.filter((e) => (e.contender.only === undefined || e.contender.only.includes(workload)) && keep(e))

setFlagsFromString("--expose-gc")
const collect = runInNewContext("gc") as () => void

/** A full collection, so one contender's garbage is not collected on the next one's time. */
export const gc = (): void => collect()

/**
 * Runs `rounds` rounds of every entrant in turn (A B C … A B C …), so drift on the machine hits all alike.
 */
export const interleave = async <A>(
  entrants: ReadonlyArray<Entrant>,
  rounds: number,
  run: (entrant: Entrant, round: number) => Promise<A>
): Promise<Map<Entrant, Array<A>>> => {
  const results = new Map<Entrant, Array<A>>(entrants.map((e) => [e, []]))
  for (let round = 0; round < rounds; round++) {
    for (const entrant of entrants) {
      gc()
      results.get(entrant)!.push(await run(entrant, round))
    }
  }
  return results
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
