// The README's "Install" example, kept here so `npm run typecheck` checks it against the source.
import * as Layer from "effect/Layer"
import * as MemoryStore from "../src/CacheStore/Memory.js"
import * as RedisStore from "../src/CacheStore/Redis.js"
import { ResponseCache } from "../src/index.js"

export const CacheLive = ResponseCache.layer({ prefix: "rc" }).pipe(
  Layer.provide(RedisStore.layer({ url: "redis://127.0.0.1:6379" }))
)
export const CacheMemory = ResponseCache.layer({ prefix: "rc" }).pipe(
  Layer.provide(MemoryStore.layer({ capacity: 10_000 }))
)
