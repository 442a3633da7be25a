/**
 * A near-cache: an in-process LRU in front of the Redis store, so a hot entry is answered without a round trip. It
 * is kept coherent across processes — of this package and of the Effect 3 package alike — over Redis pub/sub, on
 * the wire package's channel and messages: every namespace invalidation, `set` and `invalidate` publishes what it
 * changed, and every process drops those local entries when the message arrives. The window in which another
 * process may still serve an invalidated entry is the pub/sub delivery time. Until its subscription is confirmed,
 * and from the moment its subscriber loses the connection (it may have missed messages) until it has resubscribed,
 * a process serves nothing from its near-cache and empties it.
 *
 * That last rule needs the subscriber's connection events, which Effect's `Redis` service does not expose (its Node
 * providers resubscribe after a reconnect silently: what was published meanwhile is simply never delivered). So
 * the near-cache runs on the ioredis client of this package's `IoRedis` layers, with a subscriber connection of its
 * own, and `ResponseCache.layerRedis` refuses `nearCache` over any other provider of `Redis`.
 *
 * Only entries without grace are kept near: an entry in a stale window is judged by the time Redis says it has
 * left, which only Redis can tell. A near entry never outlives the time Redis gave it.
 *
 * @since 0.1.0
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Cluster, Redis } from "ioredis"
import { LRUCache } from "lru-cache"
import type { CacheKey } from "../CacheKey.js"
import { CacheStore, type Lookup } from "../CacheStore.js"
import { isCluster } from "../internal/ioredisStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly capacity: number
  readonly ttlMs: number
  /** The pub/sub channel of the layer's prefix (`Keys.nearChannel`). */
  readonly channel: string
  /** How long building the layer waits for the first subscription (it never fails for want of it). */
  readonly subscribeTimeoutMs: number
}

/**
 * What the near-cache holds of one namespace: dropping the namespace bumps `epoch`, which makes every near entry of
 * it stale at once, whatever their number (they go when next looked at, or evicted).
 */
interface NamespaceState {
  readonly namespace: string
  epoch: number
  entries: number
}

interface Near {
  readonly namespace: NamespaceState
  readonly namespaceEpoch: number
  readonly generation: string
  readonly payload: string
  readonly expiresAt: number
}

