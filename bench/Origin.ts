/**
 * What every contender caches: a ~350-byte JSON ledger snapshot per (namespace, id), computed by one resolver
 * that counts its runs. Workloads change its delay and bump a namespace's version to see stale reads.
 */
import * as Schema from "effect/Schema"

export const Snapshot = Schema.Struct({
  tenant: Schema.String,
  account: Schema.String,
  id: Schema.Number,
  version: Schema.Number,
  currency: Schema.String,
  balance: Schema.String,
  available: Schema.String,
  updatedAt: Schema.String,
  lines: Schema.Array(Schema.Struct({ date: Schema.String, amount: Schema.String, memo: Schema.String }))
})
export type Snapshot = typeof Snapshot.Type

export const SnapshotQuery = Schema.Struct({ ns: Schema.String, id: Schema.Number })

export const snapshot = (ns: string, id: number, version: number): Snapshot => ({
  tenant: ns,
  account: `acct-${String(id).padStart(8, "0")}`,
  id,
  version,
  currency: "EUR",
  balance: `${(id * 37) % 100_000}.${String(id % 100).padStart(2, "0")}`,
  available: `${(id * 31) % 100_000}.${String((id * 7) % 100).padStart(2, "0")}`,
  updatedAt: "2026-11-25T08:00:00.000Z",
  lines: [0, 1, 2].map((n) => ({
    date: `2026-11-${String(20 + n).padStart(2, "0")}`,
    amount: `${((id + n) * 13) % 10_000}.00`,
    memo: `xfer ${id}-${n}`
  }))
})

export class Origin {
  /** Resolver runs since the last `reset`. */
  runs = 0
  /** Resolver latency; 0 answers synchronously. */
  delayMs = 0
  /** Called on every run, e.g. to count runs in Redis across processes. */
  onRun: (() => void) | undefined = undefined
  private readonly versions = new Map<string, number>()

  version(ns: string): number {
    return this.versions.get(ns) ?? 0
  }

  /** A write to the system of record: the namespace's next answers carry a new version. */
  bump(ns: string): number {
    const next = this.version(ns) + 1
    this.versions.set(ns, next)
    return next
  }

  reset(delayMs = 0): void {
    this.runs = 0
    this.delayMs = delayMs
    this.onRun = undefined
  }

  resolve(ns: string, id: number): Snapshot | Promise<Snapshot> {
    this.runs++
    this.onRun?.()
    const value = snapshot(ns, id, this.version(ns))
    if (this.delayMs <= 0) return value
    return new Promise((resolve) => setTimeout(() => resolve(value), this.delayMs))
  }
}
