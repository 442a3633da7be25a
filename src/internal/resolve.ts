/**
 * The miss side of the engine: resolve, validate, write under the generation read before resolving; the
 * cross-process lock (`policy.lock`); stale-if-error; and fail-open (`bypass`) when the store cannot be read.
 *
 * Invalidation safety here: every write passes the generation the lookup read as `expected`, and the store writes
 * only if it is still current (one atomic step), so a resolve that started before an invalidation never stores
 * its value under the new generation. Reads made after a resolve (the lock holder's, the lock waiter's,
 * stale-if-error's) read the store again and check the generation, rather than trust what was read before.
 */
import { Envelope } from "@ledgerlink/response-cache-wire"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import type * as Cacheable from "../Cacheable.js"
import type { CacheError, RedisError } from "../CacheError.js"
import type * as CacheKey from "../CacheKey.js"
import * as CachePolicy from "../CachePolicy.js"
import type { CacheStore } from "../CacheStore.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Freshness from "./freshness.js"
import * as Metrics from "./metrics.js"
import { resolveTimed, underSpan } from "./outcomes.js"
import { decodeEntry, encodeResponse } from "./serde.js"
import * as Warnings from "./warnings.js"

type Result<A> = ResponseCache.WithOutcome<A>

export interface Resolver {
  /** Resolve and store (under the cross-process lock when the policy has one), under `generation`. */
  readonly resolveAndStore: <Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    query: Q,
    key: CacheKey.CacheKey,
    policy: CachePolicy.Resolved,
    generation: string
  ) => Effect.Effect<Result<A>, E | CacheError, R>
  /**
   * Stale-if-error: the resolve failed with `cause`, so serve the entry if it is still within the window. It is
   * read again first, so an invalidation that happened while the resolver ran is respected.
   */
  readonly staleIfError: <Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    key: CacheKey.CacheKey,
    policy: CachePolicy.Resolved,
    cause: Cause.Cause<E | CacheError>
  ) => Effect.Effect<Result<A>, E | CacheError>
  /** The store could not be read: the resolver's answer, uncached (or the error, when strict). */
  readonly bypass: <Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    query: Q,
    error: RedisError,
    parent: Tracer.Span | undefined
  ) => Effect.Effect<Result<A>, E | CacheError, R>
  /**
   * Stores a payload for its jittered fresh time plus the policy's grace, under `expected` (or, undefined, the
   * current generation).
   */
  readonly writeEntry: (
    key: CacheKey.CacheKey,
    expected: string | undefined,
    payload: string,
    policy: CachePolicy.Resolved
  ) => Effect.Effect<boolean, RedisError>
  /**
   * Whether a payload may be stored: false when its UTF-8 size is over `maxEntryBytes` (counted, and a warning at
   * most once a minute per cacheable).
   */
  readonly fits: (cacheable: Cacheable.Cacheable<any, any, any, any>, payload: string) => Effect.Effect<boolean>
}

/** The UTF-8 size of `payload` is over `max`: the wire package's measure, shared with the Effect 4 package. */
const oversize = Envelope.exceeds

