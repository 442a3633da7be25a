/**
 * The `ResponseCache` service for Effect 4: transparent caching of query responses, over any `CacheStore` — in
 * memory, or on Redis through Effect's own `Redis` service — with the semantics of the Effect 3 package and its
 * wire protocol, so both packages can share one Redis.
 *
 * What every layer guarantees:
 *
 * - **Miss → one resolve.** The resolver's value is encoded with the response schema (a value that does not encode
 *   fails with `SerdeError` and nothing is stored), stored, and returned. Resolver failures are never cached and
 *   surface unchanged.
 * - **Single flight** per layer instance: concurrent `getOrResolve` calls for one key share one resolve (outcome
 *   `coalesced` for all but the first). The resolve goes on while any caller still waits, and is interrupted when
 *   every caller has been.
 * - **Race-free namespace invalidation:** once `invalidateNamespace` or `purgeNamespace` has returned, no read
 *   returns an entry written before it, a resolve that started before it cannot store its result (its own callers
 *   still get the value), and a call that starts after it never joins a resolve that started before it.
 * - **Fail-open** by default: when the store fails during `getOrResolve`, the caller gets the resolver's answer
 *   (outcome `bypass`, a warning logged). With `strict: true` the `RedisError` (and the `SerdeError` of a corrupt
 *   entry) surfaces instead. The other operations always surface `RedisError`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import * as Stream from "effect/Stream"
import type { Cacheable } from "./Cacheable.js"
import type { CacheError } from "./CacheError.js"
import { checkPrefix } from "./CacheKey.js"
import { CacheStore } from "./CacheStore.js"
import * as CircuitBreaker from "./CacheStore/CircuitBreaker.js"
import * as MemoryStore from "./CacheStore/Memory.js"
import * as RedisStore from "./CacheStore/Redis.js"
import * as internal from "./internal/responseCache.js"
import * as IoRedis from "./IoRedis.js"
import type { Outcome } from "./ResponseCacheMetrics.js"

/**
 * @since 0.1.0
 * @category services
 */
export class ResponseCache extends Context.Service<ResponseCache, ResponseCache.Service>()(
  "@ledgerlink/response-cache-effect4/ResponseCache"
) {}

/**
 * @since 0.1.0
 */
export declare namespace ResponseCache {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The cached response of a query, resolving (once, however many callers ask at a time) on a miss. */
    readonly getOrResolve: {
      <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>): (query: NoInfer<Q>) => Effect.Effect<A, E | CacheError, R>
      <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: NoInfer<Q>): Effect.Effect<A, E | CacheError, R>
    }
    /** Like `getOrResolve`, also telling what the call ended as (for an `x-cache` header, say). */
    readonly getOrResolveWithOutcome: <Q, A, E, R>(
      cacheable: Cacheable<Q, A, E, R>,
      query: NoInfer<Q>
    ) => Effect.Effect<WithOutcome<A>, E | CacheError, R>
    /** The fresh cached response, if there is one; never resolves. */
    readonly get: <Q, A, E, R>(
      cacheable: Cacheable<Q, A, E, R>,
      query: NoInfer<Q>
    ) => Effect.Effect<Option.Option<A>, CacheError>
    /** Stores a response as the current one for its query. */
    readonly set: <Q, A, E, R>(
      cacheable: Cacheable<Q, A, E, R>,
      query: NoInfer<Q>,
      value: NoInfer<A>
    ) => Effect.Effect<void, CacheError>
    /** Removes one entry; best effort against a resolve already in flight elsewhere (use namespaces for that). */
    readonly invalidate: <Q, A, E, R>(
      cacheable: Cacheable<Q, A, E, R>,
      query: NoInfer<Q>
    ) => Effect.Effect<void, CacheError>
    /** O(1): the namespace gets a fresh generation, and nothing written before can be read again. */
    readonly invalidateNamespace: (namespace: string) => Effect.Effect<void, CacheError>
    /** Removes, page by page, the entries the namespace's current generation does not count; emits counts. */
    readonly sweepNamespace: (namespace: string) => Stream.Stream<number, CacheError>
    /** `invalidateNamespace`, then the sweep; returns how many entries were removed. */
    readonly purgeNamespace: (namespace: string) => Effect.Effect<number, CacheError>
    /** What this instance is resolving right now: for health checks, leak checks and tests. */
    readonly inFlight: Effect.Effect<InFlight>
  }
}

