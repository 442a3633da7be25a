import { assert, describe, inject, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Cluster } from "ioredis"
import { ResponseCache } from "../src/index.js"
import { conformance, probe, uniqueName } from "./conformance.js"

const nodes = inject("redisClusterNodes")

/** A cluster client of the test's own, to look at what the cache wrote. */
const inspector = Effect.acquireRelease(
  Effect.sync(() => new Cluster(nodes)),
  (client) => Effect.promise(() => client.quit())
)

// The cluster layer: Effect's Redis service over an ioredis Cluster, every script on the owner of its namespace's slot.
conformance({
  name: "redis cluster via ioredis",
  live: true,
  advance: (ms) => Effect.sleep(ms),
  layer: (options) => ResponseCache.layerRedisCluster({ nodes, ...options }),
  expectLifetime: ({ entryKey, jitter, lookup, ttlMs }) =>
    Effect.scoped(Effect.gen(function*() {
      const client = yield* inspector
      assert.strictEqual((yield* lookup).outcome, "miss")
      const pttl = yield* Effect.promise(() => client.pttl(entryKey))
      assert.isAtMost(pttl, ttlMs)
      assert.isAtLeast(pttl, Math.floor(ttlMs * (1 - jitter)) - 1000)
      assert.strictEqual((yield* lookup).outcome, "hit")
    }))
})

describe("redis cluster layer (Effect 4)", () => {
  it.live("namespaces on every shard: each purge finds its entries on the node that owns its slot", () =>
    Effect.gen(function*() {
      const { cacheable } = probe()
      // Enough tenants that their slots fall on all three primaries.
      const tenants = Array.from({ length: 12 }, (_, i) => `c${i}`)
      for (const tenant of tenants) {
        for (const n of [1, 2]) yield* ResponseCache.getOrResolve(cacheable, { tenant, n })
      }
      for (const tenant of tenants) {
        yield* ResponseCache.invalidateNamespace(`tenant:${tenant}:v1`)
        assert.strictEqual(yield* Stream.runSum(ResponseCache.sweepNamespace(`tenant:${tenant}:v1`)), 2, tenant)
        assert.strictEqual((yield* ResponseCache.getOrResolveWithOutcome(cacheable, { tenant, n: 1 })).outcome, "miss")
      }
    }).pipe(Effect.provide(ResponseCache.layerRedisCluster({ nodes, prefix: uniqueName("shards") }))))
})
