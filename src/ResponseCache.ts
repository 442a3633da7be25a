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
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Cluster, Redis as IORedis } from "ioredis"
import type { Cacheable } from "./Cacheable.js"
import type { CacheError } from "./CacheError.js"
import { checkPrefix } from "./CacheKey.js"
import * as CircuitBreaker from "./CacheStore/CircuitBreaker.js"
import * as MemoryStore from "./CacheStore/Memory.js"
import * as NearCache from "./CacheStore/NearCache.js"
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
      <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>): (query: Q) => Effect.Effect<A, E | CacheError, R>
      <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q): Effect.Effect<A, E | CacheError, R>
    }
    /** Like `getOrResolve`, also telling what the call ended as (for an `x-cache` header, say). */
    readonly getOrResolveWithOutcome: <Q, A, E, R>(
      cacheable: Cacheable<Q, A, E, R>,
      query: Q
    ) => Effect.Effect<WithOutcome<A>, E | CacheError, R>
    /** The fresh cached response, if there is one; never resolves. */
    readonly get: <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q) => Effect.Effect<Option.Option<A>, CacheError>
    /** Stores a response as the current one for its query. */
    readonly set: <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q, value: A) => Effect.Effect<void, CacheError>
    /** Removes one entry; best effort against a resolve already in flight elsewhere (use namespaces for that). */
    readonly invalidate: <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q) => Effect.Effect<void, CacheError>
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
  <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>): (query: Q) => Effect.Effect<A, E | CacheError, R | ResponseCache>
  <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q): Effect.Effect<A, E | CacheError, R | ResponseCache>
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
  query: Q
): Effect.Effect<WithOutcome<A>, E | CacheError, R | ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.getOrResolveWithOutcome(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Effect.Effect<Option.Option<A>, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.get(cacheable, query))

/**
 * @since 0.1.0
 * @category accessors
 */
export const set = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: Q,
  value: A
): Effect.Effect<void, CacheError, ResponseCache> =>
  Effect.flatMap(ResponseCache, (cache) => cache.set(cacheable, query, value))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidate = <Q, A, E, R>(
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
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
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions {
  /** Default `redis://127.0.0.1:6379`. */
  readonly url?: string | Redacted.Redacted | undefined
  /** Default `"rc"`; letters, digits and `._:-` only. */
  readonly prefix?: string | undefined
  /** Surface store failures and corrupt entries from `getOrResolve` instead of answering from the resolver. */
  readonly strict?: boolean | undefined
  /** Bound on every Redis command; default 500 ms. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * After `failures` store calls in a row fail (default 5), stop calling Redis for `cooldown` (default 1 second),
   * then probe with one call.
   */
  readonly circuitBreaker?: {
    readonly failures?: number | undefined
    readonly cooldown?: Duration.DurationInput | undefined
  } | undefined
  /**
   * An in-process LRU of entries in front of Redis (opt-in), kept coherent across processes over pub/sub: an
   * invalidation, `set` or `invalidate` in any process drops the entry everywhere within the pub/sub delivery
   * time. `ttl` bounds how long an entry is kept near (never longer than Redis keeps it).
   */
  readonly nearCache?: {
    readonly capacity: number
    readonly ttl: Duration.DurationInput
  } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** Default `"rc"`; letters, digits and `._:-` only. */
  readonly prefix?: string | undefined
  readonly strict?: boolean | undefined
  /** Entries kept at most; the least recently used goes first. Default 10,000. */
  readonly capacity?: number | undefined
}

const validPrefix = (prefix: string) => {
  const problem = checkPrefix(prefix)
  return problem === undefined ? Effect.succeed(prefix) : Effect.dieMessage(problem)
}

/**
 * Waits until the client is ready, or not at all: the layer must build while Redis is down.
 */
const whenReady = (client: IORedis | Cluster, timeout: Duration.Duration) =>
  Effect.async<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const onReady = () => resume(Effect.void)
    client.once("ready", onReady)
    return Effect.sync(() => client.off("ready", onReady))
  }).pipe(Effect.timeoutOption(timeout), Effect.asVoid)

const commandTimeoutMs = (options: { readonly commandTimeout?: Duration.DurationInput | undefined }) =>
  Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(options.commandTimeout ?? Duration.millis(500)))))

/**
 * Client options shared by a single server and every node of a cluster: commands fail at once while disconnected
 * (no offline queue that holds them until Redis returns) and after `commandTimeout` when Redis hangs; the client
 * reconnects in the background by itself.
 */
const clientOptions = (commandTimeout: number) => ({
  commandTimeout,
  connectTimeout: Math.max(1000, commandTimeout),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (attempt: number) => Math.min(25 * 2 ** attempt, 1000)
})

/**
 * A client for the cache, closed with the scope by a release that cannot hang.
 */
const acquireClient = (
  connect: () => IORedis | Cluster,
  commandTimeout: number
): Effect.Effect<RedisStore.ScriptedRedis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = connect()
      // Connection errors reach callers as failed commands; without a listener ioredis would print each one.
      client.on("error", () => {})
      return RedisStore.defineScripts(client)
    }),
    (client) =>
      Effect.tryPromise(() => client.quit()).pipe(
        Effect.interruptible,
        Effect.timeoutOption(Duration.seconds(1)),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  ).pipe(Effect.tap((client) => whenReady(client, Duration.millis(commandTimeout))))