/**
 * A value and the outcome of the `getOrResolve` call that produced it.
 *
 * @since 0.1.0
 * @category models
 */
export interface WithOutcome<A> {
  readonly value: A
  readonly outcome: Exclude<Outcome, "error">
}

/**
 * Resolves in flight in one cache instance, and the callers waiting on them.
 *
 * @since 0.1.0
 * @category models
 */
export interface InFlight {
  readonly resolves: number
  readonly callers: number
}

/**
 * @since 0.1.0
 * @category accessors
 */
export const getOrResolve: {
  <Q, A, E, R>(
    cacheable: Cacheable<Q, A, E, R>
  ): (query: NoInfer<Q>) => Effect.Effect<A, E | CacheError, R | ResponseCache>
  <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: NoInfer<Q>): Effect.Effect<A, E | CacheError, R | ResponseCache>
} = ((...args: [Cacheable<any, any, any, any>, unknown?]) => {
  const run = (query: unknown) => ResponseCache.use((cache) => cache.getOrResolve(args[0], query))
  return args.length >= 2 ? run(args[1]) : run
}) as any

/**
 * @since 0.1.0
 * @category accessors
 */
export const getOrResolveWithOutcome = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>
): Effect.Effect<WithOutcome<A>, E | CacheError, R | ResponseCache> =>
  ResponseCache.use((cache) => cache.getOrResolveWithOutcome(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>
): Effect.Effect<Option.Option<A>, CacheError, ResponseCache> =>
  ResponseCache.use((cache) => cache.get(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const set = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>,
  value: NoInfer<A>
): Effect.Effect<void, CacheError, ResponseCache> => ResponseCache.use((cache) => cache.set(cacheable, query, value))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidate = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>
): Effect.Effect<void, CacheError, ResponseCache> => ResponseCache.use((cache) => cache.invalidate(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidateNamespace = (namespace: string): Effect.Effect<void, CacheError, ResponseCache> =>
  ResponseCache.use((cache) => cache.invalidateNamespace(namespace))

/**
 * @since 0.1.0
 * @category accessors
 */
export const sweepNamespace = (namespace: string): Stream.Stream<number, CacheError, ResponseCache> =>
  Stream.unwrap(ResponseCache.useSync((cache) => cache.sweepNamespace(namespace)))

/**
 * @since 0.1.0
 * @category accessors
 */
export const purgeNamespace = (namespace: string): Effect.Effect<number, CacheError, ResponseCache> =>
  ResponseCache.use((cache) => cache.purgeNamespace(namespace))

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `"rc"`; letters, digits and `._:-` only. Processes on one prefix share entries. */
  readonly prefix?: string | undefined
  /** Surface store failures and corrupt entries from `getOrResolve` instead of answering from the resolver. */
  readonly strict?: boolean | undefined
}

const validPrefix = (prefix: string) => {
  const problem = checkPrefix(prefix)
  return problem === undefined ? Effect.succeed(prefix) : Effect.die(new Error(problem))
}

/**
 * The cache over the `CacheStore` in context: the engine every layer below is built from.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ResponseCache, never, CacheStore> =>
  Layer.effect(
    ResponseCache,
    Effect.gen(function*() {
      const prefix = yield* validPrefix(options.prefix ?? "rc")
      const store = yield* CacheStore
      return yield* internal.make(store, { prefix, strict: options.strict ?? false })
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions extends Options {
  /** Entries kept at most; the least recently used goes first. Default 10,000. */
  readonly capacity?: number | undefined
}

/**
 * The cache in process, with the same semantics: entries expire by Effect's `Clock` (so `TestClock` drives them)
 * and are bounded by `capacity`, least recently used first.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<ResponseCache> =>
  layer(options).pipe(
    Layer.provide(Layer.unwrap(Effect.suspend(() => {
      const capacity = options.capacity ?? 10_000
      if (!Number.isSafeInteger(capacity) || capacity < 1) {
        return Effect.die(new Error(`Invalid capacity ${capacity}: use a whole number of entries, at least 1`))
      }
      return Effect.succeed(MemoryStore.layer({ capacity }))
    })))
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends Options {
  /** Bound on every store call; default 500 ms. */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * After `failures` store calls in a row fail (default 5), stop calling Redis for `cooldown` (default 1 second),
   * then probe with one call (Effect's `CircuitBreaker`). `false`: no breaker.
   */
  readonly breaker?:
    | {
      readonly failures?: number | undefined
      readonly cooldown?: Duration.Input | undefined
    }
    | false
    | undefined
}

const redisStore = (options: RedisOptions): Layer.Layer<CacheStore, never, Redis.Redis> =>
  Layer.unwrap(Effect.suspend(() => {
    const prefix = options.prefix ?? "rc"
    const problem = checkPrefix(prefix)
    if (problem !== undefined) return Effect.die(new Error(problem))
    const commandTimeout = Duration.fromInput(options.commandTimeout ?? Duration.millis(500))
    if (
      commandTimeout._tag === "None" || !Duration.isFinite(commandTimeout.value) ||
      !Duration.isPositive(commandTimeout.value)
    ) {
      return Effect.die(new Error(`Invalid commandTimeout ${String(options.commandTimeout)}: use a positive duration`))
    }
    const store = RedisStore.layer({ prefix, commandTimeout: commandTimeout.value })
    if (options.breaker === false) return Effect.succeed(store)
    const failures = options.breaker?.failures ?? 5
    if (!Number.isSafeInteger(failures) || failures < 1) {
      return Effect.die(new Error(`Invalid breaker.failures ${failures}: use a whole number, at least 1`))
    }
    return Effect.succeed(CircuitBreaker.layer(store, {
      failures,
      cooldown: Duration.fromInputUnsafe(options.breaker?.cooldown ?? Duration.seconds(1))
    }))
  }))

/**
 * The cache on Redis, over Effect's own `Redis` service: `NodeRedis.layer({ url })` from `@effect/platform-node`
 * provides it, as does `IoRedis.layer`, or any other provider. Building it makes no Redis call, so it never fails
 * because Redis is unreachable (whether the provider's own build does is the provider's matter: `NodeRedis.layer`
 * connects first, `IoRedis.layer` does not); every store call is bounded by `commandTimeout`.
 *
 * Wire compatible with `@ledgerlink/response-cache` (Effect 3): on one Redis and one prefix, a cacheable of the
 * same name whose query and response encode the same way shares entries, generations, locks and invalidations.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<ResponseCache, never, Redis.Redis> =>
  layer(options).pipe(Layer.provide(redisStore(options)))

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions extends RedisOptions, Omit<IoRedis.ClusterLayerOptions, "commandTimeout"> {}

/**
 * The cache on a Redis Cluster through ioredis, with every guarantee of `layerRedis`. A namespace's keys share one
 * hash tag, so each namespace lives in one slot and every script runs on one node.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisCluster = (options: RedisClusterOptions): Layer.Layer<ResponseCache> =>
  layerRedis(options).pipe(Layer.provide(IoRedis.layerCluster(options)))

/**
 * `layerRedis` with its options read from `Config`: the application names the settings, e.g.
 * `{ prefix: Config.String("CACHE_PREFIX"), commandTimeout: Config.Duration("CACHE_COMMAND_TIMEOUT") }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisConfig = (
  options: Config.Wrap<RedisOptions>
): Layer.Layer<ResponseCache, Config.ConfigError, Redis.Redis> =>
  Layer.unwrap(Effect.map(Config.unwrap(options), layerRedis))
