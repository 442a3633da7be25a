/**
 * Freshness, judged in one place. An entry's age is never computed from a writer's timestamp against a reader's
 * clock: the store reports how long it will keep the entry (`remainingMs`, Redis's PTTL or the memory store's own
 * clock) and the grace stored with it, so the time past the fresh time is `graceMs - remainingMs`, whoever wrote it.
 * That is why there is no `now` here: the store already applied it.
 */
import type * as CachePolicy from "../CachePolicy.js"
import type { StoredEntry } from "../CacheStore.js"

/**
 * What an entry of the current generation is good for:
 * - `fresh`: answer it;
 * - `revalidate`: within staleWhileRevalidate, answer it and refresh in the background;
 * - `staleIfError`: past that, but a failed resolve may still answer it;
 * - `expired`: a miss.
 */
export type Freshness = "fresh" | "revalidate" | "staleIfError" | "expired"

/** How long the entry is past its fresh time, by the store's own clock (negative: still fresh). */
const staleForMs = (entry: StoredEntry): number => entry.graceMs - entry.remainingMs

/** The entry's freshness under `policy`. */
export const classify = (entry: StoredEntry, policy: CachePolicy.Resolved): Freshness => {
  const staleFor = staleForMs(entry)
  if (staleFor < 0) return "fresh"
  if (staleFor < policy.staleWhileRevalidateMs) return "revalidate"
  if (staleFor < policy.staleIfErrorMs) return "staleIfError"
  return "expired"
}

/** Fresh whatever the policy: `classify(entry, policy) === "fresh"`, for reads that serve nothing stale. */
export const isFresh = (entry: StoredEntry): boolean => staleForMs(entry) < 0

/**
 * Whether a resolve that failed may answer the entry instead: fresh, or past its fresh time by less than
 * staleIfError (whatever staleWhileRevalidate says).
 */
export const servesOnError = (entry: StoredEntry, policy: CachePolicy.Resolved): boolean =>
  staleForMs(entry) < policy.staleIfErrorMs
