/**
 * Confirmed invalidation through failovers, on servers of this file's own: a Sentinel topology (primary, replica,
 * three sentinels) and a Redis Cluster, the primary SIGKILLed and SIGSTOPped under load (test/support/
 * failoverChaos.ts). With `confirmInvalidation`, no read that started after an invalidation returned answers
 * anything older (0 stale reads in every run); the cache without it runs beside it, and its counts are printed.
 * `npm run chaos:failover` runs many of these.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { chaosRun, type Fault, startClusterTopology, startSentinelTopology, type Topology } from "./support/failoverChaos.js"

const check = (topology: () => Topology, how: Fault) =>
  Effect.gen(function*() {
    const { confirmed, unconfirmed } = yield* chaosRun(topology(), how, `${how}${Date.now().toString(36)}`)
    console.log(`failover chaos ${topology().name} ${how}: confirmed ${JSON.stringify(confirmed)}; unconfirmed ${JSON.stringify(unconfirmed)}`)
    assert.strictEqual(confirmed.stale, 0)
    // The run exercised the guarantee: invalidations were confirmed, and reads followed them.
    assert.isAbove(confirmed.invalidations - confirmed.invalidationsFailed, 0)
    assert.isAbove(confirmed.readsAfterInvalidation, 0)
  })

describe("confirmed invalidation through a Sentinel failover", () => {
  let topology: Topology | undefined
  beforeAll(async () => {
    topology = await startSentinelTopology()
  }, 30_000)
  afterAll(() => topology?.stop())

  it.live("primary SIGKILLed under load: 0 stale reads after a confirmed invalidation", () => check(() => topology!, "kill"), 40_000)
  it.live("primary SIGSTOPped under load: 0 stale reads after a confirmed invalidation", () => check(() => topology!, "stop"), 40_000)
})

describe("confirmed invalidation through a cluster failover", () => {
  let topology: Topology | undefined
  beforeAll(async () => {
    topology = await startClusterTopology()
  }, 60_000)
  afterAll(() => topology?.stop())

  // The frozen primary first (it comes back as a replica); the killed one stays down.
  it.live("primary SIGSTOPped under load: 0 stale reads after a confirmed invalidation", () => check(() => topology!, "stop"), 40_000)
  it.live("primary SIGKILLed under load: 0 stale reads after a confirmed invalidation", () => check(() => topology!, "kill"), 40_000)
})
