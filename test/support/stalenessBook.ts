/**
 * The stale-read checker's bookkeeping, free of Effect so that both packages' tests (Effect 3: `staleness.ts`,
 * Effect 4: `packages/effect4/test/support/staleness.ts`) check by the same rules; each wraps it for its Effect.
 *
 * The ledger keeps a version per namespace: a write bumps it, then invalidates the namespace in the cache. A
 * resolver answers the version current when it runs. The cache's promise is: once `invalidateNamespace` has
 * returned, no read returns anything written before it. So a read that STARTS after an invalidation returned must
 * answer a version at least the one bumped just before that invalidation — its `floor`. A version under the floor
 * was resolved before that bump, hence by a resolve that started before the invalidation: a stale read.
 *
 * The floor only rises when an invalidation returned successfully; one that failed (Redis down, circuit open)
 * promises nothing, so the checker never counts a read as stale because of it. No false positives: every stale
 * read counted is a broken guarantee.
 */

export interface StaleRead {
  readonly namespace: string
  /** The version the read had to see at least. */
  readonly floor: number
  /** The version it got. */
  readonly got: number
  /** What the call reported (hit, miss, coalesced, bypass, …). */
  readonly outcome: string
}

export class StalenessBook {
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

  /** A write begins: the namespace's version is bumped, and returned for `endWrite`. */
  beginWrite(namespace: string): number {
    const version = this.current(namespace) + 1
    this.versions.set(namespace, version)
    this.invalidations++
    return version
  }

  /** The write's invalidation returned (`ok`) or failed: only a returned one raises the floor. Returns `ok`. */
  endWrite(namespace: string, version: number, ok: boolean): boolean {
    if (!ok) this.invalidationsFailed++
    // Concurrent writes may return out of order: the floor only rises.
    else if (version > this.floor(namespace)) this.floors.set(namespace, version)
    return ok
  }

  /** A read's answer, checked against the floor taken when the read started; a stale one is recorded. */
  checkRead(namespace: string, floor: number, got: number, outcome: string): void {
    this.reads++
    if (floor > 1) this.readsAfterInvalidation++
    if (got < floor) this.stale.push({ namespace, floor, got, outcome })
  }
}
