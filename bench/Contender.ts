/**
 * A contender is one small object: how to start it against the benchmark's Redis, and what it can do. Workloads
 * only see `Instance`, so adding a library (or a configuration of ours) is adding one object to
 * `contenders/index.ts`.
 */
import type * as Effect from "effect/Effect"
import type { Origin, Snapshot } from "./Origin.js"

export interface Env {
  readonly url: string
  readonly host: string
  readonly port: number
  /** Unique per contender and the same in every process, so the cross-process workers share one key space. */
  readonly prefix: string
  readonly origin: Origin
  /** How long entries stay fresh; long enough that nothing expires during a run. */
  readonly ttlMs: number
}

/**
 * How a workload calls a contender: Promise libraries from async loops, ours from fibers in its own runtime
 * (that is how our users call it).
 */
export type Caller =
  | {
    readonly _tag: "promise"
    readonly get: (ns: string, id: number) => Promise<Snapshot>
  }
  | {
    readonly _tag: "effect"
    /** Runs an effect in the contender's runtime (its layer provided). */
    readonly run: <A>(effect: Effect.Effect<A, unknown, any>) => Promise<A>
    readonly get: (ns: string, id: number) => Effect.Effect<Snapshot, unknown, any>
  }

export interface Instance {
  readonly caller: Caller
  /**
   * Writes the origin's current answers for `ids` straight into the cache (its `set`), which is quicker than
   * filling a namespace through misses; workloads fall back to misses without it.
   */
  readonly fill?: ((ns: string, ids: ReadonlyArray<number>) => Promise<void>) | undefined
  /** Makes everything written to a namespace unreadable; returns when that holds. */
  readonly invalidateNamespace?: ((ns: string) => Promise<void>) | undefined
  /** Invalidates a namespace and removes its entries from Redis; returns when they are gone. */
  readonly purgeNamespace?: ((ns: string) => Promise<void>) | undefined
  /** Resolves in flight and their waiting callers (ours): must be back at zero after any workload. */
  readonly inFlight?: (() => Promise<{ readonly resolves: number; readonly callers: number }>) | undefined
  /** Entries it keeps in process at most, when it keeps any (memory layer, near-cache). */
  readonly capacity?: number | undefined
  /** Figures of its own for the results file (e.g. spans started). */
  readonly counters?: (() => Record<string, number>) | undefined
  readonly close: () => Promise<void>
}

export interface Contender {
  /** Short id: result keys, `--contenders` filter, worker protocol. */
  readonly id: string
  /** Row label in the tables. */
  readonly label: string
  readonly family: "ours" | "raw" | "peer"
  /** Where a hit is answered from: Redis, the process, or the process in front of Redis. */
  readonly tier: "redis" | "memory" | "two-tier"
  /** Only run with `--all` (variants that explain a figure rather than rank a library). */
  readonly extra?: boolean | undefined
  /** The workloads it runs in, when not all (a policy variant that only changes misses). */
  readonly only?: ReadonlyArray<string> | undefined
  /** In the cross-process stampede (needs a store shared by processes). */
  readonly shared: boolean
  /** Starts it; undefined when this build of the library cannot run it (then it is listed as skipped). */
  readonly start: (env: Env) => Promise<Instance | undefined>
}

/** The key prefix of a contender: the same in every process, so the cross-process workers share one key space. */
export const prefixOf = (contender: string) => `bench-${contender}`
