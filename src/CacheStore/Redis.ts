/**
 * The Redis store: each operation is one command or one Lua script (registered once with `defineCommand`), so
 * every generation check happens atomically inside Redis, never as a read-modify-write across round trips.
 *
 * The key layout, the entry envelope and the scripts are the wire package's (`@ledgerlink/response-cache-wire`),
 * shared with the Effect 4 package; this module only speaks them through ioredis.
 *
 * @since 0.1.0
 */
import { Commands, Envelope, Keys, Scripts } from "@ledgerlink/response-cache-wire"
import calculateSlot from "cluster-key-slot"
import type * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Cluster, type ClusterOptions as IORedisClusterOptions, Redis } from "ioredis"
import { readFile } from "node:fs/promises"
import { RedisError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import { CacheStore, type Health, type Lookup } from "../CacheStore.js"
import * as RedisClient from "../internal/redisClient.js"
import * as Warnings from "../internal/warnings.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as NearCache from "./NearCache.js"

/**
 * The scripts as ioredis commands.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScriptCommands {
  rcLookup(generation: string, entry: string, token: string, ttlMs: number): Promise<Array<string | number>>
  rcWrite(
    generation: string,
    entry: string,
    written: string,
    expected: string,
    token: string,
    payload: string,
    ttlMs: number
  ): Promise<number>
  rcSweep(
    generation: string,
    written: string,
    cursor: string,
    pattern: string,
    count: number
  ): Promise<[string, number]>
  rcRelease(lock: string, token: string, channel: string, entry: string): Promise<number>
}

/**
 * A client — one server or a Redis Cluster — with the scripts defined on it. Every script touches the keys of one
 * namespace only, which share a hash tag, so on a cluster each runs on the node that owns that slot.
 *
 * @since 0.1.0
 * @category models
 */
export type ScriptedRedis = (Redis | Cluster) & ScriptCommands

/**
 * Registers the scripts once on a client (ioredis sends EVALSHA and falls back to EVAL after a restart).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defineScripts = (client: Redis | Cluster): ScriptedRedis => {
  client.defineCommand("rcLookup", { numberOfKeys: 2, lua: Scripts.lookup })
  client.defineCommand("rcWrite", { numberOfKeys: 3, lua: Scripts.write })
  client.defineCommand("rcSweep", { numberOfKeys: 2, lua: Scripts.sweep })
  client.defineCommand("rcRelease", { numberOfKeys: 1, lua: Scripts.release })
  return client as ScriptedRedis
}

const isCluster = (client: Redis | Cluster): client is Cluster => "slots" in client && "nodes" in client

/**
 * The primary that owns a namespace's slot, as this cluster client knows it (`client.slots`, updated by the
 * client on MOVED and by its periodic slot refresh).
 */
const slotOwner = (client: Cluster, generationKey: string): Redis => {
  const owner = client.slots[calculateSlot(generationKey)]?.[0]
  const node = client.nodes("master").find((node) => address(node) === owner)
  if (node === undefined) throw new Error(`no cluster node owns the slot of ${generationKey} yet`)
  return node
}

const address = (node: Redis): string => `${node.options.host}:${node.options.port}`

/**
 * A cluster node's own connection with the sweep script defined on it. The script is sent to the node itself
 * rather than through the cluster client: a SCAN cursor means something only on the node that made it, and the
 * cluster client would follow a MOVED or ASK to another node with it.
 */
const withSweepScript = (node: Redis): Redis & Pick<ScriptCommands, "rcSweep"> => {
  if (!("rcSweep" in node)) node.defineCommand("rcSweep", { numberOfKeys: 2, lua: Scripts.sweep })
  return node as Redis & Pick<ScriptCommands, "rcSweep">
}

interface SweepCursor {
  readonly cursor: string
  /** The node the cursor belongs to; undefined before the first page. */
  readonly node: Redis | undefined
}

/** Why a cluster node turned a keyed command away: `MOVED`, `ASK`, `TRYAGAIN`, or undefined for anything else. */
const redirection = (error: unknown): string | undefined => {
  const word = error instanceof Error ? error.message.split(" ", 1)[0] : undefined
  return word === "MOVED" || word === "ASK" || word === "TRYAGAIN" ? word : undefined
}

/**
 * One page of a namespace's sweep: one script call, which SCANs a page on the server (on a cluster, on the primary
 * that owns the namespace's slot) and removes its dead entries there.
 *
 * On a cluster the owner is looked up again for every page, so that a resharding moves the sweep along with the
 * slot: when it answers MOVED (the slot has moved, or its primary failed over), a keyed command through the
 * cluster client makes the client learn the new owner, and the sweep starts over there (a cursor means nothing on
 * another node; what was swept is gone, so starting over only costs a rescan). While the slot is mid-migration
 * and the generation key has already left (ASK), or on TRYAGAIN, the same page is tried again on the same node
 * after the client's `retryDelayOnTryAgain`, like any keyed command. Either way at most `maxRedirections` times
 * per page, as the cluster client does, after which the page fails.
 */
const sweepPage = async (
  client: ScriptedRedis,
  namespace: CacheKey.NamespaceKeys,
  page: SweepCursor
): Promise<{ readonly removed: number; readonly next: SweepCursor }> => {
  const { entryPattern, generation, written } = namespace
  if (!isCluster(client)) {
    const [cursor, removed] = await client.rcSweep(
      generation,
      written,
      page.cursor,
      entryPattern,
      Scripts.sweepPageCount
    )
    return { removed, next: { cursor, node: client } }
  }
  // The first page makes sure the client knows the slot's owner at all (it may never have sent this slot a command).
  if (page.node === undefined) await client.exists(generation)
  return atSlotOwner(client, generation, async (node) => {
    const cursor = node === page.node ? page.cursor : "0"
    const [next, removed] = await withSweepScript(node).rcSweep(
      generation,
      written,
      cursor,
      entryPattern,
      Scripts.sweepPageCount
    )
    return { removed, next: { cursor: next, node } }
  })
}

/**
 * Runs `run` on the primary that owns `key`'s slot, following the cluster when it answers MOVED (ask the cluster
 * client, by a keyed command, to learn the new owner), ASK or TRYAGAIN (the same node again after the client's
 * `retryDelayOnTryAgain`), at most `maxRedirections` times, as the cluster client does.
 */
const atSlotOwner = async <A>(client: Cluster, key: string, run: (node: Redis) => Promise<A>): Promise<A> => {
  for (let attempts = client.options.maxRedirections ?? 16;; attempts--) {
    try {
      return await run(slotOwner(client, key))
    } catch (error) {
      const redirect = redirection(error)
      if (redirect === undefined || attempts <= 1) throw error
      if (redirect === "MOVED") await client.exists(key)
      else await new Promise((resolve) => setTimeout(resolve, client.options.retryDelayOnTryAgain ?? 100))
    }
  }
}

/**
 * How an invalidation is confirmed: `WAIT replicas timeoutMs` after the generation's DEL.
 *
 * @since 0.1.0
 * @category models
 */
export interface Confirmation {
  readonly replicas: number
  readonly timeoutMs: number
}

/**
 * Invalidations confirmed by `WAIT`, each sent as DEL + WAIT in one write over a connection of their own — per
 * primary on a cluster, to the owner of the namespace's slot (found as the sweep finds it). WAIT blocks the
 * connection it runs on until the replicas have acknowledged, and counts only that connection's writes: on the
 * connection hits and misses use, every command would queue behind it, and the count would cover their writes too.
 *
 * A connection that failed or timed out is dropped and opened afresh by the next invalidation: through Sentinel,
 * that asks the sentinels for the current primary, and on a cluster the owner is looked up again, so a failover
 * (even of a primary that hangs rather than dies) moves the invalidations along.
 */
const confirmedInvalidations = (
  client: ScriptedRedis,
  confirm: Confirmation,
  commandTimeoutMs: number,
  events: RedisClient.Events | undefined
) => {
  const connections = new Map<string, Redis>()
  const connectionTo = (node: Redis): Redis => {
    const at = address(node)
    let connection = connections.get(at)
    if (connection === undefined || connection.status === "end") {
      connection = node.duplicate({
        // Connected by its first command, which the offline queue holds meanwhile; every command is still bounded.
        lazyConnect: true,
        enableOfflineQueue: true,
        commandTimeout: commandTimeoutMs + confirm.timeoutMs,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        retryStrategy: () => null
      })
      if (events === undefined) connection.on("error", () => {})
      else RedisClient.watchConnection(connection, events)
      connections.set(at, connection)
    }
    return connection
  }
  const dropOn = async (node: Redis, namespace: CacheKey.NamespaceKeys): Promise<void> => {
    const connection = connectionTo(node)
    try {
      const replies = await connection.pipeline()
        .call(...Commands.invalidate(namespace))
        .call(...Commands.confirm(confirm.replicas, confirm.timeoutMs))
        .exec()
      const [[deleteError], [waitError, acknowledged]] = replies as [[Error | null], [Error | null, number]]
      if (deleteError !== null) throw deleteError
      if (waitError !== null) throw waitError
      const unconfirmed = Commands.unconfirmed(confirm.replicas, confirm.timeoutMs, acknowledged)
      if (unconfirmed !== undefined) throw new Error(unconfirmed)
    } catch (error) {
      // The connection may be stuck behind a WAIT, on a hung primary or on one demoted since: start afresh.
      if (!(error instanceof Error && error.message.startsWith("WAIT "))) {
        connections.delete(address(node))
        connection.disconnect()
      }
      throw error
    }
  }
  return {
    drop: (namespace: CacheKey.NamespaceKeys): Promise<void> => {
      const { generation } = namespace
      return isCluster(client)
        ? (client.slots[calculateSlot(generation)] === undefined ? client.exists(generation) : Promise.resolve(0))
          .then(() => atSlotOwner(client, generation, (node) => dropOn(node, namespace)))
        : dropOn(client, namespace)
    },
    close: () => {
      for (const connection of connections.values()) connection.disconnect()
      connections.clear()
    }
  }
}

/**
 * How often a process waiting for another's resolve under a `lock` policy reads again when it cannot hear the
 * lock's release (the user may not subscribe to the channel).
 */
const lockPollMs = 50

/** `promise`, or a rejection after `ms`. */
const within = <A>(promise: Promise<A>, ms: number): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

const callUncorked = <A>(
  operation: string,
  run: () => Promise<A>,
  client?: Redis | Cluster
): Effect.Effect<A, RedisError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) =>
      new RedisError({ operation, cause: client === undefined ? cause : RedisClient.explain(client, cause) })
  })

