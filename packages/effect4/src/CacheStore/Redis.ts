/**
 * The Redis store over Effect's own `Redis` service (`effect/persistence/Redis`): each operation is one command
 * or one Lua script (loaded once, run by its SHA), so every generation check happens atomically inside Redis, never
 * as a read-modify-write across round trips. Any provider of that service works — `NodeRedis.layer` from
 * `@effect/platform-node`, or this package's `IoRedis.layer` / `IoRedis.layerCluster`.
 *
 * The key layout, the entry envelope and the scripts are the wire package's (`@ledgerlink/response-cache-wire`),
 * shared with the Effect 3 package; this module only speaks them through the `Redis` service. Every call is bounded
 * by `commandTimeout`: a provider that queues commands while disconnected (node-redis does) cannot hold a caller.
 *
 * @since 0.1.0
 */
import { Commands, Envelope, Keys, Scripts } from "@ledgerlink/response-cache-wire"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Cluster } from "ioredis"
import { RedisError } from "../CacheError.js"
import { CacheStore } from "../CacheStore.js"
import * as IoRedisStore from "../internal/ioredisStore.js"
import { IoRedisClient } from "../IoRedis.js"

const lookupScript = Redis.script(
  (generation: string, entry: string, token: string, ttlMs: number) => [generation, entry, token, ttlMs],
  { lua: Scripts.lookup, numberOfKeys: 2 }
).withReturnType<ReadonlyArray<string | number>>()

const writeScript = Redis.script(
  (
    generation: string,
    entry: string,
    written: string,
    expected: string,
    token: string,
    body: string,
    ttlMs: number
  ) => [generation, entry, written, expected, token, body, ttlMs],
  { lua: Scripts.write, numberOfKeys: 3 }
).withReturnType<number>()

const sweepScript = Redis.script(
  (generation: string, written: string, cursor: string, pattern: string, count: number) => [
    generation,
    written,
    cursor,
    pattern,
    count
  ],
  { lua: Scripts.sweep, numberOfKeys: 2 }
).withReturnType<readonly [string | number, number]>()

const releaseScript = Redis.script(
  (lock: string, token: string, channel: string, entry: string) => [lock, token, channel, entry],
  { lua: Scripts.release, numberOfKeys: 1 }
).withReturnType<number>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The key prefix; its pub/sub channels are derived from it as the Effect 3 package derives them. */
  readonly prefix: string
  /** Bound on every store call. */
  readonly commandTimeout: Duration.Duration
  /**
   * Invalidations return once `WAIT` reports them on this many replicas within `timeoutMs` (checked by the
   * layer), or fail.
   */
  readonly confirmInvalidation?: { readonly replicas: number; readonly timeoutMs: number } | undefined
}

