/**
 * The in-process store: entries in an LRU bounded by `capacity`, generations beside them, time from Effect's
 * `Clock` (so `TestClock` drives expiry). Each operation runs synchronously, which makes it atomic.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { LRUCache } from "lru-cache"
import { CacheStore } from "../CacheStore.js"

interface Entry {
  readonly generation: string
  readonly payload: string
  readonly graceMs: number
  readonly expiresAt: number
}

interface Generation {
  readonly token: string
  expiresAt: number
}

const sweepPageSize = 1000

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: { readonly capacity: number }): CacheStore["Service"] => {
  const entries = new LRUCache<string, Entry>({ max: options.capacity })
  const generations = new Map<string, Generation>()
  let pruneAt = 1024

  const liveGeneration = (key: string, now: number): Generation | undefined => {
    const generation = generations.get(key)
    if (generation === undefined || generation.expiresAt > now) return generation
    generations.delete(key)
    return undefined
  }

  // Generations of namespaces nobody reads again would otherwise stay forever: drop the expired ones whenever
  // the map has doubled since the last time.
  const setGeneration = (key: string, generation: Generation, now: number) => {
    generations.set(key, generation)
    if (generations.size >= pruneAt) {
      for (const [k, g] of generations) if (g.expiresAt <= now) generations.delete(k)
      pruneAt = Math.max(1024, generations.size * 2)
    }
  }

  return CacheStore.of({
    lookup: (key, create) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const generation = liveGeneration(key.namespace.generation, now)
        if (generation === undefined) {
          if (create === undefined) return { generation: undefined, entry: undefined }
          setGeneration(key.namespace.generation, { token: create.token, expiresAt: now + create.ttlMs }, now)
          return { generation: create.token, entry: undefined }
        }
        const entry = entries.get(key.entry)
        if (entry === undefined || entry.generation !== generation.token) {
          return { generation: generation.token, entry: undefined }
        }
        if (entry.expiresAt <= now) {
          entries.delete(key.entry)
          return { generation: generation.token, entry: undefined }
        }
        return {
          generation: generation.token,
          entry: { payload: entry.payload, graceMs: entry.graceMs, remainingMs: entry.expiresAt - now }
        }
      }),

    write: (key, write) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        let generation = liveGeneration(key.namespace.generation, now)
        if (write.expected !== undefined) {
          if (generation?.token !== write.expected) return false
        } else if (generation === undefined) {
          generation = { token: write.token, expiresAt: now + write.ttlMs }
          setGeneration(key.namespace.generation, generation, now)
        }
        const expiresAt = now + write.ttlMs
        entries.set(key.entry, {
          generation: generation!.token,
          payload: write.payload,
          graceMs: write.graceMs,
          expiresAt
        })
        if (generation!.expiresAt < expiresAt) generation!.expiresAt = expiresAt
        return true
      }),

    remove: (key) => Effect.sync(() => void entries.delete(key.entry)),

    dropGeneration: (namespace) => Effect.sync(() => void generations.delete(namespace.generation)),

    // One process: single flight already makes one resolve per key, so the lock is always free.
    acquireLock: () => Effect.succeed(true),
    releaseLock: () => Effect.void,
    listenForRelease: () => Effect.succeed(Effect.never),

    sweep: (namespace) =>
      Stream.suspend(() => {
        // Like SCAN, the keys are listed up front and each page checks them again against the generation of
        // the moment, so entries written meanwhile under the current generation survive.
        const pages: Array<Array<string>> = []
        let page: Array<string> = []
        for (const key of entries.keys()) {
          if (!key.startsWith(namespace.entryPrefix)) continue
          page.push(key)
          if (page.length === sweepPageSize) {
            pages.push(page)
            page = []
          }
        }
        if (page.length > 0) pages.push(page)
        return Stream.mapEffect(Stream.fromIterable(pages), (keys) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            const current = liveGeneration(namespace.generation, now)?.token
            let removed = 0
            for (const key of keys) {
              const entry = entries.peek(key)
              if (entry === undefined) continue
              // An expired entry is gone already, as far as a reader can tell: drop it but do not count it.
              if (entry.expiresAt <= now) entries.delete(key)
              else if (entry.generation !== current) removed += entries.delete(key) ? 1 : 0
            }
            return removed
          }))
      })
  })
}

/**
 * The memory store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: { readonly capacity: number }): Layer.Layer<CacheStore> =>
  Layer.sync(CacheStore, () => make(options))
