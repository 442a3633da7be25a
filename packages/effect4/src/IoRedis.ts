/**
 * Effect's `Redis` service (`effect/persistence/Redis`) over an ioredis client — one server, or a Redis Cluster —
 * for teams whose connection settings (sentinels, TLS, cluster NAT maps) are ioredis settings already, and for the
 * cluster, which node-redis' `NodeRedis` does not cover.
 *
 * Unlike `NodeRedis.layer`, building it never fails because Redis is unreachable: the client connects and
 * reconnects in the background, and commands fail at once while it is disconnected (no offline queue). The client
 * is closed when the layer's scope ends, by a release that cannot hang.
 *
 * Beside `Redis`, the layers provide `IoRedisClient`, the ioredis client itself: `ResponseCache.layerRedis` finds it
 * there and uses what only the client can give — connection events for the near-cache (`nearCache`), and on a
 * cluster a sweep and confirmed invalidations that go to the node owning the namespace's slot.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "effect/persistence/Redis"
import * as Redacted from "effect/Redacted"
import type { Cluster, ClusterOptions, Redis as IORedis, RedisOptions } from "ioredis"

interface IoRedisModule {
  readonly Redis: typeof IORedis
  readonly Cluster: typeof Cluster
}

// Loaded when a layer of this module is built: an install without ioredis (--legacy-peer-deps) still runs the rest.
const loadIoRedis: Effect.Effect<IoRedisModule> = Effect.tryPromise({
  try: (): Promise<IoRedisModule> => import("ioredis"),
  catch: (cause) => cause
}).pipe(
  Effect.orElseSucceed(() => undefined),
  Effect.flatMap((module) =>
    module === undefined
      ? Effect.die(new Error("IoRedis layers need the ioredis package: npm install ioredis@^6"))
      : Effect.succeed(module)
  )
)

/**
 * The ioredis client behind the `Redis` service of this module's layers.
 *
 * @since 0.1.0
 * @category services
 */
export class IoRedisClient extends Context.Service<IoRedisClient, {
  readonly client: IORedis | Cluster
}>()("@ledgerlink/response-cache-effect4/IoRedisClient") {}

const reveal = (secret: string | Redacted.Redacted): string =>
  Redacted.isRedacted(secret) ? Redacted.value(secret) as string : secret

/**
 * Settings the guarantees rest on: commands fail at once while disconnected and after `commandTimeout` when Redis
 * hangs; the client reconnects by itself.
 */
const clientOptions = (commandTimeoutMs: number): RedisOptions => ({
  commandTimeout: commandTimeoutMs,
  connectTimeout: Math.max(1000, commandTimeoutMs),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (attempt: number) => Math.min(25 * 2 ** attempt, 1000)
})

const isCluster = (client: IORedis | Cluster): client is Cluster => "nodes" in client && "slots" in client

/** Waits until the client is ready, or not at all: the layer must build while Redis is down. */
const whenReady = (client: IORedis | Cluster, timeoutMs: number) =>
  Effect.callback<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const onReady = () => resume(Effect.void)
    client.once("ready", onReady)
    return Effect.sync(() => client.off("ready", onReady))
  }).pipe(Effect.timeoutOption(timeoutMs), Effect.asVoid)