/**
 * The store over a client. `channel` carries lock releases; its subscriber connection is opened the first time a
 * process waits on another's resolve, and closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  client: ScriptedRedis,
  options: {
    readonly channel: string
    /** Bound on opening the subscriber connection and subscribing; default 1 second. */
    readonly subscribeTimeoutMs?: number | undefined
    /** Invalidations return once this many replicas have them (`WAIT`), or fail. */
    readonly confirmInvalidation?: Confirmation | undefined
    /** Bound on each command of a confirmed invalidation, besides the WAIT's own timeout; default 500 ms. */
    readonly commandTimeoutMs?: number | undefined
    /** Where the connections this store opens report their failures (default: dropped). */
    readonly events?: RedisClient.Events | undefined
  }
): Effect.Effect<CacheStore.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { channel } = options
    const subscribeTimeoutMs = options.subscribeTimeoutMs ?? 1000
    const listeners = new Map<string, Set<() => void>>()
    let subscriber: Redis | Cluster | undefined
    let subscribed: Promise<unknown> | undefined

    yield* Effect.addFinalizer(() => Effect.sync(() => subscriber?.disconnect()))
    const confirmed = options.confirmInvalidation === undefined
      ? undefined
      : confirmedInvalidations(client, options.confirmInvalidation, options.commandTimeoutMs ?? 500, options.events)
    if (confirmed !== undefined) yield* Effect.addFinalizer(() => Effect.sync(confirmed.close))

    // Commands issued in one turn of the event loop leave in one write: the first corks the socket, and it is
    // uncorked once the loop's I/O callbacks have run (`setImmediate`). The requests a server reads in one poll
    // phase arrive in callbacks of their own, so uncorking a tick later (`process.nextTick`) wrote once per request;
    // now their lookups share one write. (ioredis's auto-pipelining does the like with a Pipeline object per flush,
    // which costs more than a lone command at low concurrency.) A cluster client keeps its own auto-pipelining per
    // node.
    let corked = false
    // The entry lookups (MGETs) not sent yet, by entry key, while the socket is corked: a lookup of the same entry
    // shares the one not sent yet (a stampede's callers cost Redis one command). Only commands not sent yet are
    // shared, and the table is emptied before the socket is uncorked: a shared MGET reaches Redis after anything
    // that had returned when its last caller joined (an invalidation's DEL included, on this connection or
    // another), so it never answers a caller with a read made before that caller started.
    let unsentLookups = new Map<string, Promise<Array<string | null>>>()
    const corkForTurn = isCluster(client) ? () => {} : () => {
      const stream = (client as Redis).stream
      if (corked || stream === undefined) return
      corked = true
      stream.cork()
      setImmediate(() => {
        corked = false
        if (unsentLookups.size > 0) unsentLookups = new Map()
        stream.uncork()
      })
    }
    const call = <A>(operation: string, run: () => Promise<A>) =>
      callUncorked(operation, () => {
        corkForTurn()
        return run()
      }, client)

    // A SUBSCRIBE refused for lack of permission (NOPERM), and until when it is not tried again.
    let refusal: { readonly error: Error; readonly until: number } | undefined
    const ensureSubscribed = call("subscribe", () => {
      if (refusal !== undefined && Date.now() < refusal.until) return Promise.reject(refusal.error)
      if (subscriber === undefined) {
        // A connection of its own (subscribed connections take no other commands); on a cluster, ioredis's
        // cluster subscriber, which follows failovers. PUBLISH reaches every node of a cluster.
        subscriber = isCluster(client)
          ? client.duplicate([], { lazyConnect: true, enableOfflineQueue: true })
          : client.duplicate({ lazyConnect: true, enableOfflineQueue: true })
        if (options.events === undefined) subscriber.on("error", () => {})
        else RedisClient.watchClient(subscriber, options.events)
        subscriber.on("message", (_channel: string, entry: string) => {
          const waiting = listeners.get(entry)
          if (waiting !== undefined) { for (const wake of waiting) wake() }
        })
      }
      const sub = subscriber
      // Bounded: a cluster client that starts connecting while the cluster is down never settles its connect,
      // and every later waiter of this process would wait on it.
      subscribed ??= within(sub.connect().then(() => sub.subscribe(channel)), subscribeTimeoutMs).catch((error) => {
        // Try again on the next wait (after 10 s when refused: an ACL is not fixed in a moment); ioredis
        // resubscribes by itself after later reconnects.
        if (error instanceof Error && /^NOPERM/.test(error.message)) refusal = { error, until: Date.now() + 10_000 }
        subscribed = undefined
        sub.disconnect()
        throw error
      })
      return subscribed
    })

    const store: CacheStore.Service = {
      lookup: (key, create, withGrace) => {
        // Built only when needed: most lookups are answered by the MGET below.
        const scripted = () =>
          Effect.map(
            call(
              "lookup",
              () => client.rcLookup(key.namespace.generation, key.entry, create?.token ?? "", create?.ttlMs ?? 0)
            ),
            Envelope.fromLookupReply
          )
        if (withGrace) return scripted()
        // The hot path: one MGET (atomic, and as cheap for Redis as a GET, where a script costs it twice that)
        // reads the generation and the entry together. Only a missing generation, or an entry with grace, whose
        // time left decides what it is, needs the script.
        // Resumed straight from the reply: this is the hit path, and each Effect step here costs per hit.
        return Effect.async<Lookup, RedisError>((resume) => {
          corkForTurn()
          let reply = corked ? unsentLookups.get(key.entry) : undefined
          if (reply === undefined) {
            reply = client.mget(key.namespace.generation, key.entry)
            if (corked) unsentLookups.set(key.entry, reply)
          }
          reply.then(([generation, value]) => {
            const found = Envelope.fromMget(generation, value)
            resume(found === undefined ? scripted() : Effect.succeed(found))
          }, (cause) =>
            resume(Effect.fail(new RedisError({ operation: "lookup", cause: RedisClient.explain(client, cause) }))))
        })
      },

      write: (key, write) =>
        Effect.map(
          call("write", () =>
            client.rcWrite(
              key.namespace.generation,
              key.entry,
              key.namespace.written,
              write.expected ?? "",
              write.token,
              Envelope.body(write.graceMs, write.payload),
              write.ttlMs
            )),
          (stored) =>
            stored === 1
        ),

      remove: (key) =>
        Effect.asVoid(call("unlink", () => client.unlink(key.entry))),

      // The wire package's invalidation (a DEL of the generation, which Redis accepts even when it is full and
      // refuses writes, noeviction), shared with the Effect 4 package. The next lookup creates a new unique token.
      dropGeneration: (namespace) =>
        confirmed === undefined
          ? Effect.asVoid(call("invalidateNamespace", () => client.call(...Commands.invalidate(namespace))))
          : callUncorked("invalidateNamespace", () => confirmed.drop(namespace)),

      sweep: (namespace) =>
        Stream.paginateEffect({ cursor: "0", node: undefined } as SweepCursor, (page) =>
          Effect.map(
            call("sweep", () => sweepPage(client, namespace, page)),
            ({ next, removed }) => [removed, next.cursor === "0" ? Option.none() : Option.some(next)] as const
          )),

      acquireLock: (key, token, ttlMs) =>
        Effect.map(call("lock", () => client.set(key.lock, token, "PX", ttlMs, "NX")), (reply) => reply === "OK"),

      releaseLock: (key, token) =>
        Effect.asVoid(call("unlock", () => client.rcRelease(key.lock, token, channel, key.entry))),

      listenForRelease: (key) =>
        Effect.gen(function*() {
          // Without the channel permission (NOPERM), no release is ever heard: wake every lockPollMs instead, so
          // the waiter reads again (and tries the lock) rather than resolving at once beside the holder.
          const refused = yield* Effect.catchIf(
            Effect.as(ensureSubscribed, false),
            (error) => error.cause instanceof Error && /^NOPERM/.test(error.cause.message),
            () => Effect.succeed(true)
          )
          if (refused) return Effect.sleep(Duration.millis(lockPollMs))
          // Releases are counted from the moment we listen, so one that lands between a check and the wait
          // still wakes the waiter.
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
          return Effect.async<void>((resume) => {
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
    }
    return store
  })

/**
 * ioredis `RedisOptions` (without `replyMapping`), as the `redis` option takes them.
 *
 * @since 0.1.0
 * @category models
 */
export type IORedisOptions = RedisClient.RedisOptions

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS; default `redis://127.0.0.1:6379` (none
   * with `redis.sentinels`: the sentinels say where the primary is).
   */
  readonly url?: string | Redacted.Redacted | undefined
  /** Default `"rc"`; letters, digits and `._:-` only. Must be the `ResponseCache` layer's prefix. */
  readonly prefix?: string | undefined
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
  /**
   * ioredis options, passed through and merged over what `url` says: `tls` (`ca`, `cert`, `key`, `servername`, …),
   * `sentinels` + `name`, `username`, `password`, `db`, … The settings the cache's guarantees rest on are its own
   * and refused here: `enableOfflineQueue`, `commandTimeout` (use the option above), `maxRetriesPerRequest`,
   * `autoResendUnfulfilledCommands`, `retryStrategy`, `keyPrefix` (use `prefix`).
   */
  readonly redis?: IORedisOptions | undefined
  /**
   * Confirmed invalidation (opt-in): `invalidateNamespace` and `purgeNamespace` return only once `WAIT` reports
   * the invalidation on at least `replicas` replicas (of the namespace's shard, on a cluster) within `timeout`, and
   * fail with `RedisError` (operation `"invalidateNamespace"`) otherwise — the invalidation may then not survive a
   * failover. Sent over a connection of its own, so no hit or miss ever queues behind a WAIT.
   */
  readonly confirmInvalidation?: {
    readonly replicas: number
    readonly timeout: Duration.DurationInput
  } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions extends Omit<Options, "url"> {
  /**
   * Some of the cluster's nodes, e.g. `["redis://10.0.0.1:7000"]`; the rest are discovered. `rediss://` nodes are
   * connected over TLS (every node, discovered ones included); credentials in the first URL apply to every node.
   */
  readonly nodes: ReadonlyArray<string | Redacted.Redacted>
  /** ioredis options for every node connection (`tls`, `username`, `password`, …), checked as for a single server. */
  readonly redis?: IORedisOptions | undefined
  /**
   * ioredis `ClusterOptions`, passed through (`natMap`, `dnsLookup`, `slotsRefreshInterval`, …). `scaleReads`
   * other than `"master"` is refused: a replica may lag behind an invalidation. Node settings go in `redis`.
   */
  readonly cluster?: IORedisClusterOptions | undefined
}

/**
 * TLS material read from files when the layer is built (PEM), for the `…Config` layers.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsFiles {
  /** A CA bundle to trust instead of the system's (a private or self-signed CA). */
  readonly ca?: Config.Config<string> | undefined
  /** A client certificate and its key, for servers that require one (mTLS). */
  readonly cert?: Config.Config<string> | undefined
  readonly key?: Config.Config<string> | undefined
  /** The name the server's certificate must carry, when it is not the host connected to. */
  readonly servername?: Config.Config<string> | undefined
}

/**
 * What the `…Config` layers read from `Config`. The rest of the options are given as values beside them.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  readonly url?: Config.Config<string | Redacted.Redacted> | undefined
  readonly prefix?: Config.Config<string> | undefined
  readonly commandTimeout?: Config.Config<Duration.DurationInput> | undefined
  readonly username?: Config.Config<string> | undefined
  readonly password?: Config.Config<string | Redacted.Redacted> | undefined
  /** `host:port` of each sentinel, e.g. `Config.array(Config.string(), "REDIS_SENTINELS")`. */
  readonly sentinels?: Config.Config<ReadonlyArray<string>> | undefined
  /** The name the sentinels monitor the primary under. */
  readonly name?: Config.Config<string> | undefined
  /** Paths of PEM files; the presence of `tls` turns TLS on. */
  readonly tls?: TlsFiles | undefined
  readonly circuitBreaker?: Options["circuitBreaker"]
  readonly nearCache?: Options["nearCache"]
  /** Further ioredis options, as values; what the `Config`s above say is merged over them. */
  readonly redis?: IORedisOptions | undefined
}

