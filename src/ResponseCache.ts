/**
 * The `ResponseCache` service: transparent caching of query responses, with a Redis layer and an in-memory layer
 * of the same semantics.
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
import type * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Cacheable } from "./Cacheable.js"
import type { CacheError } from "./CacheError.js"
import * as CacheKey from "./CacheKey.js"
import { CacheStore, type Health as CacheStoreHealth } from "./CacheStore.js"
import * as MemoryStore from "./CacheStore/Memory.js"
import * as RedisStore from "./CacheStore/Redis.js"
import * as internal from "./internal/responseCache.js"
import type { Outcome } from "./ResponseCacheMetrics.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class ResponseCache extends Context.Tag("@ledgerlink/response-cache/ResponseCache")<
  ResponseCache,
  ResponseCache.Service
>() {}

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
    /**
     * The cache's state, for a service's health check: `degraded`, with the reason in the store's own words (the
     * connection's last failure — `WRONGPASS …`, `ECONNREFUSED …`, a TLS error —, a circuit breaker that is open,
     * a channel permission Redis refuses, the latest store failure of the last minute), or `ok`. Never fails and
     * never says a secret. Calls keep working while it is degraded: they answer from the resolver (fail-open).
     */
    readonly health: Effect.Effect<Health>
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
 * What `health` reports.
 *
 * @since 0.1.0
 * @category models
 */
export type Health = CacheStoreHealth

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
  const run = (query: unknown) => Effect.flatMap(ResponseCache, (cache) => cache.getOrResolve(args[0], query))
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
  Effect.flatMap(ResponseCache, (cache) => cache.getOrResolveWithOutcome(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>
): Effect.Effect<Option.Option<A>, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.get(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const set = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>,
  value: NoInfer<A>
): Effect.Effect<void, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.set(cacheable, query, value))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidate = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: NoInfer<Q>
): Effect.Effect<void, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.invalidate(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidateNamespace = (namespace: string): Effect.Effect<void, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.invalidateNamespace(namespace))

/**
 * @since 0.1.0
 * @category accessors
 */
export const sweepNamespace = (namespace: string): Stream.Stream<number, CacheError, ResponseCache> =>
  Stream.unwrap(Effect.map(ResponseCache, (cache) => cache.sweepNamespace(namespace)))

/**
 * @since 0.1.0
 * @category accessors
 */
export const purgeNamespace = (namespace: string): Effect.Effect<number, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.purgeNamespace(namespace))

/**
 * The cache's state: `{ status: "ok" }`, or `{ status: "degraded", reason }` with the store's own words for why.
 *
 * @since 0.1.0
 * @category accessors
 */
export const health: Effect.Effect<Health, never, ResponseCache> = Effect.flatMap(
  ResponseCache,
  (cache) => cache.health
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `"rc"`; letters, digits and `._:-` only. */
  readonly prefix?: string | undefined
  /** Surface store failures and corrupt entries from `getOrResolve` instead of answering from the resolver. */
  readonly strict?: boolean | undefined
  /**
   * Responses whose JSON is larger than this many bytes (UTF-8) are returned but not stored (outcome `miss`, the
   * counter `response_cache_oversize_total`, a warning at most once a minute per cacheable). Default 1 MiB;
   * `Infinity` stores everything.
   */
  readonly maxEntryBytes?: number | undefined
}

/**
 * The cache over whatever `CacheStore` the context provides: `CacheStore/Memory`, `CacheStore/Redis`, or a
 * backend of your own. The `layerRedis…` and `layerMemory` conveniences below provide one for you.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ResponseCache, ConfigError.ConfigError, CacheStore> =>
  Layer.scoped(
    ResponseCache,
    Effect.gen(function*() {
      const prefix = yield* CacheKey.validPrefix(options.prefix ?? "rc")
      const maxEntryBytes = options.maxEntryBytes ?? 1024 * 1024
      if (!(maxEntryBytes === Infinity || (Number.isSafeInteger(maxEntryBytes) && maxEntryBytes >= 1))) {
        return yield* Effect.fail(ConfigError.InvalidData(
          ["maxEntryBytes"],
          `maxEntryBytes: ${maxEntryBytes} is not usable: use a whole number of bytes, at least 1, or Infinity`
        ))
      }
      return yield* internal.make(yield* CacheStore, { prefix, strict: options.strict ?? false, maxEntryBytes })
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends RedisStore.Options, Options {}

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions extends RedisStore.ClusterOptions, Options {}

/**
 * What `layerRedisConfig` reads from `Config` (the store's settings, and `strict`), beside values for the rest.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisConfigOptions extends RedisStore.ConfigOptions {
  readonly strict?: Config.Config<boolean> | undefined
}

/**
 * What `layerRedisClusterConfig` reads from `Config`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterConfigOptions extends RedisStore.ClusterConfigOptions {
  readonly strict?: Config.Config<boolean> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions extends Options {
  /** Entries kept at most; the least recently used goes first. Default 10,000. */
  readonly capacity?: number | undefined
}

/**
 * The cache on Redis: `layer` over `CacheStore/Redis`. Building it never fails because Redis is unreachable: the
 * client connects and reconnects in the background, and every command is bounded by `commandTimeout`. An
 * unusable setting (a URL that does not parse, a database the server does not have, `commandTimeout` ≤ 0, a bad
 * prefix, an ioredis option the cache must own) fails it with `ConfigError.InvalidData` naming the setting. The
 * client is closed when the layer's scope ends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.provide(layer(options), RedisStore.layer(options))

/** `strict`, read if given. */
const readStrict = (strict: Config.Config<boolean> | undefined) =>
  strict === undefined ? Effect.succeed(undefined) : strict

/**
 * `layerRedis` with its settings read from `Config`: the application names the variables, e.g.
 * `{ url: Config.redacted("REDIS_URL"), tls: { ca: Config.string("REDIS_CA_FILE") } }` (TLS files are read when
 * the layer is built).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisConfig = (
  options: RedisConfigOptions
): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const strict = yield* readStrict(options.strict)
    return layerRedis({ ...(yield* RedisStore.readConfig(options)), strict })
  }))

/**
 * The cache on a Redis Cluster, with every guarantee of `layerRedis`. A namespace's keys share one hash tag, so
 * each namespace lives in one slot (on one shard) and every script runs on one node.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisCluster = (
  options: RedisClusterOptions
): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.provide(layer(options), RedisStore.layerCluster(options))

/**
 * `layerRedisCluster` with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisClusterConfig = (
  options: RedisClusterConfigOptions
): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const strict = yield* readStrict(options.strict)
    return layerRedisCluster({ ...(yield* RedisStore.readClusterConfig(options)), strict })
  }))

/**
 * The cache in process, with the same semantics: entries expire by Effect's `Clock` (so `TestClock` drives them)
 * and are bounded by `capacity`, least recently used first.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.provide(layer(options), MemoryStore.layer(options))