/**
 * The near-cache in front of `store`, its subscriber a connection of its own duplicated from `client`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  store: CacheStore["Service"],
  client: Redis | Cluster,
  options: Options
) {
  const namespaces = new Map<string, NamespaceState>()
  const entries = new LRUCache<string, Near>({
    max: options.capacity,
    dispose: (near) => {
      if (--near.namespace.entries === 0 && namespaces.get(near.namespace.namespace) === near.namespace) {
        namespaces.delete(near.namespace.namespace)
      }
    }
  })
  let coherent = false
  // Bumped by every drop: a lookup that was on the wire when something was dropped may carry what was just
  // invalidated, so its answer is not remembered.
  let epoch = 0

  const drop = (entry: string) => {
    epoch++
    entries.delete(entry)
  }
  // O(1) whatever the namespace's size: invalidation must stay visible at once.
  const dropNamespace = (namespace: string) => {
    epoch++
    const state = namespaces.get(namespace)
    if (state !== undefined) state.epoch++
  }
  const forgetAll = () => {
    epoch++
    coherent = false
    entries.clear()
  }

  const subscriber = yield* Effect.acquireRelease(
    Effect.sync(() => {
      // An offline queue of its own, so its SUBSCRIBE waits for the connection (the client's settings have none).
      const subscriber = isCluster(client)
        ? client.duplicate([], { enableOfflineQueue: true })
        : client.duplicate({ enableOfflineQueue: true })
      subscriber.on("error", () => {})
      subscriber.on("message", (_channel: string, message: string) => {
        const changed = Keys.parseNearMessage(message)
        if (changed._tag === "Namespace") dropNamespace(changed.generation)
        else drop(changed.entry)
      })
      // A subscriber that lost its connection may have missed messages: nothing near is trusted until it is back.
      subscriber.on("close", forgetAll)
      return subscriber
    }),
    (subscriber) =>
      Effect.sync(() => {
        forgetAll()
        subscriber.disconnect()
      })
  )
  // "ready" comes before ioredis has (re)subscribed: nothing near is trusted until a SUBSCRIBE of ours is
  // confirmed, and lookups already on the wire by then are not remembered (the epoch moves on).
  const confirm = () =>
    subscriber.subscribe(options.channel).then(() => {
      if (subscriber.status === "ready") {
        epoch++
        coherent = true
      }
    }, forgetAll)
  let subscribed = confirm()
  subscriber.on("ready", () => {
    subscribed = confirm()
  })
  // Like the client, the near-cache must not hold up the layer while Redis is down.
  yield* Effect.promise(() => subscribed).pipe(Effect.timeoutOption(options.subscribeTimeoutMs))

  // Best effort and bounded (the client's commandTimeout): a process that misses it keeps its near entry at most
  // its near ttl, as when a message is lost.
  const publish = (message: string) => Effect.promise(() => client.publish(options.channel, message).catch(() => 0))

  const remember = (key: CacheKey, lookup: Lookup, now: number, since: number) => {
    const entry = lookup.entry
    if (
      !coherent || since !== epoch || entry === undefined || entry.graceMs > 0 || lookup.generation === undefined
    ) return
    let namespace = namespaces.get(key.namespace.generation)
    if (namespace === undefined) {
      namespace = { namespace: key.namespace.generation, epoch: 0, entries: 0 }
      namespaces.set(key.namespace.generation, namespace)
    }
    namespace.entries++
    entries.set(key.entry, {
      namespace,
      namespaceEpoch: namespace.epoch,
      generation: lookup.generation,
      payload: entry.payload,
      expiresAt: now + Math.min(options.ttlMs, entry.remainingMs)
    })
  }

  /** The near entry of a key, if it is still one to answer with. */
  const nearLookup = (key: CacheKey, now: number): Lookup | undefined => {
    const found = coherent ? entries.get(key.entry) : undefined
    if (found === undefined) return undefined
    if (found.expiresAt <= now || found.namespaceEpoch !== found.namespace.epoch) {
      entries.delete(key.entry)
      return undefined
    }
    return {
      generation: found.generation,
      entry: { payload: found.payload, graceMs: 0, remainingMs: found.expiresAt - now }
    }
  }

  return CacheStore.of({
    ...store,
    lookup: (key, create) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const near = nearLookup(key, now)
        if (near !== undefined) return Effect.succeed(near)
        const since = epoch
        // Always with the time left (the store's script, not its MGET): a near entry must not outlive the Redis
        // entry it copies, since a later write of the same key after expiry publishes nothing.
        return Effect.flatMap(store.lookup(key, create, true), (lookup) =>
          Effect.map(Clock.currentTimeMillis, (later) => {
            remember(key, lookup, later, since)
            return lookup
          }))
      }),
    // A write replaces what this process may hold near (a miss's resolve overwriting an entry that did not decode,
    // say): dropped here at once. Other processes hear of a `set` (no expected generation); a resolve's write
    // under the generation it read only replaces an entry that had expired — their near copy never outlives that —
    // or one that did not decode for the writer.
    write: (key, write) =>
      Effect.tap(store.write(key, write), () =>
        write.expected === undefined
          ? Effect.andThen(
            Effect.sync(() => drop(key.entry)),
            publish(Keys.nearMessage({ _tag: "Entry", entry: key.entry }))
          )
          : Effect.sync(() => drop(key.entry))),
    remove: (key) =>
      Effect.andThen(
        store.remove(key),
        Effect.andThen(
          Effect.sync(() => drop(key.entry)),
          publish(Keys.nearMessage({ _tag: "Entry", entry: key.entry }))
        )
      ),
    dropGeneration: (namespace) =>
      Effect.suspend(() => {
        // Dropped first too, in the step that sends the invalidation: from now on this process reads the namespace
        // from Redis. Dropped again once Redis has it, for what lookups on the wire meanwhile brought back. The
        // message names the generation key, as the Effect 3 package's does.
        dropNamespace(namespace.generation)
        return Effect.andThen(
          store.dropGeneration(namespace),
          Effect.andThen(
            Effect.sync(() => dropNamespace(namespace.generation)),
            publish(Keys.nearMessage({ _tag: "Namespace", generation: namespace.generation }))
          )
        )
      })
  })
})
