/**
 * The caching engine, written once above the store interface (`CacheStore`); every layer builds its service with
 * `make`. This module is the lookup flow and the public operations; the parts live beside it:
 *
 * | concern | module |
 * |---|---|
 * | key of a query, memoised (fields or identity) | `keyMemo.ts`, `keysByFields.ts` |
 * | what an entry is good for (fresh, revalidate, staleIfError, expired) | `freshness.ts` (`classify`) |
 * | response encode / entry decode, decode memo | `serde.ts` |
 * | one resolve per key and generation | `singleFlight.ts` |
 * | resolve + write, cross-process lock, stale-if-error, fail-open | `resolve.ts` |
 * | metrics and spans | `outcomes.ts` |
 *
 * Where invalidation safety lives — a call that starts after `invalidateNamespace` returned never gets a value
 * read or resolved before it:
 * - in the store: every entry carries the generation it was written under; a lookup returns it only if that is
 *   still the namespace's current generation, and a write lands only if the generation it read before resolving
 *   is still current, each as one atomic step (`CacheStore.ts`; for Redis, the MGET and the Lua scripts of
 *   `packages/wire/src/Scripts.ts`; `CacheStore/Memory.ts`; the near-cache's drop on invalidation in
 *   `CacheStore/NearCache.ts`);
 * - in the engine: the flight key includes the generation the lookup read (`afterLookup` below,
 *   `singleFlight.ts`), so such a call never joins an older resolve; the write passes that generation as
 *   `expected` (`resolve.ts`); reads after a resolve go to the store again (`resolve.ts`); the decode memo
 *   compares whole payloads just read from the store (`serde.ts`), so it never answers for the store.
 */