/**
 * `ConfigOptions` for a cluster: `nodes` instead of `url` and sentinels, and the ioredis `cluster` options.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterConfigOptions extends Omit<ConfigOptions, "url" | "sentinels" | "name"> {
  readonly nodes: Config.Config<ReadonlyArray<string | Redacted.Redacted>>
  readonly cluster?: IORedisClusterOptions | undefined
}

/** The store over a client: the Redis store, behind a circuit breaker, with the near-cache if asked for. */
const makeOver = (
  connect: (
    commandTimeout: number,
    events: RedisClient.Events
  ) => Effect.Effect<Redis | Cluster, ConfigError.ConfigError, Scope.Scope>,
  options: Omit<Options, "url">
) =>
  Effect.gen(function*() {
    const prefix = yield* CacheKey.validPrefix(options.prefix ?? "rc")
    const commandTimeout = yield* RedisClient.commandTimeoutMs(options)
    const near = options.nearCache
    if (near !== undefined && (!Number.isSafeInteger(near.capacity) || near.capacity < 1)) {
      return yield* RedisClient.invalid(
        ["nearCache", "capacity"],
        `${near.capacity} is not usable: use a whole number, at least 1`
      )
    }
    const confirm = options.confirmInvalidation
    let confirmInvalidation: Confirmation | undefined
    if (confirm !== undefined) {
      const timeoutMs = Math.ceil(Duration.toMillis(Duration.decode(confirm.timeout)))
      if (!Number.isSafeInteger(confirm.replicas) || confirm.replicas < 1) {
        return yield* RedisClient.invalid(
          ["confirmInvalidation", "replicas"],
          `${confirm.replicas} is not usable: use a whole number of replicas, at least 1`
        )
      }
      // WAIT with a timeout of 0 blocks for ever.
      if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
        return yield* RedisClient.invalid(
          ["confirmInvalidation", "timeout"],
          `${Duration.format(Duration.decode(confirm.timeout))} is not usable: use a finite duration of at least 1 ms`
        )
      }
      confirmInvalidation = { replicas: confirm.replicas, timeoutMs }
    }
    // The instance's warnings: the connections' own failures and notices go there (never to the console), and
    // the engine over this store reports the calls they affect into the same instance.
    const warnings = yield* Warnings.make
    const events: RedisClient.Events = {
      failed: (error) => warnings.warnNow(Warnings.connectionWarning(error, 0)),
      nodeFailed: (error, node) => warnings.warnNow(Warnings.clusterNodeWarning(error, node)),
      notice: (message) =>
        warnings.warnNow({ key: `notice|${message}`, message: `ResponseCache: ${message}`, calls: 0 }),
      recovered: () => warnings.logNow(Effect.logInfo("ResponseCache: the Redis connection is back"))
    }
    const client = defineScripts(yield* connect(commandTimeout, events))
    const store = yield* make(client, {
      channel: Keys.lockReleasedChannel(prefix),
      subscribeTimeoutMs: Math.max(1000, commandTimeout),
      confirmInvalidation,
      commandTimeoutMs: commandTimeout,
      events
    })
    const channels = yield* checkChannels(client, {
      prefix,
      channels: [Keys.lockReleasedChannel(prefix), ...(near === undefined ? [] : [Keys.nearChannel(prefix)])],
      nearCache: near !== undefined,
      commandTimeout,
      warnings
    })
    const health: Effect.Effect<Health> = Effect.sync(() => {
      if (client.status !== "ready") {
        const failure = RedisClient.lastFailure(client)
        return {
          status: "degraded",
          reason: failure === undefined
            ? `the Redis connection is not ready (${client.status})`
            : `the Redis connection failed: ${Warnings.describe(failure)}`
        }
      }
      const refused = channels.refused()
      return refused === undefined ? { status: "ok" } : { status: "degraded", reason: refused }
    })
    const guarded = CircuitBreaker.make({ ...store, health }, {
      failures: options.circuitBreaker?.failures ?? 5,
      cooldownMs: Duration.toMillis(Duration.decode(options.circuitBreaker?.cooldown ?? Duration.seconds(1)))
    })
    if (near === undefined) return Warnings.attach(guarded, warnings)
    return Warnings.attach(
      yield* NearCache.make(guarded, client, {
        capacity: near.capacity,
        ttlMs: Duration.toMillis(Duration.decode(near.ttl)),
        channel: Keys.nearChannel(prefix),
        events
      }),
      warnings
    )
  })