export const make = (
  store: CacheStore.Service,
  options: {
    readonly strict: boolean
    readonly nextToken: () => string
    readonly maxEntryBytes: number
    readonly warnings: Warnings.Warnings
  }
): Resolver => {
  const { maxEntryBytes, nextToken, strict, warnings } = options

  /**
   * One warning per distinct cause per minute, with the count of calls it affected (`warnings.ts`); each call at
   * debug level.
   */
  const storeFailed = (error: RedisError, doing: string) =>
    Effect.zipRight(
      Effect.logDebug(`ResponseCache: bypass (the store failed while ${doing})`).pipe(
        Effect.annotateLogs({ operation: error.operation, cause: error.message })
      ),
      warnings.warn(Warnings.storeWarning(error, doing))
    )

  /** Counts an oversize response, and warns of it at most once a minute per cacheable. */
  const tooLarge = (cacheable: Cacheable.Cacheable<any, any, any, any>, payload: string): Effect.Effect<void> =>
    Metric.increment(Metrics.forCache(cacheable.name).oversize).pipe(
      Effect.zipRight(warnings.warn({
        key: `oversize|${cacheable.name}`,
        message: `ResponseCache: a response of ${cacheable.name} is larger than maxEntryBytes (${maxEntryBytes}); ` +
          "returned but not stored (warned at most once a minute per cacheable)",
        calls: 1,
        annotations: { cache: cacheable.name, bytes: Buffer.byteLength(payload, "utf8") }
      }))
    )

  const fits: Resolver["fits"] = (cacheable, payload) =>
    oversize(payload, maxEntryBytes) ? Effect.as(tooLarge(cacheable, payload), false) : Effect.succeed(true)

  const writeEntry: Resolver["writeEntry"] = (key, expected, payload, policy) =>
    Effect.flatMap(Random.next, (u) =>
      store.write(key, {
        expected,
        token: nextToken(),
        payload,
        graceMs: policy.graceMs,
        ttlMs: CachePolicy.freshMs(policy, u) + policy.graceMs
      }))

  /** Resolve, validate, and store under the generation read before resolving. */
  const resolveAndWrite = <Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    query: Q,
    key: CacheKey.CacheKey,
    policy: CachePolicy.Resolved,
    generation: string
  ): Effect.Effect<Result<A>, E | CacheError, R> =>
    // Each step here is paid on every miss: plain flatMaps, no generator, no Either around the write.
    Effect.flatMap(resolveTimed(cacheable, query), (value): Effect.Effect<Result<A>, CacheError> => {
      const payload = encodeResponse(cacheable.response, value)
      if (Either.isLeft(payload)) return Effect.fail(payload.left)
      // Too large to store: answered, and the next call resolves again.
      if (oversize(payload.right, maxEntryBytes)) {
        return Effect.as(tooLarge(cacheable, payload.right), { value, outcome: "miss" as const })
      }
      return Effect.matchEffect(writeEntry(key, generation, payload.right, policy), {
        onFailure: (error) =>
          strict ? Effect.fail(error) : Effect.as(storeFailed(error, "writing"), { value, outcome: "bypass" as const }),
        onSuccess: () => Effect.succeed({ value, outcome: "miss" as const })
      })
    })

  /** The entry as the store has it now, if it is of `generation` (when given) and fresh. */
  const freshEntry = <A>(
    schema: Schema.Schema<A, any, never>,
    key: CacheKey.CacheKey,
    generation: string | undefined
  ): Effect.Effect<Option.Option<A>, RedisError> =>
    Effect.map(store.lookup(key, undefined), ({ entry, generation: current }) => {
      if (entry === undefined || !Freshness.isFresh(entry)) return Option.none()
      if (generation !== undefined && current !== generation) return Option.none()
      return Either.getRight(decodeEntry(schema, entry.payload))
    })

  /**
   * Cross-process stampede protection: take the entry's lock and resolve, or wait (woken by the lock's release,
   * at most `lockMs`) for the process that holds it to store the value. Store failures fall back to resolving.
   */
  const resolveUnderLock = <Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    query: Q,
    key: CacheKey.CacheKey,
    policy: CachePolicy.Resolved,
    generation: string
  ): Effect.Effect<Result<A>, E | CacheError, R> => {
    const token = nextToken()
    // Holding the lock, read once more before resolving: the previous holder may have stored the value and
    // released the lock between our miss and our acquire.
    const resolveHolding = Effect.flatMap(
      Effect.either(freshEntry(cacheable.response, key, generation)),
      (found): Effect.Effect<Result<A>, E | CacheError, R> =>
        Either.isRight(found) && Option.isSome(found.right)
          ? Effect.succeed({ value: found.right.value, outcome: "coalesced" })
          : resolveAndWrite(cacheable, query, key, policy, generation)
    ).pipe(Effect.ensuring(Effect.ignore(store.releaseLock(key, token))))
    const waitForHolder = Effect.gen(function*() {
      const deadline = (yield* Clock.currentTimeMillis) + policy.lockMs
      const released = yield* store.listenForRelease(key)
      while (true) {
        const value = yield* freshEntry(cacheable.response, key, generation)
        if (Option.isSome(value)) return { _tag: "Delivered", value: value.value } as const
        if (yield* store.acquireLock(key, token, policy.lockMs)) return { _tag: "Acquired" } as const
        const remaining = deadline - (yield* Clock.currentTimeMillis)
        if (remaining <= 0) return { _tag: "TimedOut" } as const
        yield* Effect.timeoutOption(released, remaining)
      }
    }).pipe(Effect.scoped)
    return Effect.flatMap(Effect.either(store.acquireLock(key, token, policy.lockMs)), (acquired) => {
      if (Either.isLeft(acquired)) return resolveAndWrite(cacheable, query, key, policy, generation)
      if (acquired.right) return resolveHolding
      return Effect.flatMap(Effect.either(waitForHolder), (waited) => {
        if (Either.isLeft(waited) || waited.right._tag === "TimedOut") {
          return resolveAndWrite(cacheable, query, key, policy, generation)
        }
        if (waited.right._tag === "Acquired") return resolveHolding
        return Effect.succeed({ value: waited.right.value, outcome: "coalesced" as const })
      })
    })
  }

  return {
    writeEntry,
    fits,
    resolveAndStore: (cacheable, query, key, policy, generation) =>
      policy.lockMs > 0
        ? resolveUnderLock(cacheable, query, key, policy, generation)
        : resolveAndWrite(cacheable, query, key, policy, generation),

    staleIfError: (cacheable, key, policy, cause) =>
      Effect.flatMap(Effect.either(store.lookup(key, undefined)), (lookup) => {
        const entry = Either.isRight(lookup) ? lookup.right.entry : undefined
        if (entry === undefined || !Freshness.servesOnError(entry, policy)) return Effect.failCause(cause)
        const decoded = decodeEntry(cacheable.response, entry.payload)
        if (Either.isLeft(decoded)) return Effect.failCause(cause)
        const failure = Cause.squash(cause)
        return Effect.as(
          warnings.warn({
            key: `staleIfError|${cacheable.name}|${Warnings.describe(failure).replace(/\d+/g, "#").slice(0, 200)}`,
            message: `ResponseCache: the resolver of ${cacheable.name} failed (${Warnings.describe(failure)}); ` +
              "serving the entry within staleIfError",
            calls: 1,
            annotations: { cache: cacheable.name, cause: Cause.pretty(cause) }
          }),
          { value: decoded.right, outcome: Freshness.isFresh(entry) ? "hit" as const : "stale" as const }
        )
      }),

    bypass: (cacheable, query, error, parent) =>
      strict ? Effect.fail(error) : storeFailed(error, "reading").pipe(
        Effect.zipRight(underSpan(resolveTimed(cacheable, query), parent)),
        Effect.flatMap((value) =>
          Either.match(encodeResponse(cacheable.response, value), {
            onLeft: Effect.fail,
            onRight: () => Effect.succeed({ value, outcome: "bypass" as const })
          })
        )
      )
  }
}