const make = (connect: () => IORedis | Cluster, commandTimeoutMs: number) =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = connect()
        // Connection errors reach callers as failed commands; without a listener ioredis would print each one.
        client.on("error", () => {})
        return client
      }),
      (client) =>
        Effect.tryPromise(() => client.quit()).pipe(
          Effect.timeoutOption(Duration.seconds(1)),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
    // Commands fail at once until the first connection is up: give it up to one command timeout.
    yield* whenReady(client, commandTimeoutMs)
    const call = <A>(command: string, args: ReadonlyArray<string>): Promise<A> =>
      client.call(command, ...args) as Promise<A>

    const redis = yield* Redis.make({
      send: <A = unknown>(command: string, ...args: ReadonlyArray<string>) =>
        Effect.tryPromise({
          try: async (): Promise<A> => {
            // On a cluster a script must be known to the node each EVALSHA lands on: load it on every primary.
            if (isCluster(client) && command.toUpperCase() === "SCRIPT" && args[0]?.toUpperCase() === "LOAD") {
              const shas = await Promise.all(client.nodes("master").map((node) => node.script("LOAD", args[1]!)))
              return shas[0] as A
            }
            return call<A>(command, args)
          },
          catch: (cause) => new Redis.RedisError({ cause })
        }),
      subscribe: (channel, onMessage) =>
        Effect.gen(function*() {
          const subscriber = yield* Effect.acquireRelease(
            Effect.sync(() => {
              // A connection of its own (a subscribed connection takes no other command), with an offline queue
              // so the SUBSCRIBE waits for the connection; ioredis subscribes again after every reconnect.
              const subscriber = isCluster(client)
                ? client.duplicate([], { lazyConnect: true, enableOfflineQueue: true })
                : client.duplicate({ lazyConnect: true, enableOfflineQueue: true })
              subscriber.on("error", () => {})
              subscriber.on("message", (received: string, message: string) => onMessage({ channel: received, message }))
              return subscriber
            }),
            (subscriber) => Effect.sync(() => subscriber.disconnect())
          )
          yield* Effect.tryPromise({
            try: () => subscriber.connect().then(() => subscriber.subscribe(channel)),
            catch: (cause) => new Redis.RedisError({ cause })
          })
          return Effect.never
        }),
      // The dedicated connections behind `Redis.reserve` (the cache reserves one for a confirmed invalidation on
      // a single server). Connected before use: the client's settings have no offline queue.
      connect: Effect.tryPromise({
        try: async () => {
          // No per-command timeout of the client's: these connections are for blocking commands (WAIT, BLPOP…),
          // which their callers bound themselves (the cache bounds its WAIT by its own timeout + commandTimeout).
          const connection = isCluster(client)
            ? client.duplicate(
              [],
              {
                lazyConnect: true,
                redisOptions: { ...client.options.redisOptions, commandTimeout: undefined }
              } as never
            )
            : client.duplicate({ lazyConnect: true, commandTimeout: undefined } as never)
          connection.on("error", () => {})
          try {
            await connection.connect()
          } catch (error) {
            connection.disconnect()
            throw error
          }
          return {
            send: <A = unknown>(command: string, ...args: ReadonlyArray<string>) =>
              Effect.tryPromise({
                try: () => connection.call(command, ...args) as Promise<A>,
                catch: (cause) => new Redis.RedisError({ cause })
              }),
            close: Effect.sync(() => connection.disconnect())
          }
        },
        catch: (cause) => new Redis.RedisError({ cause })
      })
    })
    return Context.make(Redis.Redis, redis).pipe(Context.add(IoRedisClient, IoRedisClient.of({ client })))
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `redis://127.0.0.1:6379`. */
  readonly url?: string | Redacted.Redacted | undefined
  /** ioredis options merged over what `url` says (tls, sentinels, username, password, db…). */
  readonly redis?: RedisOptions | undefined
  /** Bound on every command; default 500 ms. */
  readonly commandTimeout?: Duration.Input | undefined
}

const commandTimeoutMs = (input: Duration.Input | undefined) =>
  Math.max(1, Math.ceil(Duration.toMillis(Duration.fromInputUnsafe(input ?? Duration.millis(500)))))

/**
 * The `Redis` service over one ioredis client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Redis.Redis | IoRedisClient> =>
  Layer.effectContext(
    Effect.flatMap(loadIoRedis, (ioredis) => {
      const commandTimeout = commandTimeoutMs(options.commandTimeout)
      return make(
        () =>
          // Cast: ioredis 6's options are not written for `exactOptionalPropertyTypes`.
          new ioredis.Redis(
            reveal(options.url ?? "redis://127.0.0.1:6379"),
            { ...options.redis, ...clientOptions(commandTimeout) } as never
          ),
        commandTimeout
      )
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ClusterLayerOptions {
  /** Some of the cluster's nodes, e.g. `["redis://10.0.0.1:7000"]`; the rest are discovered. */
  readonly nodes: ReadonlyArray<string | Redacted.Redacted>
  /** Applied to every node connection (tls, username, password). */
  readonly redis?: RedisOptions | undefined
  /** ioredis ClusterOptions passed through (natMap, dnsLookup…); reads always go to primaries. */
  readonly cluster?: Omit<ClusterOptions, "redisOptions" | "scaleReads"> | undefined
  /** Bound on every command; default 500 ms. */
  readonly commandTimeout?: Duration.Input | undefined
}

/**
 * The `Redis` service over an ioredis Cluster client. Commands are routed by their keys; every script the cache
 * runs touches the keys of one namespace, which share a hash tag, so it runs on the node that owns that slot.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterLayerOptions): Layer.Layer<Redis.Redis | IoRedisClient> =>
  Layer.effectContext(
    Effect.flatMap(loadIoRedis, (ioredis) => {
      const commandTimeout = commandTimeoutMs(options.commandTimeout)
      return make(() =>
        new ioredis.Cluster(options.nodes.map(reveal), {
          ...options.cluster,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          // Fail at once while a primary is down rather than retry outside commandTimeout (see the Effect 3 package).
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          retryDelayOnTryAgain: Math.max(1, Math.floor(commandTimeout / 16)),
          slotsRefreshInterval: 1000,
          slotsRefreshTimeout: commandTimeout,
          clusterRetryStrategy: (attempt) => Math.min(25 * 2 ** attempt, 1000),
          redisOptions: { ...options.redis, ...clientOptions(commandTimeout) } as never
        }), commandTimeout)
    })
  )