/**
 * Whether the connection's user may use the cache's pub/sub channels (a `PUBLISH` of an empty message on each,
 * which every listener ignores: Redis checks the same channel permission for PUBLISH and SUBSCRIBE). Checked when
 * the layer is built if Redis is ready by then, and whenever the connection is (again) ready. A refusal is warned of once, naming the ACL
 * rule to add and what is lost without it, and kept for health checks.
 */
const checkChannels = (
  client: Redis | Cluster,
  options: {
    readonly prefix: string
    readonly channels: ReadonlyArray<string>
    readonly nearCache: boolean
    readonly commandTimeout: number
    readonly warnings: Warnings.Warnings
  }
): Effect.Effect<{ readonly refused: () => string | undefined }, never, Scope.Scope> =>
  Effect.gen(function*() {
    let refused: string | undefined
    const check = (): Promise<void> =>
      within(Promise.all(options.channels.map((channel) => client.publish(channel, ""))), options.commandTimeout)
        .then(() => {
          refused = undefined
        }, (error: unknown) => {
          if (!(error instanceof Error) || !/^NOPERM/.test(error.message)) return
          const rule = /channel/i.test(error.message) ? `&${options.prefix}:*` : "+publish +subscribe"
          refused = `Redis refused the cache's user its pub/sub channels ${options.channels.join(", ")} ` +
            `(${error.message}). Add the ACL rule ${rule} to the user (ACL SETUSER <user> ${rule}). Without it, ` +
            (options.nearCache
              ? "the near-cache is off (every read goes to Redis; no near entry is ever served), and "
              : "") +
            "a process waiting for another's resolve under a `lock` policy polls for its value every " +
            `${lockPollMs} ms instead of being woken`
          options.warnings.warnNow({ key: "channels", message: `ResponseCache: ${refused}`, calls: 0 })
        })
    // Checked again on every (re)connection: an ACL fixed meanwhile clears it (a refusal is warned of once a minute).
    const onReady = () => {
      void check()
    }
    client.on("ready", onReady)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.off("ready", onReady)))
    if (client.status === "ready") yield* Effect.promise(check)
    return { refused: () => refused }
  })