/** The service over a client: the Redis store, behind a circuit breaker, under the shared caching logic. */
const makeRedisCache = (
  connect: (commandTimeout: number) => IORedis | Cluster,
  options: Omit<RedisOptions, "url">
) =>
  Effect.gen(function*() {
    const prefix = yield* validPrefix(options.prefix ?? "rc")
    const commandTimeout = commandTimeoutMs(options)
    const client = yield* acquireClient(() => connect(commandTimeout), commandTimeout)
    const store = yield* RedisStore.make(client, {
      channel: `${prefix}:lock-released`,
      subscribeTimeoutMs: Math.max(1000, commandTimeout)
    })
    const breaker = {
      failures: options.circuitBreaker?.failures ?? 5,
      cooldownMs: Duration.toMillis(Duration.decode(options.circuitBreaker?.cooldown ?? Duration.seconds(1)))
    }
    const guarded = CircuitBreaker.make(store, breaker)
    const near = options.nearCache
    if (near !== undefined && (!Number.isSafeInteger(near.capacity) || near.capacity < 1)) {
      return yield* Effect.dieMessage(`Invalid nearCache capacity ${near.capacity}: use a whole number, at least 1`)
    }
    const front = near === undefined ? guarded : yield* NearCache.make(guarded, client, {
      capacity: near.capacity,
      ttlMs: Duration.toMillis(Duration.decode(near.ttl)),
      channel: `${prefix}:near`
    })
    return yield* internal.make(front, { prefix, strict: options.strict ?? false })
  })

const reveal = (secret: string | Redacted.Redacted): string =>
  Redacted.isRedacted(secret) ? Redacted.value(secret) as string : secret

/**
 * The cache on Redis. Building it never fails because Redis is unreachable: the client connects and reconnects
 * in the background, and every command is bounded by `commandTimeout`. The client is closed when the layer's scope
 * ends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<ResponseCache> =>
  Layer.scoped(
    ResponseCache,
    makeRedisCache(
      (commandTimeout) =>
        // No auto-pipelining: the store batches the commands of one tick into one write itself, more cheaply.
        new IORedis(reveal(options.url ?? "redis://127.0.0.1:6379"), clientOptions(commandTimeout)),
      options
    )
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions extends Omit<RedisOptions, "url"> {
  /** Some of the cluster's nodes, e.g. `["redis://10.0.0.1:7000"]`; the rest are discovered. */
  readonly nodes: ReadonlyArray<string | Redacted.Redacted>
}

/**
 * The cache on a Redis Cluster, with every guarantee of `layerRedis`. A namespace's keys share one hash tag, so
 * each namespace lives in one slot (on one shard) and every script runs on one node.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisCluster = (options: RedisClusterOptions): Layer.Layer<ResponseCache> =>
  Layer.scoped(
    ResponseCache,
    makeRedisCache(
      (commandTimeout) =>
        new Cluster(options.nodes.map(reveal), {
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          // While a primary is down (until its replica is promoted), ioredis would retry a command every 100 ms
          // up to 16 times before it reaches any node, so outside `commandTimeout` (1.7 s per call, measured).
          // Fail at once instead: the breaker and fail-open answer meanwhile, and the next command's MOVED from
          // a live node points the client at the new primary.
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          // TRYAGAIN (a script whose keys a slot migration has split) is retried with fresh commands, so
          // commandTimeout does not bound it either: space the (at most 16) retries to fit in commandTimeout,
          // which gives a migrating batch of keys that long to land.
          retryDelayOnTryAgain: Math.max(1, Math.floor(commandTimeout / 16)),
          // A primary that hangs (rather than dies) neither closes its connection nor answers MOVED, so nothing
          // would tell the client that its replica took over: caching of its slots would stay off until it woke.
          // Ask the cluster for its slot map every second instead (one CLUSTER SLOTS, skipping a hung node).
          slotsRefreshInterval: 1000,
          slotsRefreshTimeout: commandTimeout,
          clusterRetryStrategy: (attempt) => Math.min(25 * 2 ** attempt, 1000),
          redisOptions: clientOptions(commandTimeout)
        }),
      options
    )
  )

/**
 * `layerRedisCluster` with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisClusterConfig = (
  options: Config.Config.Wrap<RedisClusterOptions>
): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layerRedisCluster))

/**
 * `layerRedis` with its options read from `Config`: the application names the variables, e.g.
 * `{ url: Config.redacted("REDIS_URL") }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedisConfig = (
  options: Config.Config.Wrap<RedisOptions>
): Layer.Layer<ResponseCache, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layerRedis))

/**
 * The cache in process, with the same semantics: entries expire by Effect's `Clock` (so `TestClock` drives them)
 * and are bounded by `capacity`, least recently used first.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<ResponseCache> =>
  Layer.scoped(
    ResponseCache,
    Effect.gen(function*() {
      const prefix = yield* validPrefix(options.prefix ?? "rc")
      const capacity = options.capacity ?? 10_000
      if (!Number.isSafeInteger(capacity) || capacity < 1) {
        return yield* Effect.dieMessage(`Invalid capacity ${capacity}: use a whole number of entries, at least 1`)
      }
      return yield* internal.make(MemoryStore.make({ capacity }), { prefix, strict: options.strict ?? false })
    })
  )
