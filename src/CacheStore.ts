/**
 * The store interface a backend implements: a handful of atomic operations over generations and entries. The
 * caching logic (single flight, serde, spans, metrics, fail-open) lives above it, once, so every backend behaves
 * the same.
 *
 * Generations make invalidation O(1) and race-free: every entry is stored with the generation it was written
 * under, a read returns it only if that generation is still the namespace's current one, and a write lands only if
 * the generation it read before resolving is still current. Generation tokens are unique strings, never
 * counters, so a generation that is lost (evicted, expired, a restart) is replaced by one that no stored entry
 * carries.
 *
 * @since 0.1.0
 */
import type { Envelope } from "@ledgerlink/response-cache-wire"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { RedisError } from "./CacheError.js"
import type { CacheKey, NamespaceKeys } from "./CacheKey.js"

/**
 * An entry that belongs to its namespace's current generation.
 *
 * @since 0.1.0
 * @category models
 */
export type StoredEntry = Envelope.StoredEntry

/**
 * @since 0.1.0
 * @category models
 */
export type Lookup = Envelope.Lookup

/**
 * What a store says of its own state, for health checks: `degraded` while it cannot serve the cache as configured
 * (the connection is down or refused, a feature is off for lack of a permission), with the reason in the store's
 * own words — the connection's last failure (`WRONGPASS …`, `ECONNREFUSED …`, a TLS error), never a secret.
 *
 * @since 0.1.0
 * @category models
 */
export interface Health {
  readonly status: "ok" | "degraded"
  readonly reason?: string | undefined
}

/**
 * The store the caching engine runs over. `ResponseCache.layer` takes any implementation of it from the context,
 * so a backend can be written outside this package; `CacheStore/Memory` and `CacheStore/Redis` are the two that
 * ship.
 *
 * @since 0.1.0
 * @category tags
 */
export class CacheStore extends Context.Tag("@ledgerlink/response-cache/CacheStore")<
  CacheStore,
  CacheStore.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace CacheStore {
  /**
   * A handful of atomic operations over generations and entries.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /**
     * Reads the namespace's generation and the entry, if the entry carries that generation, in one atomic step.
     * With `create`, a namespace that has no generation gets `create.token`, kept for `create.ttlMs`. The time left
     * is read for entries with grace; `withGrace` says the caller expects them (so the store may read it at once).
     */
    readonly lookup: (
      key: CacheKey,
      create: { readonly token: string; readonly ttlMs: number } | undefined,
      withGrace?: boolean
    ) => Effect.Effect<Lookup, RedisError>
    /**
     * Stores `payload` for `ttlMs` (fresh time + `graceMs`) as one atomic step: only if the namespace's generation
     * is still `expected` (returns false otherwise), or, with `expected` undefined, under whatever generation is
     * current (`token` when there is none). The generation is kept at least as long as the entry.
     */
    readonly write: (
      key: CacheKey,
      write: {
        readonly expected: string | undefined
        readonly token: string
        readonly payload: string
        readonly graceMs: number
        readonly ttlMs: number
      }
    ) => Effect.Effect<boolean, RedisError>
    /** Removes one entry. */
    readonly remove: (key: CacheKey) => Effect.Effect<void, RedisError>
    /**
     * A lookup answered synchronously, without creating anything, by an in-process store: the hit path of the
     * memory layer takes no asynchronous step at all. Undefined for stores that must go over the network.
     */
    readonly lookupNow?: ((key: CacheKey, now: number) => Lookup) | undefined
    /**
     * Invalidates the namespace in one atomic O(1) step the store accepts even when it is full: its generation is
     * dropped, so no stored entry is current any more, and the next lookup that may create one starts a new unique
     * token (an entry written under the old one can never become current again). A write that expects the old
     * generation is refused from then on. A store whose invalidations can be confirmed (Redis `WAIT`) returns only
     * once they are, or fails.
     */
    readonly dropGeneration: (namespace: NamespaceKeys) => Effect.Effect<void, RedisError>
    /** Pages through the namespace's entries, removing those its current generation does not count. */
    readonly sweep: (namespace: NamespaceKeys) => Stream.Stream<number, RedisError>
    /**
     * Takes the entry's cross-process resolve lock for `ttlMs` (SET NX PX); false when another holds it. A store
     * without other processes always grants it.
     */
    readonly acquireLock: (key: CacheKey, token: string, ttlMs: number) => Effect.Effect<boolean, RedisError>
    /** Releases the lock if `token` still holds it, and wakes the processes waiting on the entry. */
    readonly releaseLock: (key: CacheKey, token: string) => Effect.Effect<void, RedisError>
    /**
     * Listens for the entry's lock being released (its value landed, or its resolve gave up) for the scope; the
     * effect returned completes at the next release after the previous one it reported.
     */
    readonly listenForRelease: (key: CacheKey) => Effect.Effect<Effect.Effect<void>, RedisError, Scope.Scope>
    /** The store's state (`ResponseCache.health` reports it); a store without one is taken to be `ok`. */
    readonly health?: Effect.Effect<Health> | undefined
  }
}
