/**
 * Confirmed invalidation through failovers, on servers of this file's own: a Sentinel topology (primary, replica,
 * three sentinels) and a Redis Cluster, the primary SIGKILLed and SIGSTOPped under load (test/support/
 * failoverChaos.ts). With `confirmInvalidation`, no read that started after an invalidation returned answers
 * anything older (0 stale reads in every run); the cache without it runs beside it, and its counts are printed.
 * `npm run chaos:failover` runs many of these.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { Cacheable, CacheKey, CachePolicy, ResponseCache } from "../src/index.js"
import {
  chaosRun,
  type Fault,
  startClusterTopology,
  startSentinelTopology,
  type Topology,
  TopologyDidNotRecover
} from "./support/failoverChaos.js"
import { startRedisServer } from "./support/redisServer.js"

/** A describe block's servers, started once and replaced when a run finds they did not recover. */
const servers = (start: () => Promise<Topology>) => {
  let current: Topology | undefined
  return {
    start: async () => {
      current = await start()
    },
    current: () => current!,
    restart: async () => {
      await current?.stop()
      current = undefined
      current = await start()
    },
    stop: async () => {
      await current?.stop()
    }
  }
}

const check = (topology: ReturnType<typeof servers>, how: Fault) =>
  Effect.gen(function*() {
    let counts: Effect.Effect.Success<ReturnType<typeof chaosRun>>
    for (let attempt = 1;; attempt++) {
      const exit = yield* Effect.exit(chaosRun(topology.current(), how, `${how}${Date.now().toString(36)}`))
      if (Exit.isSuccess(exit)) {
        counts = exit.value
        break
      }
      // Sentinel or the cluster did not settle on a loaded machine (seen in CI: an old primary that never came back
      // as a replica): that run tells nothing about the cache. Run again on fresh servers, as `chaos:failover` does.
      const defect = Cause.dieOption(exit.cause)
      if (attempt < 3 && Option.isSome(defect) && defect.value instanceof TopologyDidNotRecover) {
        console.log(`failover chaos ${topology.current().name} ${how}: not counted, ${defect.value.message}; again`)
        yield* Effect.promise(topology.restart)
        continue
      }
      return yield* Effect.failCause(exit.cause)
    }
    const { confirmed, unconfirmed } = counts
    console.log(
      `failover chaos ${topology.current().name} ${how}: confirmed ${JSON.stringify(confirmed)}; unconfirmed ${
        JSON.stringify(unconfirmed)
      }`
    )
    assert.strictEqual(confirmed.stale, 0)
    // The run exercised the guarantee: invalidations were confirmed, and reads followed them.
    assert.isAbove(confirmed.invalidations - confirmed.invalidationsFailed, 0)
    assert.isAbove(confirmed.readsAfterInvalidation, 0)
  })

describe("confirmed invalidation through a Sentinel failover", () => {
  const topology = servers(startSentinelTopology)
  beforeAll(topology.start, 30_000)
  afterAll(topology.stop)

  it.live(
    "primary SIGKILLed under load: 0 stale reads after a confirmed invalidation",
    () => check(topology, "kill"),
    180_000
  )
  it.live(
    "primary SIGSTOPped under load: 0 stale reads after a confirmed invalidation",
    () => check(topology, "stop"),
    180_000
  )
})

describe("confirmed invalidation through a cluster failover", () => {
  const topology = servers(startClusterTopology)
  beforeAll(topology.start, 60_000)
  afterAll(topology.stop)

  // The frozen primary first (it comes back as a replica); the killed one stays down.
  it.live(
    "primary SIGSTOPped under load: 0 stale reads after a confirmed invalidation",
    () => check(topology, "stop"),
    180_000
  )
  it.live(
    "primary SIGKILLed under load: 0 stale reads after a confirmed invalidation",
    () => check(topology, "kill"),
    180_000
  )
})

