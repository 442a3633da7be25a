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
import { Envelope, Keys } from "@ledgerlink/response-cache-wire"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redis from "effect/persistence/Redis"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import type { Cacheable } from "./Cacheable.js"
import type { CacheError } from "./CacheError.js"
import { checkPrefix } from "./CacheKey.js"
import { CacheStore } from "./CacheStore.js"
import * as CircuitBreaker from "./CacheStore/CircuitBreaker.js"
import * as MemoryStore from "./CacheStore/Memory.js"
import * as NearCache from "./CacheStore/NearCache.js"
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
  /**
   * Responses whose JSON is larger than this many bytes (UTF-8) are returned but not stored (outcome `miss`, the
   * counter `response_cache_oversize_total`, a warning at most once a minute per cacheable). Default 1 MiB;
   * `Infinity` stores everything. Measured as the Effect 3 package measures it (the wire package's `exceeds`).
   */
  readonly maxEntryBytes?: number | undefined
}

/**
 * An unusable setting: a `ConfigError` whose message and path name the setting.
 */
const invalid = (path: ReadonlyArray<string>, problem: string): Config.ConfigError =>
  new Config.ConfigError(
    new Schema.SchemaError(new SchemaIssue.Pointer(path, new SchemaIssue.InvalidValue({ message: problem })))
  )

const checkOptions = (options: Options) =>
  Effect.suspend(() => {
    const prefix = options.prefix ?? "rc"
    const problem = checkPrefix(prefix)
    if (problem !== undefined) return Effect.fail(invalid(["prefix"], problem))
    const maxEntryBytes = options.maxEntryBytes ?? Envelope.defaultMaxEntryBytes
    if (!(maxEntryBytes === Infinity || (Number.isSafeInteger(maxEntryBytes) && maxEntryBytes >= 1))) {
      return Effect.fail(invalid(
        ["maxEntryBytes"],
        `maxEntryBytes: ${maxEntryBytes} is not usable: use a whole number of bytes, at least 1, or Infinity`
      ))
    }
    return Effect.succeed({ prefix, maxEntryBytes, strict: options.strict ?? false })
  })

/** A duration setting that must be finite and at least 1 ms, in whole milliseconds. */
const positiveMillis = (path: ReadonlyArray<string>, input: Duration.Input) => {
  const decoded = Duration.fromInput(input)
  const ms = decoded._tag === "None" ? NaN : Math.ceil(Duration.toMillis(decoded.value))
  return Number.isSafeInteger(ms) && ms >= 1
    ? Effect.succeed(ms)
    : Effect.fail(
      invalid(path, `${path.join(".")}: ${String(input)} is not usable: use a finite duration of at least 1 ms`)
    )
}

/**
 * The cache over the `CacheStore` in context: the engine every layer below is built from. An unusable setting
 * fails its construction with a `ConfigError` naming the setting.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ResponseCache, Config.ConfigError, CacheStore> =>
  Layer.effect(
    ResponseCache,
    Effect.gen(function*() {
      const checked = yield* checkOptions(options)
      const store = yield* CacheStore
      return yield* internal.make(store, checked)
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
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<ResponseCache, Config.ConfigError> =>
  layer(options).pipe(
    Layer.provide(Layer.unwrap(Effect.suspend(() => {
      const capacity = options.capacity ?? 10_000
      if (!Number.isSafeInteger(capacity) || capacity < 1) {
        return Effect.fail(
          invalid(["capacity"], `capacity: ${capacity} is not usable: use a whole number of entries, at least 1`)
        )
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
  /**
   * Confirmed invalidation (opt-in): `invalidateNamespace` and `purgeNamespace` return only once `WAIT` reports
   * the invalidation on at least `replicas` replicas (of the namespace's shard, on a cluster) within `timeout`, and
   * fail with `RedisError` (operation `"invalidateNamespace"`) otherwise — the invalidation may then not survive a
   * failover. Sent over a connection no other command shares (`Redis.reserve`; on an ioredis cluster, one to the
   * slot's owner), so no hit or miss ever queues behind a WAIT.
   */
  readonly confirmInvalidation?: {
    readonly replicas: number
    readonly timeout: Duration.Input
  } | undefined
  /**
   * An in-process LRU of entries in front of Redis (opt-in), kept coherent across processes (of either package)
   * over pub/sub: an invalidation, `set` or `invalidate` in any process drops the entry everywhere within the
   * pub/sub delivery time. `ttl` bounds how long an entry is kept near (never longer than Redis keeps it).
   *
   * Needs the `Redis` service of `IoRedis.layer` / `IoRedis.layerCluster` (as `layerRedisCluster` has): a
   * near-cache must empty itself whenever its subscription may have missed a message, and only there are the
   * connection events it needs to know that. Over any other provider (`NodeRedis.layer`, whose subscriber
   * resubscribes after a reconnect without a word) the layer fails with a `ConfigError` at `nearCache`.
   */
  readonly nearCache?: {
    readonly capacity: number
    readonly ttl: Duration.Input
  } | undefined
}