import { Tokens } from "@ledgerlink/response-cache-wire"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import * as Cacheable from "../Cacheable.js"
import { type CacheError, SerdeError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CachePolicy from "../CachePolicy.js"
import type { CacheStore, Health, Lookup } from "../CacheStore.js"
import type * as ResponseCache from "../ResponseCache.js"
import { resolvedSync } from "./cachePolicy.js"
import * as Freshness from "./freshness.js"
import { KeyMemo } from "./keyMemo.js"
import * as Metrics from "./metrics.js"
import * as Outcomes from "./outcomes.js"
import * as Resolve from "./resolve.js"
import { decodeEntry, DecodeMemo, encodeResponse } from "./serde.js"
import * as SingleFlight from "./singleFlight.js"
import * as Warnings from "./warnings.js"

type Result<A> = ResponseCache.WithOutcome<A>

const notAnEntry = () =>
  new SerdeError({
    subject: "entry",
    cause: new Error("the stored value is no entry of this cache (no `<generation>|<graceMs>|` envelope)")
  })

/** `f` of the checked policy, without a step when the policy was checked before. */
const withPolicy = <A, E, R>(
  policy: CachePolicy.CachePolicy,
  f: (policy: CachePolicy.Resolved) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | CacheError, R> => {
  const resolved = resolvedSync(policy)
  return resolved !== undefined ? f(resolved) : Effect.flatMap(CachePolicy.resolve(policy), f)
}

/** The single flight of a cache, in the layer's scope, warning into the cache's warnings. */
const flightsOf = (store: CacheStore.Service) =>
  Effect.flatMap(Effect.scope, (scope) => SingleFlight.make(scope, Warnings.forStore(store)))

/**
 * Builds the service over a store. The scope is the layer's: resolves shared by several callers, and background
 * refreshes, run in it, so they outlive the caller that started them and stop when the layer does.
 */
export const make = (
  store: CacheStore.Service,
  options: { readonly prefix: string; readonly strict: boolean; readonly maxEntryBytes: number }
): Effect.Effect<ResponseCache.ResponseCache.Service, never, Scope.Scope> =>
  Effect.flatMap(flightsOf(store), (flights) => {
    const { maxEntryBytes, prefix, strict } = options
    const nextToken = Tokens.tokenSource()
    // One warnings instance per cache: the store's (whose connection events it also warns of), or one of its own.
    const warnings = Warnings.forStore(store)
    const resolver = Resolve.make(store, { strict, nextToken, maxEntryBytes, warnings })
    const keys = new KeyMemo(prefix)
    // Entries of up to maxEntryBytes are memoised; the memo holds at most 64 Mi characters of payloads (or 64
    // entries of the largest size, whichever is more), besides its 10,000 entries.
    const decoded = new DecodeMemo({
      capacity: 10_000,
      maxChars: Number.isFinite(maxEntryBytes) ? Math.max(64 * 1024 * 1024, 64 * maxEntryBytes) : 64 * 1024 * 1024
    })

    /** What to do with what the lookup found: a hit, a stale hit with a refresh, or a (shared) resolve. */
    const afterLookup = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      { corrupt, entry, generation }: Lookup,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Result<A>, E | CacheError, R> => {
      // Something that is no entry of this cache at all stands under the key: a miss the resolve overwrites, or,
      // when strict, a SerdeError (an entry of another generation is a plain miss).
      if (corrupt === true && strict) return Effect.fail(notAnEntry())
      let staleIfErrorApplies = false
      let stale: A | undefined
      if (entry !== undefined) {
        const value = decoded.decode(cacheable.response, key, entry.payload)
        if (Either.isRight(value)) {
          const freshness = Freshness.classify(entry, policy)
          if (freshness === "fresh") return Effect.succeed({ value: value.right, outcome: "hit" })
          if (freshness === "revalidate") stale = value.right
          else staleIfErrorApplies = freshness === "staleIfError"
        } else if (strict) {
          return Effect.fail(value.left)
        }
        // A corrupt entry is a miss that the resolve overwrites, unless the caller asked to hear of it.
      }
      // The generation is part of the flight's key: a call that read a newer one never joins an older resolve.
      const flightKey = `${key.entry}\u0000${generation}`
      // Built by the caller that starts the flight only: a stampede's other callers just join it.
      const resolve = () =>
        Outcomes.underSpan(resolver.resolveAndStore(cacheable, query, key, policy, generation!), parent)
      if (stale !== undefined) {
        return Effect.as(flights.refreshInBackground(flightKey, resolve), { value: stale, outcome: "stale" as const })
      }
      const fresh = flights.shared(flightKey, resolve)
      if (!staleIfErrorApplies) return fresh
      return Effect.catchAllCause(fresh, (cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : resolver.staleIfError(cacheable, key, policy, cause))
    }

    /**
     * The in-process hit, answered in the caller's own step: a fresh entry of the current generation, decoded
     * (or the same bytes as last time). Anything else goes the regular way.
     */
    const hitNow = <Q, A, E, R>(
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: string
    ): Result<A> | undefined => {
      if (resolvedSync(Cacheable.policyFor(cacheable, query)) === undefined) return undefined
      const key = keys.keyOf(cacheable, query, namespace)
      if (Either.isLeft(key)) return undefined
      const now = Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock).unsafeCurrentTimeMillis()
      const { entry } = store.lookupNow!(key.right, now)
      if (entry === undefined || !Freshness.isFresh(entry)) return undefined
      const value = decoded.decode(cacheable.response, key.right, entry.payload)
      return Either.isRight(value) ? { value: value.right, outcome: "hit" } : undefined
    }

    const lookupOrResolve = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: string,
      parent?: Tracer.Span
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      withPolicy(Cacheable.policyFor(cacheable, query), (policy) => {
        const key = keys.keyOf(cacheable, query, namespace)
        if (Either.isLeft(key)) return Effect.fail(key.left)
        return Effect.matchEffect(
          store.lookup(key.right, { token: nextToken(), ttlMs: policy.ttlMs + policy.graceMs }, policy.graceMs > 0),
          {
            onFailure: (error) => resolver.bypass(cacheable, query, error, parent),
            onSuccess: (lookup) => afterLookup(cacheable, query, key.right, policy, lookup, parent)
          }
        )
      })

    /**
     * Every `getOrResolve` goes through here: the in-process hit in one step when nothing records spans, else the
     * lookup with its metric and, when a tracer records them, its span.
     */
    const lookupCounted = <Q, A, E, R, B>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      answer: (result: Result<A>) => B
    ): Effect.Effect<B, E | CacheError, R> =>
      Effect.withFiberRuntime((fiber) => {
        const namespace = cacheable.namespace(query)
        const lookups = Metrics.forCache(cacheable.name).lookups
        if (Outcomes.recordsSpans(fiber)) {
          return Outcomes.traced(
            fiber,
            lookups,
            cacheable.name,
            namespace,
            (span) => lookupOrResolve(cacheable, query, namespace, span),
            answer
          )
        }
        if (store.lookupNow !== undefined) {
          const hit = hitNow(fiber, cacheable, query, namespace)
          if (hit !== undefined) {
            Outcomes.countHit(fiber, lookups)
            return Effect.succeed(answer(hit))
          }
        }
        return Outcomes.counted(fiber, lookups, lookupOrResolve(cacheable, query, namespace), answer)
      })

    const withOutcome = <A>(result: Result<A>) => result
    const valueOnly = <A>(result: Result<A>) => result.value

    const getOrResolveWithOutcome = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      lookupCounted(cacheable, query, withOutcome<A>)

    const getValue = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      lookupCounted(cacheable, query, valueOnly<A>)
    // Curried when called with the cacheable alone (`Function.dual` would take the query, the data, first).
    const getOrResolve = ((...args: [Cacheable.Cacheable<any, any, any, any>, unknown?]) =>
      args.length >= 2
        ? getValue(args[0], args[1])
        : (query: unknown) => getValue(args[0], query)) as ResponseCache.ResponseCache.Service["getOrResolve"]

    const get = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.gen(function*() {
        const key = yield* CacheKey.make(keys.namespaceKeys(cacheable.namespace(query)), cacheable, query)
        const { corrupt, entry } = yield* store.lookup(key, undefined)
        if (corrupt === true && strict) return yield* notAnEntry()
        if (entry === undefined || !Freshness.isFresh(entry)) return Option.none<A>()
        const value = decodeEntry(cacheable.response, entry.payload)
        if (Either.isRight(value)) return Option.some(value.right)
        return strict ? yield* value.left : Option.none<A>()
      }).pipe(Effect.withSpan("ResponseCache.get", { captureStackTrace: false }))

    const set = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q, value: A) =>
      Effect.gen(function*() {
        const policy = yield* CachePolicy.resolve(Cacheable.policyFor(cacheable, query))
        const key = yield* CacheKey.make(keys.namespaceKeys(cacheable.namespace(query)), cacheable, query)
        const payload = yield* encodeResponse(cacheable.response, value)
        if (yield* resolver.fits(cacheable, payload)) yield* resolver.writeEntry(key, undefined, payload, policy)
      }).pipe(Effect.withSpan("ResponseCache.set", { captureStackTrace: false }))

    const invalidate = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(CacheKey.make(keys.namespaceKeys(cacheable.namespace(query)), cacheable, query), store.remove)
        .pipe(Effect.withSpan("ResponseCache.invalidate", { captureStackTrace: false }))

    const invalidateNamespace = (namespace: string) =>
      Effect.suspend(() => store.dropGeneration(keys.namespaceKeys(namespace))).pipe(
        Effect.withSpan("ResponseCache.invalidateNamespace", {
          attributes: { "cache.namespace": namespace },
          captureStackTrace: false
        })
      )

    const sweepNamespace = (namespace: string) => Stream.suspend(() => store.sweep(keys.namespaceKeys(namespace)))

    const purgeNamespace = (namespace: string) =>
      Effect.zipRight(invalidateNamespace(namespace), Stream.runSum(sweepNamespace(namespace))).pipe(
        Effect.withSpan("ResponseCache.purgeNamespace", {
          attributes: { "cache.namespace": namespace },
          captureStackTrace: false
        })
      )

    const health = store.health ?? Effect.succeed<Health>({ status: "ok" })

    return Effect.succeed({
      getOrResolve,
      getOrResolveWithOutcome,
      get,
      set,
      invalidate,
      invalidateNamespace,
      sweepNamespace,
      purgeNamespace,
      inFlight: flights.inFlight,
      health
    })
  })
