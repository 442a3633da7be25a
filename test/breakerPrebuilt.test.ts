/**
 * Regression: the breaker once decided on its healthy fast path when the operation is BUILT, not when it runs, so an
 * operation built while closed and run after the circuit opened still reaches the store.
 */
import { assert, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { RedisError } from "../src/CacheError.js"
import * as CacheKey from "../src/CacheKey.js"
import type { CacheStore } from "../src/CacheStore.js"
import * as CircuitBreaker from "../src/CacheStore/CircuitBreaker.js"

it.effect("an operation built while closed, run after the circuit opened, does not reach the store", () =>
  Effect.gen(function*() {
    let calls = 0
    const failing = Effect.suspend(() => {
      calls++
      return Effect.fail(new RedisError({ operation: "lookup", cause: new Error("down") }))
    })
    const store: CacheStore.Service = {
      lookup: () => failing,
      write: () => failing,
      remove: () => failing,
      dropGeneration: () => failing,
      sweep: () => Stream.fromEffect(failing),
      acquireLock: () => failing,
      releaseLock: () => failing,
      listenForRelease: () => failing
    }
    const breaker = CircuitBreaker.make(store, { failures: 3, cooldownMs: 1000 })
    const namespace = CacheKey.namespaceKeys("cb", "ns")
    const key: CacheKey.CacheKey = { namespace, digest: "0", entry: "e", lock: "l" }
    const prebuilt = breaker.lookup(key, undefined)
    for (let i = 0; i < 3; i++) yield* Effect.exit(breaker.lookup(key, undefined))
    assert.strictEqual(calls, 3)
    yield* Effect.exit(prebuilt)
    assert.strictEqual(calls, 3, "the operation built before the circuit opened reached the store while it is open")
  }))