const nearCacheNeedsIoRedis = "nearCache: the Redis service in context gives no connection events, so a near-cache " +
  "over it could not tell when its invalidation subscription missed messages (a Node provider such as NodeRedis " +
  "resubscribes after a reconnect silently) and could serve invalidated entries for good. Provide Redis with " +
  "IoRedis.layer or IoRedis.layerCluster (layerRedisCluster does), or leave nearCache out"

const redisStore = (options: RedisOptions): Layer.Layer<CacheStore, Config.ConfigError, Redis.Redis> =>
  Layer.effect(
    CacheStore,
    Effect.gen(function*() {
      const { prefix } = yield* checkOptions(options)
      const commandTimeout = yield* positiveMillis(["commandTimeout"], options.commandTimeout ?? Duration.millis(500))
      const breaker = options.breaker
      const failures = breaker === false ? 0 : breaker?.failures ?? 5
      if (breaker !== false && (!Number.isSafeInteger(failures) || failures < 1)) {
        return yield* Effect.fail(invalid(
          ["breaker", "failures"],
          `breaker.failures: ${failures} is not usable: use a whole number, at least 1`
        ))
      }
      const cooldown = breaker === false
        ? 0
        : yield* positiveMillis(["breaker", "cooldown"], breaker?.cooldown ?? Duration.seconds(1))
      const confirm = options.confirmInvalidation
      let confirmInvalidation: RedisStore.Options["confirmInvalidation"]
      if (confirm !== undefined) {
        if (!Number.isSafeInteger(confirm.replicas) || confirm.replicas < 1) {
          return yield* Effect.fail(invalid(
            ["confirmInvalidation", "replicas"],
            `confirmInvalidation.replicas: ${confirm.replicas} is not usable: use a whole number, at least 1`
          ))
        }
        // WAIT with a timeout of 0 blocks for ever.
        const timeoutMs = yield* positiveMillis(["confirmInvalidation", "timeout"], confirm.timeout)
        confirmInvalidation = { replicas: confirm.replicas, timeoutMs }
      }
      const near = options.nearCache
      let nearClient: IoRedis.IoRedisClient["Service"]["client"] | undefined
      let nearTtlMs = 0
      if (near !== undefined) {
        if (!Number.isSafeInteger(near.capacity) || near.capacity < 1) {
          return yield* Effect.fail(invalid(
            ["nearCache", "capacity"],
            `nearCache.capacity: ${near.capacity} is not usable: use a whole number of entries, at least 1`
          ))
        }
        nearTtlMs = yield* positiveMillis(["nearCache", "ttl"], near.ttl)
        const io = yield* Effect.serviceOption(IoRedis.IoRedisClient)
        if (io._tag === "None") return yield* Effect.fail(invalid(["nearCache"], nearCacheNeedsIoRedis))
        nearClient = io.value.client
      }
      const store = yield* RedisStore.make({
        prefix,
        commandTimeout: Duration.millis(commandTimeout),
        confirmInvalidation
      })
      const guarded = breaker === false
        ? store
        : yield* CircuitBreaker.make(store, { failures, cooldown: Duration.millis(cooldown) })
      if (near === undefined || nearClient === undefined) return guarded
      return yield* NearCache.make(guarded, nearClient, {
        capacity: near.capacity,
        ttlMs: nearTtlMs,
        channel: Keys.nearChannel(prefix),
        subscribeTimeoutMs: Math.max(500, commandTimeout)
      })
    })
  )

/**
 * The cache on Redis, over Effect's own `Redis` service: `NodeRedis.layer({ url })` from `@effect/platform-node`
 * provides it, as does `IoRedis.layer`, or any other provider. Building it makes no Redis call, so it never fails
 * because Redis is unreachable (whether the provider's own build does is the provider's matter: `NodeRedis.layer`
 * connects first, `IoRedis.layer` does not); every store call is bounded by `commandTimeout`. An unusable setting
 * fails it with a `ConfigError` naming the setting.
 *
 * Wire compatible with `@ledgerlink/response-cache` (Effect 3): on one Redis and one prefix, a cacheable of the
 * same name whose query and response encode the same way shares entries, generations, locks and invalidations.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<ResponseCache, Config.ConfigError, Redis.Redis> =>
  layer(options).pipe(Layer.provide(redisStore(options)))

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions extends RedisOptions, Omit<IoRedis.ClusterLayerOptions, "commandTimeout"> {}

/**
 * The cache on a Redis Cluster through ioredis, with every guarantee of `layerRedis`. A namespace's keys share one
 * hash tag, so each namespace lives in one slot and every script runs on one node; the sweep and confirmed
 * invalidations go to the node that owns the slot, and follow it through a resharding.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisCluster = (options: RedisClusterOptions): Layer.Layer<ResponseCache, Config.ConfigError> =>
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
