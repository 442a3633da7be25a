/**
 * The Effect 3 package's stale-read checker (`test/support/staleness.ts`), for Effect 4 effects: the same rules.
 */
import * as Effect from "effect/Effect"

export interface StaleRead {
  readonly namespace: string
  /** The version the read had to see at least. */
  readonly floor: number
  /** The version it got. */
  readonly got: number
  /** What the call reported (hit, miss, coalesced, bypass, …). */
  readonly outcome: string
}

export class Ledger {
  private readonly versions = new Map<string, number>()
  private readonly floors = new Map<string, number>()
  /** Reads checked. */
  reads = 0
  /** Reads that started with a floor above the first version, i.e. after an invalidation had returned. */
  readsAfterInvalidation = 0
  invalidations = 0
  invalidationsFailed = 0
  readonly stale: Array<StaleRead> = []

  /** The namespace's current version: what a resolver answers. */
  current(namespace: string): number {
    return this.versions.get(namespace) ?? 1
  }

  /** The least version a read that starts now may answer. */
  floor(namespace: string): number {
    return this.floors.get(namespace) ?? 1
  }

  /**
   * A ledger write: bumps the version, then runs `invalidate` (the cache's invalidateNamespace); only when that
   * returned does the floor rise to the bumped version. Never fails: a failed invalidation is counted and returned.
   */
  write<E, R>(namespace: string, invalidate: Effect.Effect<void, E, R>): Effect.Effect<boolean, never, R> {
    return Effect.suspend(() => {
      const version = this.current(namespace) + 1
      this.versions.set(namespace, version)
      this.invalidations++
      return Effect.match(invalidate, {
        onFailure: () => {
          this.invalidationsFailed++
          return false
        },
        onSuccess: () => {
          // Concurrent writes may return out of order: the floor only rises.
          if (version > this.floor(namespace)) this.floors.set(namespace, version)
          return true
        }
      })
    })
  }

  /**
   * Runs a read, taking its floor when it starts and checking the version it answers; a stale answer is recorded
   * (and still returned, so the caller can count rather than stop).
   */
  read<A, E, R>(
    namespace: string,
    call: Effect.Effect<A, E, R>,
    inspect: (a: A) => { readonly version: number; readonly outcome: string }
  ): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      const floor = this.floor(namespace)
      return Effect.tap(call, (a) =>
        Effect.sync(() => {
          const { outcome, version } = inspect(a)
          this.reads++
          if (floor > 1) this.readsAfterInvalidation++
          if (version < floor) this.stale.push({ namespace, floor, got: version, outcome })
        }))
    })
  }
}
