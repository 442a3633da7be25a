/**
 * The caching logic, written once above the store interface: policy and key derivation, serde, single flight,
 * fail-open, spans and metrics. A port of the Effect 3 package's engine, rule for rule: every layer builds its
 * service with `make`.
 */
import { BoundedMap, Envelope, Tokens } from "@ledgerlink/response-cache-wire"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import * as Cacheable from "../Cacheable.js"
import { type CacheError, type RedisError, SerdeError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CachePolicy from "../CachePolicy.js"
import type { CacheStore, Lookup } from "../CacheStore.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Metrics from "../ResponseCacheMetrics.js"

type Answer<A> = ResponseCache.WithOutcome<A>
type Store = CacheStore["Service"]
type AnyCodec = Schema.Codec<any, any, never, never>

interface Flight {
  readonly deferred: Deferred.Deferred<Answer<unknown>, unknown>
  /** Callers awaiting the outcome. */
  waiters: number
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  /** A stale-while-revalidate refresh: it runs to its end even when no caller waits. */
  readonly background: boolean
}

const memoBySchema = <F>(build: (schema: AnyCodec) => F) => {
  const memo = new WeakMap<AnyCodec, F>()
  return (schema: AnyCodec): F => {
    let f = memo.get(schema)
    if (f === undefined) {
      f = build(schema)
      memo.set(schema, f)
    }
    return f
  }
}

const encoderFor = memoBySchema((schema) => Schema.encodeUnknownResult(schema))
const decoderFor = memoBySchema((schema) => Schema.decodeUnknownResult(schema))

/** The response's JSON text, or `SerdeError` when it does not encode (or has no JSON form, e.g. a bigint). */
const encodeResponse = <A>(schema: Schema.Codec<A, any, never, never>, value: A): Result.Result<string, SerdeError> => {
  const encoded = encoderFor(schema)(value)
  if (Result.isFailure(encoded)) return Result.fail(new SerdeError({ subject: "response", cause: encoded.failure }))
  try {
    const json = JSON.stringify(encoded.success)
    return json === undefined
      ? Result.fail(new SerdeError({ subject: "response", cause: new Error("the value has no JSON form") }))
      : Result.succeed(json)
  } catch (cause) {
    return Result.fail(new SerdeError({ subject: "response", cause }))
  }
}

const decodeEntry = <A>(schema: Schema.Codec<A, any, never, never>, payload: string): Result.Result<A, SerdeError> => {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch (cause) {
    return Result.fail(new SerdeError({ subject: "entry", cause }))
  }
  return Result.mapError(decoderFor(schema)(json), (cause) => new SerdeError({ subject: "entry", cause }))
}

const notAnEntry = () =>
  new SerdeError({
    subject: "entry",
    cause: new Error("the stored value is no entry of this cache (no `<generation>|<graceMs>|` envelope)")
  })

const underSpan = <A, E, R>(effect: Effect.Effect<A, E, R>, parent: Tracer.Span | undefined) =>
  parent === undefined ? effect : Effect.withParentSpan(effect, parent)

/**
 * Builds the service over a store. The scope is the layer's: resolves shared by several callers, and background
 * refreshes, run in it, so they outlive the caller that started them and stop when the layer does.
 */
export const make = (
  store: Store,
  options: { readonly prefix: string; readonly strict: boolean; readonly maxEntryBytes: number }
): Effect.Effect<ResponseCache.ResponseCache["Service"], never, Scope.Scope> =>
  Effect.map(Effect.scope, (scope) => {
    const { maxEntryBytes, prefix, strict } = options
    const nextToken = Tokens.tokenSource()
    const flights = new Map<string, Flight>()

    const keysOf = (namespace: string) => CacheKey.namespaceKeys(prefix, namespace)

    const resolveTimed = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(Effect.timed(cacheable.resolve(query)), ([duration, value]) =>
        Effect.as(Metric.update(Metrics.forCache(cacheable.name).resolveDuration, Duration.toMillis(duration)), value))

    const storeFailed = (error: RedisError, doing: string) =>
      Effect.logWarning(`ResponseCache: the store failed while ${doing}; answering from the resolver`).pipe(
        Effect.annotateLogs({ operation: error.operation, cause: error.message })
      )

    // When each cacheable last warned of an oversize response.
    const warnedAt = new Map<string, number>()

    /**
     * Whether a payload may be stored: false when its UTF-8 size is over `maxEntryBytes` (the wire package's
     * measure, so both packages agree), counted, and a warning at most once a minute per cacheable.
     */
    const fits = (cacheable: Cacheable.Cacheable<any, any, any, any>, payload: string): Effect.Effect<boolean> =>
      !Envelope.exceeds(payload, maxEntryBytes) ?
        Effect.succeed(true) :
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const last = warnedAt.get(cacheable.name)
          const warn = last === undefined || now - last >= 60_000
          if (warn) {
            warnedAt.set(cacheable.name, now)
          }
          return Metric.update(Metrics.forCache(cacheable.name).oversize, 1).pipe(
            Effect.andThen(
              warn
                ? Effect.logWarning(
                  `ResponseCache: a response of ${cacheable.name} is larger than maxEntryBytes (${maxEntryBytes}); ` +
                    "returned but not stored (warned at most once a minute per cacheable)"
                ).pipe(Effect.annotateLogs({ cache: cacheable.name, bytes: Buffer.byteLength(payload, "utf8") }))
                : Effect.void
            ),
            Effect.as(false)
          )
        })

    /** Stores a payload for its jittered fresh time plus the policy's grace, under `expected` (or the current). */
    const writeEntry = (
      key: CacheKey.CacheKey,
      expected: string | undefined,
      payload: string,
      policy: CachePolicy.Resolved
    ) =>
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
    ): Effect.Effect<Answer<A>, E | CacheError, R> =>
      Effect.gen(function*() {
        const value = yield* resolveTimed(cacheable, query)
        const payload = yield* Effect.fromResult(encodeResponse(cacheable.response, value))
        // Too large to store: answered, and the next call resolves again.
        if (!(yield* fits(cacheable, payload))) {
          return { value, outcome: "miss" as const }
        }
        const written = yield* Effect.result(writeEntry(key, generation, payload, policy))
        if (Result.isSuccess(written)) {
          return { value, outcome: "miss" as const }
        }
        if (strict) {
          return yield* written.failure
        }
        yield* storeFailed(written.failure, "writing")
        return { value, outcome: "bypass" as const }
      })

    /** The entry as the store has it now, if it is of `generation` (when given) and fresh. */
    const freshEntry = <A>(
      schema: Schema.Codec<A, any, never, never>,
      key: CacheKey.CacheKey,
      generation: string | undefined
    ): Effect.Effect<Option.Option<A>, RedisError> =>
      Effect.map(store.lookup(key, undefined), ({ entry, generation: current }) => {
        if (entry === undefined || entry.remainingMs <= entry.graceMs) {
          return Option.none()
        }
        if (generation !== undefined && current !== generation) {
          return Option.none()
        }
        return Result.getSuccess(decodeEntry(schema, entry.payload))
      })

    /**
     * Cross-process stampede protection: take the entry's lock and resolve, or wait (woken by the lock's release,
     * at most `lockMs`) for the process that holds it to store the value. Store failures fall back to resolving.
     * The lock key and the release channel are the wire package's, so processes on either package share them.
     */
    const resolveUnderLock = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      generation: string
    ): Effect.Effect<Answer<A>, E | CacheError, R> => {
      const token = nextToken()
      // Holding the lock, read once more before resolving: the previous holder may have stored the value and
      // released the lock between our miss and our acquire.
      const resolveHolding = Effect.flatMap(
        Effect.result(freshEntry(cacheable.response, key, generation)),
        (found): Effect.Effect<Answer<A>, E | CacheError, R> =>
          Result.isSuccess(found) && Option.isSome(found.success)
            ? Effect.succeed({ value: found.success.value, outcome: "coalesced" })
            : resolveAndWrite(cacheable, query, key, policy, generation)
      ).pipe(Effect.ensuring(Effect.ignore(store.releaseLock(key, token))))
      const waitForHolder = Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + policy.lockMs
        const released = yield* store.listenForRelease(key)
        while (true) {
          const value = yield* freshEntry(cacheable.response, key, generation)
          if (Option.isSome(value)) {
            return { _tag: "Delivered", value: value.value } as const
          }
          if (yield* store.acquireLock(key, token, policy.lockMs)) {
            return { _tag: "Acquired" } as const
          }
          const remaining = deadline - (yield* Clock.currentTimeMillis)
          if (remaining <= 0) {
            return { _tag: "TimedOut" } as const
          }
          yield* Effect.timeoutOption(released, remaining)
        }
      }).pipe(Effect.scoped)
      return Effect.flatMap(Effect.result(store.acquireLock(key, token, policy.lockMs)), (acquired) => {
        if (Result.isFailure(acquired)) {
          return resolveAndWrite(cacheable, query, key, policy, generation)
        }
        if (acquired.success) {
          return resolveHolding
        }
        return Effect.flatMap(Effect.result(waitForHolder), (waited) => {
          if (Result.isFailure(waited) || waited.success._tag === "TimedOut") {
            return resolveAndWrite(cacheable, query, key, policy, generation)
          }
          if (waited.success._tag === "Acquired") {
            return resolveHolding
          }
          return Effect.succeed({ value: waited.success.value, outcome: "coalesced" as const })
        })
      })
    }

    const resolveAndStore = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      generation: string
    ): Effect.Effect<Answer<A>, E | CacheError, R> =>
      policy.lockMs > 0
        ? resolveUnderLock(cacheable, query, key, policy, generation)
        : resolveAndWrite(cacheable, query, key, policy, generation)

    const awaitFlight = <A, E>(
      flight: Flight,
      flightKey: string,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
      leader: boolean
    ): Effect.Effect<Answer<A>, E> => {
      const waiting = restore(Deferred.await(flight.deferred as Deferred.Deferred<Answer<A>, E>)).pipe(
        Effect.ensuring(Effect.sync(() => {
          flight.waiters--
        })),
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            // The last caller to leave takes the resolve down with it; anyone still waiting keeps it going, and
            // a background refresh runs to its end whoever waits.
            if (flight.waiters > 0 || flight.background || flight.fiber === undefined) {
              return Effect.void
            }
            if (flights.get(flightKey) === flight) {
              flights.delete(flightKey)
            }
            // Not awaited: the caller that leaves does not wait for the resolver's finalizers.
            return Effect.asVoid(Effect.forkIn(Fiber.interrupt(flight.fiber), scope))
          })
        )
      )
      return leader ? waiting : Effect.map(waiting, (answer) => ({ value: answer.value, outcome: "coalesced" }))
    }

    /**
     * Single flight: the first caller for a key and generation forks the resolve into the layer's scope. The
     * generation is part of the flight's key, so a call that reads a newer generation (after an invalidation)
     * never joins a resolve that started before it.
     */
    const startOrJoin = <A, E, R>(
      flightKey: string,
      resolve: Effect.Effect<Answer<A>, E, R>,
      background: boolean
    ): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> =>
      Effect.suspend((): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> => {
        const existing = flights.get(flightKey)
        if (existing !== undefined) {
          // Counted in the same step as the lookup: a yield between joining and being counted would let the last
          // other waiter, interrupted meanwhile, take the resolve down and leave this caller waiting forever.
          if (!background) {
            existing.waiters++
          }
          return Effect.succeed({ flight: existing, leader: false })
        }
        const flight: Flight = {
          deferred: Deferred.makeUnsafe<Answer<unknown>, unknown>(),
          waiters: background ? 0 : 1,
          fiber: undefined,
          background
        }
        flights.set(flightKey, flight)
        const land = Effect.sync(() => {
          if (flights.get(flightKey) === flight) {
            flights.delete(flightKey)
          }
        })
        // The flight leaves the map in the step that completes it, so a caller woken by the outcome never sees it
        // still in flight.
        const run = resolve.pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.andThen(land, Deferred.done(flight.deferred, exit as Exit.Exit<Answer<unknown>, unknown>))
          ),
          Effect.ensuring(land),
          Effect.interruptible
        )
        return Effect.map(Effect.forkIn(run, scope), (fiber) => {
          flight.fiber = fiber
          return { flight, leader: true }
        })
      })

    const shared = <A, E, R>(flightKey: string, resolve: Effect.Effect<Answer<A>, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          startOrJoin(flightKey, resolve, false),
          ({ flight, leader }) =>
            awaitFlight<A, E>(flight, flightKey, restore, leader)
        )
      )

    /** A refresh nobody waits for: it joins a resolve already in flight for the key, or starts one. */
    const refreshInBackground = <A, E, R>(flightKey: string, resolve: Effect.Effect<Answer<A>, E, R>) =>
      Effect.uninterruptible(Effect.asVoid(startOrJoin(
        flightKey,
        Effect.tapCause(resolve, (cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.logWarning("ResponseCache: a background refresh failed; the stale entry stays", cause)),
        true
      )))

    /**
     * Stale-if-error: the resolve failed, so serve the entry if it is still within the window. It is read again
     * first, so an invalidation that happened while the resolver ran is respected.
     */
    const staleIfError = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      cause: Cause.Cause<E | CacheError>
    ): Effect.Effect<Answer<A>, E | CacheError> =>
      Effect.flatMap(Effect.result(store.lookup(key, undefined)), (lookup) => {
        const entry = Result.isSuccess(lookup) ? lookup.success.entry : undefined
        if (entry === undefined || entry.graceMs - entry.remainingMs >= policy.staleIfErrorMs) {
          return Effect.failCause(cause)
        }
        const decoded = decodeEntry(cacheable.response, entry.payload)
        if (Result.isFailure(decoded)) {
          return Effect.failCause(cause)
        }
        return Effect.as(
          Effect.logWarning("ResponseCache: the resolver failed; serving the entry within staleIfError", cause),
          { value: decoded.success, outcome: entry.remainingMs > entry.graceMs ? "hit" as const : "stale" as const }
        )
      })

    // The last payload decoded for each entry key, with its value: a hit whose bytes are the same as last time
    // (compared in full, just read from the store) needs no JSON.parse and no schema decode.
    const decodedPayloads = new BoundedMap.BoundedMap<string, {
      readonly schema: AnyCodec
      readonly payload: string
      readonly value: unknown
    }>(10_000)

    const decodeStored = <A>(
      schema: Schema.Codec<A, any, never, never>,
      key: CacheKey.CacheKey,
      payload: string
    ): Result.Result<A, SerdeError> => {
      const memo = decodedPayloads.get(key.entry)
      if (memo !== undefined && memo.payload === payload && memo.schema === schema) {
        return Result.succeed(memo.value as A)
      }
      const decoded = decodeEntry(schema, payload)
      if (Result.isSuccess(decoded)) {
        decodedPayloads.set(key.entry, { schema, payload, value: decoded.success })
      }
      return decoded
    }

    const bypass = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      error: RedisError,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Answer<A>, E | CacheError, R> =>
      strict ? Effect.fail(error) : storeFailed(error, "reading").pipe(
        Effect.andThen(underSpan(resolveTimed(cacheable, query), parent)),
        Effect.flatMap((value) =>
          Result.match(encodeResponse(cacheable.response, value), {
            onFailure: Effect.fail,
            onSuccess: () =>
              Effect.succeed({ value, outcome: "bypass" as const })
          })
        )
      )

    /** What to do with what the lookup found: a hit, a stale hit with a refresh, or a (shared) resolve. */
    const afterLookup = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      { corrupt, entry, generation }: Lookup,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Answer<A>, E | CacheError, R> => {
      // Something that is no entry of this cache at all stands under the key: a miss the resolve overwrites, or,
      // when strict, a SerdeError (an entry of another generation is a plain miss).
      if (corrupt === true && strict) return Effect.fail(notAnEntry())
      let staleIfErrorApplies = false
      let stale: A | undefined
      let isStale = false
      if (entry !== undefined) {
        const decoded = decodeStored(cacheable.response, key, entry.payload)
        if (Result.isSuccess(decoded)) {
          // How long the entry is past its fresh time, by the store's own clock (negative: still fresh).
          const staleForMs = entry.graceMs - entry.remainingMs
          if (staleForMs < 0) return Effect.succeed({ value: decoded.success, outcome: "hit" })
          if (staleForMs < policy.staleWhileRevalidateMs) {
            stale = decoded.success
            isStale = true
          } else staleIfErrorApplies = staleForMs < policy.staleIfErrorMs
        } else if (strict) {
          return Effect.fail(decoded.failure)
        }
        // A corrupt entry is a miss that the resolve overwrites, unless the caller asked to hear of it.
      }
      const flightKey = `${key.entry}\u0000${generation}`
      const resolve = underSpan(resolveAndStore(cacheable, query, key, policy, generation!), parent)
      if (isStale) {
        return Effect.as(refreshInBackground(flightKey, resolve), { value: stale as A, outcome: "stale" as const })
      }
      const fresh = shared(flightKey, resolve)
      if (!staleIfErrorApplies) return fresh
      return Effect.catchCause(fresh, (cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : staleIfError(cacheable, key, policy, cause))
    }

    const lookupOrResolve = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: string,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Answer<A>, E | CacheError, R> =>
      Effect.suspend(() => {
        const policy = CachePolicy.check(Cacheable.policyFor(cacheable, query))
        if (Result.isFailure(policy)) {
          return Effect.fail(policy.failure)
        }
        const resolved = policy.success
        const key = CacheKey.derive(keysOf(namespace), cacheable, query)
        if (Result.isFailure(key)) {
          return Effect.fail(key.failure)
        }
        return Effect.matchEffect(
          store.lookup(
            key.success,
            { token: nextToken(), ttlMs: resolved.ttlMs + resolved.graceMs },
            resolved.graceMs > 0
          ),
          {
            onFailure: (error) =>
              bypass(cacheable, query, error, parent),
            onSuccess: (lookup) =>
              afterLookup(cacheable, query, key.success, resolved, lookup, parent)
          }
        )
      })

    /**
     * Every `getOrResolve` goes through here: one span "ResponseCache.getOrResolve" (the parent of what the
     * resolver traces) with the cache's name, namespace and outcome, and the lookup counted by outcome.
     */
    const lookupCounted = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q
    ): Effect.Effect<Answer<A>, E | CacheError, R> =>
      Effect.suspend(() => {
        const namespace = cacheable.namespace(query)
        const metrics = Metrics.forCache(cacheable.name)
        return Effect.useSpan("ResponseCache.getOrResolve", (span) => {
          span.attribute("cache.name", cacheable.name)
          span.attribute("cache.namespace", namespace)
          return Effect.tapCause(
            Effect.tap(lookupOrResolve(cacheable, query, namespace, span), (answer) => {
              span.attribute("cache.outcome", answer.outcome)
              return Metric.update(metrics.lookups[answer.outcome], 1)
            }),
            () => {
              span.attribute("cache.outcome", "error")
              return Metric.update(metrics.lookups.error, 1)
            }
          )
        })
      })

    const getOrResolveWithOutcome = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      lookupCounted(cacheable, query)

    const getValue = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.map(lookupCounted(cacheable, query), (answer) => answer.value)

    // Curried when called with the cacheable alone (`Function.dual` would take the query, the data, first).
    const getOrResolve = ((...args: [Cacheable.Cacheable<any, any, any, any>, unknown?]) =>
      args.length >= 2
        ? getValue(args[0], args[1])
        : (query: unknown) => getValue(args[0], query)) as ResponseCache.ResponseCache["Service"]["getOrResolve"]

    const get = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.gen(function*() {
        const key = yield* CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query)
        const { corrupt, entry } = yield* store.lookup(key, undefined)
        if (corrupt === true && strict) return yield* notAnEntry()
        if (entry === undefined || entry.remainingMs <= entry.graceMs) return Option.none<A>()
        const decoded = decodeEntry(cacheable.response, entry.payload)
        if (Result.isSuccess(decoded)) return Option.some(decoded.success)
        return strict ? yield* decoded.failure : Option.none<A>()
      }).pipe(Effect.withSpan("ResponseCache.get"))

    const set = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q, value: A) =>
      Effect.gen(function*() {
        const policy = yield* CachePolicy.resolve(Cacheable.policyFor(cacheable, query))
        const key = yield* CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query)
        const payload = yield* Effect.fromResult(encodeResponse(cacheable.response, value))
        if (yield* fits(cacheable, payload)) yield* writeEntry(key, undefined, payload, policy)
      }).pipe(Effect.withSpan("ResponseCache.set"))

    const invalidate = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query), store.remove).pipe(
        Effect.withSpan("ResponseCache.invalidate")
      )

    const invalidateNamespace = (namespace: string) =>
      Effect.suspend(() => store.dropGeneration(keysOf(namespace))).pipe(
        Effect.withSpan("ResponseCache.invalidateNamespace", {
          attributes: { "cache.namespace": namespace }
        })
      )

    const sweepNamespace = (namespace: string) => Stream.suspend(() => store.sweep(keysOf(namespace)))

    const purgeNamespace = (namespace: string) =>
      Effect.andThen(invalidateNamespace(namespace), Stream.runSum(sweepNamespace(namespace))).pipe(
        Effect.withSpan("ResponseCache.purgeNamespace", {
          attributes: { "cache.namespace": namespace }
        })
      )

    const inFlight = Effect.sync(() => {
      let callers = 0
      for (const flight of flights.values()) callers += flight.waiters
      return { resolves: flights.size, callers }
    })

    return {
      getOrResolve,
      getOrResolveWithOutcome,
      get,
      set,
      invalidate,
      invalidateNamespace,
      sweepNamespace,
      purgeNamespace,
      inFlight
    }
  })
