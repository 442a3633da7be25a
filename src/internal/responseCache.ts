/**
 * The caching logic, written once above the store interface: policy and key derivation, serde, single flight,
 * fail-open, spans and metrics. Both layers build their service with `make`.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as Cacheable from "../Cacheable.js"
import { type CacheError, type RedisError, SerdeError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CachePolicy from "../CachePolicy.js"
import type { CacheStore, Lookup } from "../CacheStore.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Metrics from "../ResponseCacheMetrics.js"
import { BoundedMap as Bounded, Tokens } from "@ledgerlink/response-cache-wire"
import { KeysByFields } from "./keysByFields.js"

type Result<A> = ResponseCache.WithOutcome<A>

interface Flight {
  readonly deferred: Deferred.Deferred<Result<unknown>, unknown>
  /** Callers awaiting the outcome. */
  waiters: number
  fiber: Fiber.RuntimeFiber<unknown> | undefined
  /** A stale-while-revalidate refresh: it runs to its end even when no caller waits. */
  readonly background: boolean
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

/** `f` of the checked policy, without a step when the policy was checked before. */
const withPolicy = <A, E, R>(
  policy: CachePolicy.CachePolicy,
  f: (policy: CachePolicy.Resolved) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | CacheError, R> => {
  const resolved = CachePolicy.resolvedSync(policy)
  return resolved !== undefined ? f(resolved) : Effect.flatMap(CachePolicy.resolve(policy), f)
}

const underSpan = <A, E, R>(effect: Effect.Effect<A, E, R>, parent: Tracer.Span | undefined) =>
  parent === undefined ? effect : Effect.withParentSpan(effect, parent)

const spanOptions = { captureStackTrace: false } as const

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Spans cost real time (a few µs each, even unrecorded): with tracing disabled, or with Effect's default tracer,
 * which records nothing, the cache makes none.
 */
const recordsSpans = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.getFiberRef(FiberRef.currentTracerEnabled) &&
  Context.get(fiber.getFiberRef(DefaultServices.currentServices), Tracer.Tracer) !== defaultTracer

/**
 * Builds the service over a store. The scope is the layer's: resolves shared by several callers, and background
 * refreshes, run in it, so they outlive the caller that started them and stop when the layer does.
 */
export const make = (
  store: CacheStore.Service,
  options: { readonly prefix: string; readonly strict: boolean }
): Effect.Effect<ResponseCache.ResponseCache.Service, never, Scope.Scope> =>
  Effect.map(Effect.scope, (scope) => {
    const { prefix, strict } = options
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

    /**
     * Stores a payload for its jittered fresh time plus the policy's grace, under `expected` (or, undefined, the
     * current generation).
     */
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
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      Effect.gen(function*() {
        const value = yield* resolveTimed(cacheable, query)
        const payload = yield* encodeResponse(cacheable.response, value)
        const written = yield* Effect.either(writeEntry(key, generation, payload, policy))
        if (Either.isRight(written)) return { value, outcome: "miss" as const }
        if (strict) return yield* written.left
        yield* storeFailed(written.left, "writing")
        return { value, outcome: "bypass" as const }
      })

    /**
     * The entry as the store has it now, if it is of `generation` (when given) and fresh.
     */
    const freshEntry = <A>(
      schema: Schema.Schema<A, any, never>,
      key: CacheKey.CacheKey,
      generation: string | undefined
    ): Effect.Effect<Option.Option<A>, RedisError> =>
      Effect.map(store.lookup(key, undefined), ({ entry, generation: current }) => {
        if (entry === undefined || entry.remainingMs <= entry.graceMs) return Option.none()
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

    const resolveAndStore = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      generation: string
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      policy.lockMs > 0
        ? resolveUnderLock(cacheable, query, key, policy, generation)
        : resolveAndWrite(cacheable, query, key, policy, generation)

    const awaitFlight = <A, E>(
      flight: Flight,
      flightKey: string,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
      leader: boolean
    ): Effect.Effect<Result<A>, E> => {
      const waiting = restore(Deferred.await(flight.deferred as Deferred.Deferred<Result<A>, E>)).pipe(
        Effect.ensuring(Effect.sync(() => flight.waiters--)),
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            // The last caller to leave takes the resolve down with it; anyone still waiting keeps it going, and
            // a background refresh runs to its end whoever waits.
            if (flight.waiters > 0 || flight.background || flight.fiber === undefined) return Effect.void
            if (flights.get(flightKey) === flight) flights.delete(flightKey)
            return Fiber.interruptFork(flight.fiber)
          })
        )
      )
      return leader ? waiting : Effect.map(waiting, (result) => ({ value: result.value, outcome: "coalesced" }))
    }

    /**
     * Single flight: the first caller for a key and generation forks the resolve into the layer's scope. The
     * generation is part of the flight's key, so a call that reads a newer generation (after an invalidation)
     * never joins a resolve that started before it.
     */
    const startOrJoin = <A, E, R>(
      flightKey: string,
      resolve: Effect.Effect<Result<A>, E, R>,
      background: boolean
    ): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> =>
      Effect.suspend((): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> => {
        const existing = flights.get(flightKey)
        if (existing !== undefined) {
          // Counted in the same step as the lookup: a yield between joining and being counted would let the last
          // other waiter, interrupted meanwhile, take the resolve down and leave this caller waiting forever.
          if (!background) existing.waiters++
          return Effect.succeed({ flight: existing, leader: false })
        }
        const flight: Flight = {
          deferred: Deferred.unsafeMake(FiberId.none),
          waiters: background ? 0 : 1,
          fiber: undefined,
          background
        }
        flights.set(flightKey, flight)
        const run = resolve.pipe(
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(flight.deferred, exit as Exit.Exit<Result<unknown>, unknown>)),
          Effect.ensuring(Effect.sync(() => {
            if (flights.get(flightKey) === flight) flights.delete(flightKey)
          })),
          Effect.interruptible
        )
        return Effect.map(Effect.forkIn(run, scope), (fiber) => {
          flight.fiber = fiber
          return { flight, leader: true }
        })
      })

    const shared = <A, E, R>(flightKey: string, resolve: Effect.Effect<Result<A>, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          startOrJoin(flightKey, resolve, false),
          ({ flight, leader }) => awaitFlight<A, E>(flight, flightKey, restore, leader)
        )
      )

    /** A refresh nobody waits for: it joins a resolve already in flight for the key, or starts one. */
    const refreshInBackground = <A, E, R>(flightKey: string, resolve: Effect.Effect<Result<A>, E, R>) =>
      Effect.uninterruptible(Effect.asVoid(startOrJoin(
        flightKey,
        Effect.tapErrorCause(resolve, (cause) =>
          Cause.isInterruptedOnly(cause)
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
    ): Effect.Effect<Result<A>, E | CacheError> =>
      Effect.flatMap(Effect.either(store.lookup(key, undefined)), (lookup) => {
        const entry = Either.isRight(lookup) ? lookup.right.entry : undefined
        if (entry === undefined || entry.graceMs - entry.remainingMs >= policy.staleIfErrorMs) {
          return Effect.failCause(cause)
        }
        const decoded = decodeEntry(cacheable.response, entry.payload)
        if (Either.isLeft(decoded)) return Effect.failCause(cause)
        return Effect.as(
          Effect.logWarning("ResponseCache: the resolver failed; serving the entry within staleIfError", cause),
          { value: decoded.right, outcome: entry.remainingMs > entry.graceMs ? "hit" as const : "stale" as const }
        )
      })

    // The last payload decoded for each entry key, with its value: a hit whose bytes are the same as last time
    // (compared in full, just read from the store) needs no JSON.parse and no schema decode.
    const decodedPayloads = new Bounded.BoundedMap<string, {
      readonly schema: Schema.Schema<any, any, never>
      readonly payload: string
      readonly value: unknown
    }>(10_000)

    const decodeStored = <A>(
      schema: Schema.Schema<A, any, never>,
      key: CacheKey.CacheKey,
      payload: string
    ): Either.Either<A, SerdeError> => {
      const memo = decodedPayloads.get(key.entry)
      if (memo !== undefined && memo.payload === payload && memo.schema === schema) {
        return Either.right(memo.value as A)
      }
      const decoded = decodeEntry(schema, payload)
      if (Either.isRight(decoded)) decodedPayloads.set(key.entry, { schema, payload, value: decoded.right })
      return decoded
    }

    const bypass = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      error: RedisError,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      strict ? Effect.fail(error) : storeFailed(error, "reading").pipe(
        Effect.zipRight(underSpan(resolveTimed(cacheable, query), parent)),
        Effect.flatMap((value) =>
          Either.match(encodeResponse(cacheable.response, value), {
            onLeft: Effect.fail,
            onRight: () => Effect.succeed({ value, outcome: "bypass" as const })
          })
        )
      )

    /** What to do with what the lookup found: a hit, a stale hit with a refresh, or a (shared) resolve. */
    const afterLookup = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      key: CacheKey.CacheKey,
      policy: CachePolicy.Resolved,
      { entry, generation }: Lookup,
      parent: Tracer.Span | undefined
    ): Effect.Effect<Result<A>, E | CacheError, R> => {
      let staleIfErrorApplies = false
      let stale: A | undefined
      if (entry !== undefined) {
        const decoded = decodeStored(cacheable.response, key, entry.payload)
        if (Either.isRight(decoded)) {
          // How long the entry is past its fresh time, by the store's own clock (negative: still fresh).
          const staleForMs = entry.graceMs - entry.remainingMs
          if (staleForMs < 0) return Effect.succeed({ value: decoded.right, outcome: "hit" })
          if (staleForMs < policy.staleWhileRevalidateMs) stale = decoded.right
          else staleIfErrorApplies = staleForMs < policy.staleIfErrorMs
        } else if (strict) {
          return Effect.fail(decoded.left)
        }
        // A corrupt entry is a miss that the resolve overwrites, unless the caller asked to hear of it.
      }
      const flightKey = `${key.entry}\u0000${generation}`
      const resolve = underSpan(resolveAndStore(cacheable, query, key, policy, generation!), parent)
      if (stale !== undefined) {
        return Effect.as(refreshInBackground(flightKey, resolve), { value: stale, outcome: "stale" as const })
      }
      const fresh = shared(flightKey, resolve)
      if (!staleIfErrorApplies) return fresh
      return Effect.catchAllCause(fresh, (cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : staleIfError(cacheable, key, policy, cause))
    }

    // Keys of queries seen before, so that a hot query is encoded and digested once: by the values of its fields
    // when its schema is a plain struct, else by the query object itself (queries are values: schema types are
    // readonly), which finds it when the same object comes back — a constant query, a decoded request kept around.
    const keysByFields = new WeakMap<Cacheable.Cacheable<any, any, any, any>, KeysByFields | null>()
    const keysOfQueries = new WeakMap<object, { readonly cacheable: unknown; readonly key: CacheKey.CacheKey }>()

    const keyOf = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: string
    ): Either.Either<CacheKey.CacheKey, SerdeError> => {
      let byFields = keysByFields.get(cacheable)
      if (byFields === undefined) {
        byFields = KeysByFields.for(cacheable.query, 10_000) ?? null
        keysByFields.set(cacheable, byFields)
      }
      const byIdentity = byFields === null && typeof query === "object" && query !== null
      if (byFields !== null) {
        const known = byFields.get(query, namespace)
        if (known !== undefined) return Either.right(known)
      } else if (byIdentity) {
        const memo = keysOfQueries.get(query)
        if (memo !== undefined && memo.cacheable === cacheable && memo.key.namespace.namespace === namespace) {
          return Either.right(memo.key)
        }
      }
      const key = CacheKey.unsafeMake(keysOf(namespace), cacheable, query)
      if (Either.isRight(key)) {
        if (byFields !== null) byFields.set(query, key.right)
        else if (byIdentity) keysOfQueries.set(query, { cacheable, key: key.right })
      }
      return key
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
      if (CachePolicy.resolvedSync(Cacheable.policyFor(cacheable, query)) === undefined) return undefined
      const key = keyOf(cacheable, query, namespace)
      if (Either.isLeft(key)) return undefined
      const now = Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock).unsafeCurrentTimeMillis()
      const { entry } = store.lookupNow!(key.right, now)
      if (entry === undefined || entry.remainingMs <= entry.graceMs) return undefined
      const decoded = decodeStored(cacheable.response, key.right, entry.payload)
      return Either.isRight(decoded) ? { value: decoded.right, outcome: "hit" } : undefined
    }

    const lookupOrResolve = <Q, A, E, R>(
      cacheable: Cacheable.Cacheable<Q, A, E, R>,
      query: Q,
      namespace: string,
      parent?: Tracer.Span
    ): Effect.Effect<Result<A>, E | CacheError, R> =>
      withPolicy(Cacheable.policyFor(cacheable, query), (policy) => {
        const key = keyOf(cacheable, query, namespace)
        if (Either.isLeft(key)) return Effect.fail(key.left)
        return Effect.matchEffect(
          store.lookup(key.right, { token: nextToken(), ttlMs: policy.ttlMs + policy.graceMs }, policy.graceMs > 0),
          {
            onFailure: (error) => bypass(cacheable, query, error, parent),
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
        const traced = recordsSpans(fiber)
        if (!traced && store.lookupNow !== undefined) {
          const hit = hitNow(fiber, cacheable, query, namespace)
          if (hit !== undefined) {
            lookups.hit.unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
            return Effect.succeed(answer(hit))
          }
        }
        if (!traced) {
          const lookup = lookupOrResolve(cacheable, query, namespace)
          // Counted in the steps the lookup takes anyway (`onExit` would cost several more).
          return Effect.tapErrorCause(
            Effect.map(lookup, (result) => {
              lookups[result.outcome].unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
              return answer(result)
            }),
            () => Metric.increment(lookups.error)
          )
        }
        // The span is the parent of what the resolver does; the lookup itself makes no spans, so it is not run
        // under it (setting a parent span copies the fiber's whole context). Outcome and metric are recorded in the
        // steps the lookup takes anyway, as above; the span ends in useSpan's own exit handler, interrupted or not.
        return Effect.useSpan("ResponseCache.getOrResolve", spanOptions, (span) => {
          // Set here rather than as `attributes`, which Effect copies through Object.entries on every call.
          span.attribute("cache.name", cacheable.name)
          span.attribute("cache.namespace", namespace)
          return Effect.tapErrorCause(
            Effect.map(lookupOrResolve(cacheable, query, namespace, span), (result) => {
              span.attribute("cache.outcome", result.outcome)
              lookups[result.outcome].unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
              return answer(result)
            }),
            () => {
              span.attribute("cache.outcome", "error")
              return Metric.increment(lookups.error)
            }
          )
        })
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
        yield* writeEntry(key, undefined, payload, policy)
      }).pipe(Effect.withSpan("ResponseCache.set", { captureStackTrace: false }))

    const invalidate = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
      Effect.flatMap(CacheKey.make(keysOf(cacheable.namespace(query)), cacheable, query), store.remove).pipe(
        Effect.withSpan("ResponseCache.invalidate", { captureStackTrace: false })
      )

    const invalidateNamespace = (namespace: string) =>
      Effect.suspend(() => store.dropGeneration(keysOf(namespace))).pipe(
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

