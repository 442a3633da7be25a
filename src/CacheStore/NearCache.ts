/**
 * A near-cache: an in-process LRU in front of a Redis store, so a hot entry is answered without a round trip
 * (through the store's synchronous `lookupNow`). It is kept coherent across processes over Redis pub/sub: every
 * namespace invalidation, `set` and `invalidate` publishes what it changed, and every process drops those local
 * entries when the message arrives. The window in which another process may still serve an invalidated entry is
 * the pub/sub delivery time (sub-millisecond on loopback). Until its subscription is confirmed, and from the moment
 * its subscriber loses the connection (it may have missed messages) until it has resubscribed, a process serves
 * nothing from its near-cache and empties it.
 *
 * Only entries without grace are kept near: an entry in a stale window is judged by the time Redis says it has
 * left, which only Redis can tell. A near entry never outlives the time Redis gave it.
 *
 * @since 0.1.0
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import { LRUCache } from "lru-cache"
import type { CacheKey } from "../CacheKey.js"
import type { CacheStore, Lookup } from "../CacheStore.js"
import * as RedisClient from "../internal/redisClient.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly capacity: number
  readonly ttlMs: number
  /** The pub/sub channel of the layer's prefix. */
  readonly channel: string
  /** Where the subscriber connection reports its failures (default: dropped). */
  readonly events?: RedisClient.Events | undefined
}

/**
 * What the near-cache holds of one namespace: dropping the namespace bumps `epoch`, which makes every near entry of
 * it stale at once, whatever their number (they go when next looked at, or evicted). The record lives as long as
 * the namespace has near entries, so a fresh one can start again at 0.
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
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  store: CacheStore.Service,
  client: Redis | Cluster,
  options: Options
): Effect.Effect<CacheStore.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
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

    const subscriber = "slots" in client
      ? (client as Cluster).duplicate([], { enableOfflineQueue: true })
      : (client as Redis).duplicate({ enableOfflineQueue: true })
    if (options.events === undefined) subscriber.on("error", () => {})
    else RedisClient.watchClient(subscriber, options.events)
    subscriber.on("message", (_channel: string, message: string) => {
      const changed = Keys.parseNearMessage(message)
      if (changed._tag === "Namespace") dropNamespace(changed.generation)
      else drop(changed.entry)
    })
    // A subscriber that lost its connection may have missed messages: nothing near is trusted until it is back.
    subscriber.on("close", forgetAll)
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
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        forgetAll()
        subscriber.disconnect()
      })
    )
    // Like the client, the near-cache must not hold up the layer while Redis is down.
    yield* Effect.promise(() => subscribed).pipe(Effect.timeoutOption("500 millis"))

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

    const near: CacheStore.Service = {
      ...store,
      lookupNow: (key, now) => {
        const found = coherent ? entries.get(key.entry) : undefined
        if (found === undefined) return { generation: undefined, entry: undefined }
        if (found.expiresAt <= now || found.namespaceEpoch !== found.namespace.epoch) {
          entries.delete(key.entry)
          return { generation: undefined, entry: undefined }
        }
        return {
          generation: found.generation,
          entry: { payload: found.payload, graceMs: 0, remainingMs: found.expiresAt - now }
        }
      },
      lookup: (key, create) =>
        Effect.suspend(() => {
          const since = epoch
          // Always with the time left (the store's script, not its MGET): a near entry must not outlive the
          // Redis entry it copies, since a later write of the same key after expiry publishes nothing.
          return Effect.flatMap(store.lookup(key, create, true), (lookup) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              remember(key, lookup, now, since)
              return lookup
            }))
        }),
      write: (key, write) =>
        Effect.tap(store.write(key, write), () =>
          write.expected === undefined
            ? Effect.zipRight(
              Effect.sync(() => drop(key.entry)),
              publish(Keys.nearMessage({ _tag: "Entry", entry: key.entry }))
            )
            : Effect.void),
      remove: (key) =>
        Effect.zipRight(
          store.remove(key),
          Effect.zipRight(
            Effect.sync(() => drop(key.entry)),
            publish(Keys.nearMessage({ _tag: "Entry", entry: key.entry }))
          )
        ),
      dropGeneration: (namespace) =>
        Effect.suspend(() => {
          // Dropped first too, in the step that sends the invalidation: from now on this process reads the
          // namespace from Redis. Dropped again once Redis has it (and, with `confirmInvalidation`, its replicas:
          // then it went over a connection of its own, which lookups on the shared one may overtake), for what
          // lookups on the wire meanwhile brought back. The message names the generation key, deleted or not.
          dropNamespace(namespace.generation)
          return Effect.zipRight(
            store.dropGeneration(namespace),
            Effect.zipRight(
              Effect.sync(() => dropNamespace(namespace.generation)),
              publish(Keys.nearMessage({ _tag: "Namespace", generation: namespace.generation }))
            )
          )
        })
    }
    return near
  })