/**
 * The store over the `Redis` service in context. Lock releases are heard on one subscription, opened the first
 * time this process waits on another's resolve and kept for the scope. When the service is this package's
 * `IoRedis` layer over a cluster (`IoRedisClient` in context), the sweep and confirmed invalidations go to the
 * node that owns the namespace's slot, following it through a resharding.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const redis = yield* Redis.Redis
  const ioredis = yield* Effect.serviceOption(IoRedisClient)
  const cluster = Option.isSome(ioredis) && IoRedisStore.isCluster(ioredis.value.client)
    ? ioredis.value.client
    : undefined
  const scope = yield* Effect.scope
  const channel = Keys.lockReleasedChannel(options.prefix)
  const timeoutMs = Duration.toMillis(options.commandTimeout)

  const toRedisError = (operation: string) => (error: Redis.RedisError | RedisError) =>
    error instanceof RedisError ? error : new RedisError({ operation, cause: error.cause })

  // The bound on every store call. `Effect.timeoutOrElse` races the call against a sleeping fiber, which doubled
  // the cost of a hit (measured: ~21 µs of ~44 µs client CPU per hit); here the call runs in one child fiber of
  // the caller's context and a plain timer fails it, so the caller waits at most `commandTimeout` either way.
  const bounded = <A>(operation: string, effect: Effect.Effect<A, Redis.RedisError | RedisError>) =>
    boundedBy(operation, timeoutMs, effect)
  function boundedBy<A>(operation: string, timeoutMs: number, effect: Effect.Effect<A, Redis.RedisError | RedisError>) {
    return Effect.withFiber<A, RedisError>((parent) =>
      Effect.callback<A, RedisError>((resume) => {
        const child = Effect.runForkWith(parent.context)(Effect.mapError(effect, toRedisError(operation)))
        const timer = setTimeout(() => {
          resume(Effect.fail(new RedisError({ operation, cause: new Error(`no answer within ${timeoutMs} ms`) })))
          child.interruptUnsafe()
        }, timeoutMs)
        child.addObserver((exit) => {
          clearTimeout(timer)
          resume(exit)
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          child.interruptUnsafe()
        })
      })
    )
  }

  const sweepCluster = (client: Cluster, namespace: Keys.NamespaceKeys) =>
    Stream.paginate({ cursor: "0", node: undefined } as IoRedisStore.SweepCursor, (page) =>
      Effect.map(
        bounded(
          "sweep",
          Effect.tryPromise({
            try: () => IoRedisStore.sweepClusterPage(client, namespace, page),
            catch: (cause) => new RedisError({ operation: "sweep", cause })
          })
        ),
        ({ next, removed }) => [[removed], next.cursor === "0" ? Option.none() : Option.some(next)] as const
      ))

  // Confirmed invalidations (`confirmInvalidation`): DEL + WAIT on a connection no other command shares. On an
  // ioredis cluster, to the owner of the namespace's slot; otherwise on a connection reserved from the `Redis`
  // service (`Redis.reserve`), returned to its pool afterwards, closed if a command on it failed.
  const confirmed = options.confirmInvalidation === undefined ? undefined : yield* confirmations(
    redis,
    cluster,
    options.confirmInvalidation,
    timeoutMs
  )

  const lookup = redis.eval(lookupScript)
  const write = redis.eval(writeScript)
  const sweep = redis.eval(sweepScript)
  const release = redis.eval(releaseScript)

  // Lock releases: one subscription per store, dispatched by entry key to the waiters of this process.
  const listeners = new Map<string, Set<() => void>>()
  let subscribed: Deferred.Deferred<void, RedisError> | undefined
  const ensureSubscribed = Effect.suspend((): Effect.Effect<void, RedisError> => {
    if (subscribed !== undefined) return Deferred.await(subscribed)
    const ready = Deferred.makeUnsafe<void, RedisError>()
    subscribed = ready
    const listen = Effect.gen(function*() {
      const queue = yield* redis.subscribe(channel)
      yield* Deferred.succeed(ready, undefined)
      while (true) {
        const { message } = yield* Queue.take(queue)
        const waiting = listeners.get(message)
        if (waiting !== undefined) { for (const wake of waiting) wake() }
      }
    }).pipe(
      Effect.scoped,
      Effect.catchCause((cause) =>
        Effect.suspend(() => {
          // Subscribe again on the next wait.
          if (subscribed === ready) subscribed = undefined
          return Deferred.fail(ready, new RedisError({ operation: "subscribe", cause: Cause.squash(cause) }))
        })
      )
    )
    // Forked into the store's scope, uninterruptibly, so that `subscribed` never names a listener never started.
    return Effect.andThen(Effect.uninterruptible(Effect.forkIn(listen, scope)), Deferred.await(ready))
  })

  return CacheStore.of({
    lookup: (key, create, withGrace) => {
      const scripted = () =>
        Effect.map(
          lookup(key.namespace.generation, key.entry, create?.token ?? "", create?.ttlMs ?? 0),
          Envelope.fromLookupReply
        )
      // The hot path: one MGET (atomic, and as cheap for Redis as a GET, where a script costs it twice that)
      // reads the generation and the entry together. Only a missing generation, or an entry with grace, whose
      // time left decides what it is, needs the script.
      if (withGrace) return bounded("lookup", scripted())
      return bounded(
        "lookup",
        Effect.flatMap(
          redis.send<ReadonlyArray<string | null>>("MGET", key.namespace.generation, key.entry),
          (reply) => {
            const found = Envelope.fromMget(reply[0], reply[1])
            return found === undefined ? scripted() : Effect.succeed(found)
          }
        )
      )
    },

    write: (key, entry) =>
      bounded(
        "write",
        Effect.map(
          write(
            key.namespace.generation,
            key.entry,
            key.namespace.written,
            entry.expected ?? "",
            entry.token,
            Envelope.body(entry.graceMs, entry.payload),
            entry.ttlMs
          ),
          (stored) => Number(stored) === 1
        )
      ),

    remove: (key) => bounded("unlink", Effect.asVoid(redis.send("UNLINK", key.entry))),

    // The wire package's invalidation (a DEL of the generation, which Redis accepts even when it is full and
    // refuses writes, noeviction), as the Effect 3 package sends it. The next lookup creates a new unique token.
    dropGeneration: confirmed === undefined
      ? (namespace) => {
        const [command, ...args] = Commands.invalidate(namespace)
        return bounded("invalidateNamespace", Effect.asVoid(redis.send(command, ...args)))
      }
      : (namespace) => boundedBy("invalidateNamespace", confirmed.timeoutMs + timeoutMs, confirmed.drop(namespace)),

    // One script call per page: it SCANs on the server and removes the page's dead entries there. On an ioredis
    // cluster each page runs on the node that owns the namespace's slot, whose cursor it is, following the slot.
    sweep: (namespace) =>
      cluster !== undefined ? sweepCluster(cluster, namespace) : Stream.paginate("0", (cursor: string) =>
        Effect.map(
          bounded(
            "sweep",
            sweep(namespace.generation, namespace.written, cursor, namespace.entryPattern, Scripts.sweepPageCount)
          ),
          ([next, removed]) => {
            const nextCursor = String(next)
            return [[Number(removed)], nextCursor === "0" ? Option.none() : Option.some(nextCursor)] as const
          }
        )),

    acquireLock: (key, token, ttlMs) =>
      bounded(
        "lock",
        Effect.map(redis.send("SET", key.lock, token, "PX", String(ttlMs), "NX"), (reply) => reply === "OK")
      ),

    releaseLock: (key, token) => bounded("unlock", Effect.asVoid(release(key.lock, token, channel, key.entry))),

    listenForRelease: (key) =>
      Effect.gen(function*() {
        yield* bounded("subscribe", ensureSubscribed)
        // Releases are counted from the moment we listen, so one that lands between a check and the wait still
        // wakes the waiter.
        let released = 0
        let reported = 0
        let wake: (() => void) | undefined
        const listener = () => {
          released++
          wake?.()
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            const set = listeners.get(key.entry) ?? new Set()
            set.add(listener)
            listeners.set(key.entry, set)
          }),
          () =>
            Effect.sync(() => {
              const set = listeners.get(key.entry)
              set?.delete(listener)
              if (set?.size === 0) listeners.delete(key.entry)
            })
        )
        return Effect.callback<void>((resume) => {
          if (released > reported) {
            reported = released
            return resume(Effect.void)
          }
          wake = () => {
            wake = undefined
            reported = released
            resume(Effect.void)
          }
          return Effect.sync(() => {
            wake = undefined
          })
        })
      })
  })
})

/**
 * The Redis store as a layer over the `Redis` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CacheStore, never, Redis.Redis> =>
  Layer.effect(CacheStore, make(options))

const confirmations = Effect.fnUntraced(function*(
  redis: Redis.Redis["Service"],
  cluster: Cluster | undefined,
  confirm: { readonly replicas: number; readonly timeoutMs: number },
  commandTimeoutMs: number
) {
  if (cluster !== undefined) {
    const connections = IoRedisStore.clusterConfirmations(cluster, confirm, commandTimeoutMs)
    yield* Effect.addFinalizer(() => Effect.sync(connections.close))
    return {
      timeoutMs: confirm.timeoutMs,
      drop: (namespace: Keys.NamespaceKeys): Effect.Effect<void, RedisError> =>
        Effect.tryPromise({
          try: () => connections.drop(namespace),
          catch: (cause) => new RedisError({ operation: "invalidateNamespace", cause })
        })
    }
  }
  return {
    timeoutMs: confirm.timeoutMs,
    drop: (namespace: Keys.NamespaceKeys): Effect.Effect<void, RedisError | Redis.RedisError> =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* redis.reserve
        const [command, ...args] = Commands.invalidate(namespace)
        yield* connection.send(command, ...args)
        const [wait, ...waitArgs] = Commands.confirm(confirm.replicas, confirm.timeoutMs)
        const acknowledged = Number(yield* connection.send<number>(wait, ...waitArgs))
        const unconfirmed = Commands.unconfirmed(confirm.replicas, confirm.timeoutMs, acknowledged)
        if (unconfirmed !== undefined) {
          return yield* new RedisError({ operation: "invalidateNamespace", cause: new Error(unconfirmed) })
        }
      }))
  }
})
