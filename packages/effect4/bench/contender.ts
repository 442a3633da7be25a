/**
 * The Effect 4 package as a contender of the repository's benchmark (`bench/contenders/effect4.ts` at the root
 * lists it). The benchmark itself runs on Effect 3, so this side starts its own Effect 4 runtime and is called
 * through `runPromise` per call — the Promise boundary a non-Effect caller pays (compare it with the Effect 3
 * package's "runPromise per call" row).
 */
import { NodeRedis } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Cacheable, CachePolicy, IoRedis, ResponseCache } from "../src/index.js"

/** The benchmark's snapshot, in Schema 4 (the same shape as `bench/Origin.ts`'s). */
const Snapshot = Schema.Struct({
  tenant: Schema.String,
  account: Schema.String,
  id: Schema.Number,
  version: Schema.Number,
  currency: Schema.String,
  balance: Schema.String,
  available: Schema.String,
  updatedAt: Schema.String,
  lines: Schema.Array(Schema.Struct({ date: Schema.String, amount: Schema.String, memo: Schema.String }))
})
type Snapshot = typeof Snapshot.Type

export interface Env {
  readonly url: string
  readonly prefix: string
  readonly ttlMs: number
  readonly origin: {
    readonly resolve: (ns: string, id: number) => unknown
    readonly version: (ns: string) => number
  }
}

export type Backend = "memory" | "noderedis" | "ioredis"

const layerOf = (env: Env, backend: Backend): Layer.Layer<ResponseCache.ResponseCache, unknown> => {
  switch (backend) {
    case "memory":
      return ResponseCache.layerMemory({ prefix: env.prefix, capacity: 10_000 })
    case "noderedis":
      return ResponseCache.layerRedis({ prefix: env.prefix }).pipe(Layer.provide(NodeRedis.layer({ url: env.url })))
    case "ioredis":
      return ResponseCache.layerRedis({ prefix: env.prefix }).pipe(Layer.provide(IoRedis.layer({ url: env.url })))
  }
}

/** Starts the cache on `backend`; the benchmark's `Instance`, Promise side only. */
export const start = async (env: Env, backend: Backend) => {
  const runtime = ManagedRuntime.make(layerOf(env, backend))
  await runtime.runPromise(ResponseCache.ResponseCache.useSync(() => undefined))
  const snapshots = Cacheable.make({
    name: "bench.snapshot.v1",
    query: Schema.Struct({ ns: Schema.String, id: Schema.Number }),
    response: Snapshot,
    namespace: (query) => query.ns,
    policy: CachePolicy.make({ ttl: env.ttlMs }),
    resolve: (query) =>
      Effect.suspend(() => {
        const value = env.origin.resolve(query.ns, query.id) as Snapshot | Promise<Snapshot>
        return value instanceof Promise ? Effect.promise(() => value) : Effect.succeed(value)
      })
  })
  return {
    get: (ns: string, id: number): Promise<Snapshot> =>
      runtime.runPromise(ResponseCache.getOrResolve(snapshots, { ns, id })),
    invalidateNamespace: (ns: string) => runtime.runPromise(ResponseCache.invalidateNamespace(ns)),
    purgeNamespace: (ns: string) => runtime.runPromise(Effect.asVoid(ResponseCache.purgeNamespace(ns))),
    inFlight: () => runtime.runPromise(ResponseCache.ResponseCache.use((cache) => cache.inFlight)),
    close: () => runtime.dispose()
  }
}
