/**
 * The caching logic, written once above the store interface: policy and key derivation, serde, single flight,
 * fail-open, spans and metrics. Both layers build their service with `make`.
 */
import { randomBytes } from "node:crypto"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Cacheable from "../Cacheable.js"
import { type CacheError, type RedisError, SerdeError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CachePolicy from "../CachePolicy.js"
import type { CacheStore } from "../CacheStore.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Metrics from "../ResponseCacheMetrics.js"

type Result<A> = ResponseCache.WithOutcome<A>

interface Flight {
  readonly deferred: Deferred.Deferred<Result<unknown>, unknown>
  waiters: number
  fiber: Fiber.RuntimeFiber<unknown> | undefined
}

type AnySchema = Schema.Schema<any, any, never>

const memoBySchema = <F>(build: (schema: AnySchema) => F) => {
  const memo = new WeakMap<AnySchema, F>()
  return (schema: AnySchema): F => {
    let f = memo.get(schema)
    if (f === undefined) {
      f = build(schema)
      memo.set(schema, f)
    }
    return f
  }
}

const encoderFor = memoBySchema((schema) => Schema.encodeEither(schema))
const decoderFor = memoBySchema((schema) => Schema.decodeUnknownEither(schema))

/** The response's JSON text, or `SerdeError` when it does not encode (or has no JSON form, e.g. a bigint). */
const encodeResponse = <A>(schema: Schema.Schema<A, any, never>, value: A): Either.Either<string, SerdeError> => {
  const encoded = encoderFor(schema)(value)
  if (Either.isLeft(encoded)) return Either.left(new SerdeError({ subject: "response", cause: encoded.left }))
  try {
    const json = JSON.stringify(encoded.right)
    return json === undefined
      ? Either.left(new SerdeError({ subject: "response", cause: new Error("the value has no JSON form") }))
      : Either.right(json)
  } catch (cause) {
    return Either.left(new SerdeError({ subject: "response", cause }))
  }
}

const decodeEntry = <A>(schema: Schema.Schema<A, any, never>, payload: string): Either.Either<A, SerdeError> => {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch (cause) {
    return Either.left(new SerdeError({ subject: "entry", cause }))
  }
  return Either.mapLeft(decoderFor(schema)(json), (cause) => new SerdeError({ subject: "entry", cause }))
}

/**
 * Generation tokens must never repeat, across processes and restarts: a random per-instance nonce and a counter.
 */
const tokenSource = () => {
  const nonce = randomBytes(9).toString("base64url")
  let counter = 0
  return () => nonce + (counter++).toString(36)
}

/**
 * Builds the service over a store. The scope is the layer's: resolves shared by several callers run in it, so
 * they outlive the caller that started them and stop when the layer does.
 */
export const make = (
  store: CacheStore,
  options: { readonly prefix: string; readonly strict: boolean }
): Effect.Effect<ResponseCache.ResponseCache.Service, never, Scope.Scope> =>
  Effect.map(Effect.scope, (scope) => {
    const { prefix, strict } = options
    const nextToken = tokenSource()
    const flights = new Map<string, Flight>()

    const keysOf = (namespace: string) => CacheKey.namespaceKeys(prefix, namespace)

    const resolveTimed = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(Effect.timed(cacheable.resolve(query)), ([duration, value]) =>
        Effect.as(Metric.update(Metrics.forCache(cacheable.name).resolveDuration, Duration.toMillis(duration)), value))

    const storeFailed = (error: RedisError, doing: string) =>
      Effect.logWarning(`ResponseCache: the store failed while ${doing}; answering from the resolver`).pipe(
        Effect.annotateLogs({ operation: error.operation, cause: error.message })
      )

    /** Resolve, validate and store under the generation read before resolving. */
    const resolveAndStore = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      generation: string
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      Effect.gen(function*() {
        const value = yield* resolveTimed(cacheable, query)
        const payload = yield* encodeResponse(cacheable.response, value)
        const freshMs = CachePolicy.freshMs(policy, yield* Random.next)
        const written = yield* Effect.either(store.write(key, {
          expected: generation,
          token: nextToken(),
          payload,
          graceMs: policy.graceMs,
          ttlMs: freshMs + policy.graceMs
        }))
        if (Either.isRight(written)) return { value, outcome: "miss" as const }
        if (strict) return yield* written.left
        yield* storeFailed(written.left, "writing")
        return { value, outcome: "bypass" as const }
      })

    const awaitFlight = <A, E>(
      flight: Flight,
      flightKey: string,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
      leader: boolean
    ): Effect.Effect<Result<A>, E> => {
      flight.waiters++
      const waiting = restore(Deferred.await(flight.deferred as Deferred.Deferred<Result<A>, E>)).pipe(
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            // The last caller to leave takes the resolve down with it; anyone still waiting keeps it going.
            flight.waiters--
            if (flight.waiters > 0 || flight.fiber === undefined) return Effect.void
            if (flights.get(flightKey) === flight) flights.delete(flightKey)
            return Fiber.interruptFork(flight.fiber)
          })
        )
      )
      return leader ? waiting : Effect.map(waiting, (result) => ({ value: result.value, outcome: "coalesced" }))
    }

    /**
     * Single flight: the first caller for a key and generation forks the resolve into the layer's scope; every
     * caller, the first included, awaits its outcome. The generation is part of the flight's key, so a call that
     * reads a newer generation (after an invalidation) never joins a resolve that started before it.
     */
    const shared = <A, E, R>(flightKey: string, resolve: Effect.Effect<Result<A>, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const existing = flights.get(flightKey)
          if (existing !== undefined) return awaitFlight<A, E>(existing, flightKey, restore, false)
          const flight: Flight = { deferred: Deferred.unsafeMake(FiberId.none), waiters: 0, fiber: undefined }
          flights.set(flightKey, flight)
          const run = resolve.pipe(
            Effect.exit,
            Effect.flatMap((exit) => Deferred.done(flight.deferred, exit as Exit.Exit<Result<unknown>, unknown>)),
            Effect.ensuring(Effect.sync(() => {
              if (flights.get(flightKey) === flight) flights.delete(flightKey)
            })),
            Effect.interruptible
          )
          return Effect.flatMap(Effect.forkIn(run, scope), (fiber) => {
            flight.fiber = fiber
            return awaitFlight<A, E>(flight, flightKey, restore, true)
          })
        })
      )

    const lookupOrResolve = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: CacheKey.NamespaceKeys
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      Effect.gen(function*() {
        const policy = yield* CachePolicy.resolve(Cacheable.policyFor(cacheable, query))
        const key = yield* CacheKey.make(namespace, cacheable, query)
        const lookup = yield* Effect.either(
          store.lookup(key, { token: nextToken(), ttlMs: policy.ttlMs + policy.graceMs })
        )
        if (Either.isLeft(lookup)) {
          if (strict) return yield* lookup.left
          yield* storeFailed(lookup.left, "reading")
          const value = yield* resolveTimed(cacheable, query)
          yield* encodeResponse(cacheable.response, value)
          return { value, outcome: "bypass" as const }
        }
        const { entry, generation } = lookup.right
        if (entry !== undefined && entry.remainingMs > entry.graceMs) {
          const decoded = decodeEntry(cacheable.response, entry.payload)
          if (Either.isRight(decoded)) return { value: decoded.right, outcome: "hit" as const }
          // A corrupt entry is a miss that the resolve below overwrites, unless the caller asked to hear of it.
          if (strict) return yield* decoded.left
        }
        return yield* shared(
          `${key.entry}\u0000${generation}`,
          resolveAndStore(cacheable, query, key, policy, generation!)
        )
      })

    const getOrResolveWithOutcome = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      Effect.suspend(() => {
        const namespace = cacheable.namespace(query)
        const lookups = Metrics.forCache(cacheable.name).lookups
        return Effect.useSpan(
          "ResponseCache.getOrResolve",
          {
            attributes: { "cache.name": cacheable.name, "cache.namespace": namespace },
            captureStackTrace: false
          },
          (span) =>
            lookupOrResolve(cacheable, query, keysOf(namespace)).pipe(
              Effect.withParentSpan(span),
              Effect.onExit((exit) => {
                const outcome = Exit.isSuccess(exit) ? exit.value.outcome : "error"
                span.attribute("cache.outcome", outcome)
                return Metric.increment(lookups[outcome])
              })
            )
        )
      })

    const getValue = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.map(getOrResolveWithOutcome(cacheable, query), (result) => result.value)
    // Curried when called with the cacheable alone (`Function.dual` would take the query, the data, first).
    const getOrResolve = ((...args: [Cacheable.Cacheable<any, any, any, any>, unknown?]) =>
      args.length >= 2
        ? getValue(args[0], args[1])
        : (query: unknown) => getValue(args[0], query)) as ResponseCache.ResponseCache.Service["getOrResolve"]

    const get = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.gen(function*() {
        const key = yield* CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query)
        const { entry } = yield* store.lookup(key, undefined)
        if (entry === undefined || entry.remainingMs <= entry.graceMs) return Option.none<A>()
        const decoded = decodeEntry(cacheable.response, entry.payload)
        if (Either.isRight(decoded)) return Option.some(decoded.right)
        return strict ? yield* decoded.left : Option.none<A>()
      }).pipe(Effect.withSpan("ResponseCache.get", { captureStackTrace: false }))

    const set = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q, value: A) =>
      Effect.gen(function*() {
        const policy = yield* CachePolicy.resolve(Cacheable.policyFor(cacheable, query))
        const key = yield* CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query)
        const payload = yield* encodeResponse(cacheable.response, value)
        const freshMs = CachePolicy.freshMs(policy, yield* Random.next)
        yield* store.write(key, {
          expected: undefined,
          token: nextToken(),
          payload,
          graceMs: policy.graceMs,
          ttlMs: freshMs + policy.graceMs
        })
      }).pipe(Effect.withSpan("ResponseCache.set", { captureStackTrace: false }))

    const invalidate = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query), store.remove).pipe(
        Effect.withSpan("ResponseCache.invalidate", { captureStackTrace: false })
      )

    const invalidateNamespace = (namespace: string) =>
      Effect.suspend(() => store.renewGeneration(keysOf(namespace), nextToken())).pipe(
        Effect.withSpan("ResponseCache.invalidateNamespace", {
          attributes: { "cache.namespace": namespace },
          captureStackTrace: false
        })
      )

    const sweepNamespace = (namespace: string) => Stream.suspend(() => store.sweep(keysOf(namespace)))

    const purgeNamespace = (namespace: string) =>
      Effect.zipRight(invalidateNamespace(namespace), Stream.runSum(sweepNamespace(namespace))).pipe(
        Effect.withSpan("ResponseCache.purgeNamespace", {
          attributes: { "cache.namespace": namespace },
          captureStackTrace: false
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