/**
 * The store on one Redis server (or the primary a set of sentinels names). Building it never fails because Redis
 * is unreachable: the client connects and reconnects in the background, and every command is bounded by
 * `commandTimeout`. An unusable setting fails it with `ConfigError.InvalidData` at that setting. The client is
 * closed when the layer's scope ends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.scoped(
    CacheStore,
    makeOver(
      (commandTimeout, events) =>
        Effect.flatMap(RedisClient.singleOptions(options, commandTimeout), (redisOptions) =>
          // No auto-pipelining: the store batches the commands of one event-loop turn into one write itself, more
          // cheaply.
          RedisClient.acquire(() => new Redis(redisOptions), {
            commandTimeout,
            events,
            dbPath: options.redis?.db !== undefined ? ["redis", "db"] : ["url"]
          })),
      options
    )
  )

/** Reads a PEM file named by a setting; a file that cannot be read is InvalidData at `tls.<field>`. */
const readPem = (field: string, path: string) =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) =>
      ConfigError.InvalidData(["tls", field], `tls.${field}: cannot read ${path}: ${(error as Error).message}`)
  })

/** The values of the `Config`s of `ConfigOptions`, as `Options`. */
const fromConfig = (
  options: Omit<ConfigOptions, "url" | "sentinels" | "name"> & Pick<ConfigOptions, "sentinels" | "name">
) =>
  Effect.gen(function*() {
    const read = <A>(config: Config.Config<A> | undefined) => config === undefined ? Effect.succeed(undefined) : config
    const redis: Record<string, unknown> = { ...options.redis }
    const username = yield* read(options.username)
    if (username !== undefined) redis.username = username
    const password = yield* read(options.password)
    if (password !== undefined) redis.password = RedisClient.reveal(password)
    const name = yield* read(options.name)
    if (name !== undefined) redis.name = name
    const sentinels = yield* read(options.sentinels)
    if (sentinels !== undefined) {
      redis.sentinels = yield* Effect.forEach(sentinels, (address, i) => {
        const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address.trim())
        const port = Number(match?.[2])
        return match === null || port < 1 || port > 65535
          ? RedisClient.invalid(["sentinels", i], `${JSON.stringify(address)} is not host:port`)
          : Effect.succeed({ host: match[1]!, port })
      })
    }
    if (options.tls !== undefined) {
      const tls: Record<string, unknown> = { ...(options.redis?.tls as object | undefined) }
      for (const field of ["ca", "cert", "key"] as const) {
        const path = yield* read(options.tls[field])
        if (path !== undefined) tls[field] = yield* readPem(field, path)
      }
      const servername = yield* read(options.tls.servername)
      if (servername !== undefined) tls.servername = servername
      redis.tls = tls
    }
    return {
      prefix: yield* read(options.prefix),
      commandTimeout: yield* read(options.commandTimeout),
      circuitBreaker: options.circuitBreaker,
      nearCache: options.nearCache,
      redis: redis as IORedisOptions
    }
  })