describe("confirmInvalidation on a primary and its replica", () => {
  const cacheable = Cacheable.make({
    name: "confirm",
    query: Schema.Struct({ n: Schema.Number }),
    response: Schema.Number,
    namespace: () => "tenant:confirm",
    policy: CachePolicy.make({ ttl: "1 minute" }),
    resolve: (query) => Effect.succeed(query.n)
  })
  const servers = Effect.acquireRelease(
    Effect.promise(async () => {
      const primary = await startRedisServer({ args: ["--repl-diskless-sync-delay", "0"] })
      const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] })
      return { primary, replica }
    }),
    ({ primary, replica }) => Effect.promise(() => Promise.all([replica.stop(), primary.stop()]))
  )
  const client = (url: string) =>
    Effect.acquireRelease(Effect.sync(() => new Redis(url)), (client) => Effect.promise(() => client.quit()))
  const cacheOn = (url: string, timeout: Duration.DurationInput) =>
    Effect.map(
      Layer.build(ResponseCache.layerRedis({ url, prefix: "confirm", confirmInvalidation: { replicas: 1, timeout } })),
      (context) => Context.get(context, ResponseCache.ResponseCache)
    )

  it.live(
    "an invalidation returns once the replica has it; without a replica it fails, naming WAIT",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { primary, replica } = yield* servers
        const cache = yield* cacheOn(primary.url, "2 seconds")
        const onReplica = yield* client(replica.url)
        const generation = CacheKey.namespaceKeys("confirm", "tenant:confirm").generation
        yield* cache.getOrResolve(cacheable, { n: 1 })
        // Wait for the generation to reach the replica, so that its absence afterwards is the invalidation's doing.
        while ((yield* Effect.promise(() => onReplica.get(generation))) === null) yield* Effect.sleep("5 millis")
        yield* cache.invalidateNamespace("tenant:confirm")
        // Returned: the replica has the invalidation already.
        assert.isNull(yield* Effect.promise(() => onReplica.get(generation)))

        // Now with no replica to acknowledge.
        yield* Effect.promise(() => onReplica.replicaof("NO", "ONE"))
        const alone = yield* cacheOn(primary.url, "100 millis")
        const error = yield* Effect.flip(alone.invalidateNamespace("tenant:confirm"))
        assert.strictEqual(error._tag, "RedisError")
        assert.strictEqual(error._tag === "RedisError" ? error.operation : undefined, "invalidateNamespace")
        assert.match(error.message, /0 of 1 replicas acknowledged/)
        const purge = yield* Effect.flip(alone.purgeNamespace("tenant:confirm"))
        assert.match(purge.message, /0 of 1 replicas acknowledged/)
      })),
    30_000
  )

  it.live("hits and misses never queue behind a WAIT", () =>
    Effect.scoped(Effect.gen(function*() {
      const primary = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer()),
        (server) => Effect.promise(() => server.stop())
      )
      const cache = yield* cacheOn(primary.url, "10 seconds")
      const inspector = yield* client(primary.url)
      yield* cache.getOrResolve(cacheable, { n: 1 })
      // No replica: this WAIT blocks its connection for its whole timeout.
      const invalidation = yield* Effect.fork(cache.invalidateNamespace("tenant:confirm"))
      while (!/cmd=wait/.test(yield* Effect.promise(() => inspector.client("LIST") as Promise<string>))) {
        yield* Effect.sleep("5 millis")
      }
      const outcomes = yield* Effect.forEach([1, 2, 3, 1, 2, 3], (n) =>
        Effect.map(cache.getOrResolveWithOutcome(cacheable, { n }), (result) => result.outcome))
      // All answered by Redis (a fresh generation, then entries of it) while the WAIT still blocks.
      assert.deepStrictEqual(outcomes, ["miss", "miss", "miss", "hit", "hit", "hit"])
      assert.isTrue(Option.isNone(yield* Fiber.poll(invalidation)))
      yield* Fiber.interrupt(invalidation)
    })), 30_000)
})