/**
 * `layer` with its settings read from `Config` (the application names the variables): the URL, credentials,
 * sentinels, TLS files, prefix, commandTimeout.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: ConfigOptions): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(readConfig(options), layer))

/**
 * Reads the `Config`s of `ConfigOptions`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readConfig = (options: ConfigOptions): Effect.Effect<Options, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const url = options.url === undefined ? undefined : yield* options.url
    return { ...(yield* fromConfig(options)), url }
  })

/**
 * Reads the `Config`s of `ClusterConfigOptions`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readClusterConfig = (
  options: ClusterConfigOptions
): Effect.Effect<ClusterOptions, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const nodes = yield* options.nodes
    return { ...(yield* fromConfig(options)), nodes, cluster: options.cluster }
  })

/**
 * The store on a Redis Cluster, with every guarantee of `layer`. A namespace's keys share one hash tag, so each
 * namespace lives in one slot (on one shard) and every script runs on one node.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.scoped(
    CacheStore,
    makeOver(
      (commandTimeout, events) =>
        Effect.gen(function*() {
          const { nodes, redisOptions } = yield* RedisClient.clusterNodes(options, commandTimeout)
          const own = yield* RedisClient.checkClusterOptions(options.cluster)
          return yield* RedisClient.acquire(() =>
            new Cluster(nodes, {
              enableAutoPipelining: true,
              // A primary that hangs (rather than dies) neither closes its connection nor answers MOVED, so nothing
              // would tell the client that its replica took over: caching of its slots would stay off until it
              // woke. Ask the cluster for its slot map every second instead (one CLUSTER SLOTS, skipping a hung
              // node).
              slotsRefreshInterval: 1000,
              slotsRefreshTimeout: commandTimeout,
              ...own,
              enableOfflineQueue: false,
              // While a primary is down (until its replica is promoted), ioredis would retry a command every 100 ms
              // up to 16 times before it reaches any node, so outside `commandTimeout` (1.7 s per call, measured).
              // Fail at once instead: the breaker and fail-open answer meanwhile, and the next command's MOVED
              // from a live node points the client at the new primary.
              retryDelayOnFailover: 0,
              retryDelayOnClusterDown: 0,
              // TRYAGAIN (a script whose keys a slot migration has split) is retried with fresh commands, so
              // commandTimeout does not bound it either: space the (at most 16) retries to fit in commandTimeout,
              // which gives a migrating batch of keys that long to land.
              retryDelayOnTryAgain: Math.max(1, Math.floor(commandTimeout / 16)),
              clusterRetryStrategy: (attempt) => Math.min(25 * 2 ** attempt, 1000),
              redisOptions
            }), { commandTimeout, events })
        }),
      options
    )
  )

/**
 * `layerCluster` with its settings read from `Config`: the nodes, credentials, TLS files, prefix, commandTimeout.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  options: ClusterConfigOptions
): Layer.Layer<CacheStore, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(readClusterConfig(options), layerCluster))
