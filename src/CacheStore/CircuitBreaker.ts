/**
 * A circuit breaker around a store. After `failures` store calls in a row have failed, it stops calling the store
 * for `cooldown`, failing at once instead — so while Redis is down or hung, `getOrResolve` answers from the
 * resolver at the resolver's own speed rather than waiting out a timeout per call. After the cool-down one call
 * goes through as a probe: success closes the circuit, failure opens it for another cool-down. Invalidations and
 * sweeps are never held back: they always reach the store.
 *
 * Time comes from Effect's `Clock`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { RedisError } from "../CacheError.js"
import type { CacheStore, Health } from "../CacheStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Consecutive failures that open the circuit. */
  readonly failures: number
  /** How long an open circuit stays open before a probe. */
  readonly cooldownMs: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (store: CacheStore.Service, options: Options): CacheStore.Service => {
  let consecutiveFailures = 0
  let openUntil = 0
  let probing = false
  // The failure that opened the circuit: an open circuit says why it opened.
  let lastFailure: unknown

  const open = (operation: string) =>
    Effect.fail(
      new RedisError({
        operation,
        cause: new Error(
          `circuit open: the store failed ${consecutiveFailures} times in a row, the last time with: ${
            lastFailure instanceof RedisError ? lastFailure.message : String(lastFailure)
          }`,
          { cause: lastFailure }
        )
      })
    )

  const failed = (probe: boolean, cause: Cause.Cause<RedisError>) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        if (probe) probing = false
        const failure = Cause.failureOption(cause)
        if (failure._tag === "Some") lastFailure = failure.value
        consecutiveFailures++
        if (probe || consecutiveFailures >= options.failures) openUntil = now + options.cooldownMs
      }))

  const succeeded = (probe: boolean) => {
    if (probe) probing = false
    consecutiveFailures = 0
    openUntil = 0
  }

  // Decided when the operation runs, not when it is built: an operation built while the circuit was closed
  // must not reach the store after it opened.
  const guard = <A, R>(
    operation: string,
    effect: Effect.Effect<A, RedisError, R>
  ): Effect.Effect<A, RedisError, R> =>
    Effect.suspend(() => {
      // The healthy path reads no clock: only a failure, or an open circuit, needs the time.
      if (openUntil === 0 && consecutiveFailures === 0) {
        // A failure handler alone (not `tapErrorCause`, whose success handler is one more step on every call).
        return Effect.catchAllCause(effect, (cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.zipRight(failed(false, cause), Effect.failCause(cause)))
      }
      return guardSlow(operation, effect)
    })

  const guardSlow = <A, R>(
    operation: string,
    effect: Effect.Effect<A, RedisError, R>
  ): Effect.Effect<A, RedisError, R> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (openUntil > now || (openUntil !== 0 && probing)) return open(operation)
      const probe = openUntil !== 0
      if (probe) probing = true
      return Effect.onExit(effect, (exit) => {
        if (Exit.isSuccess(exit)) return Effect.sync(() => succeeded(probe))
        if (Exit.isInterrupted(exit)) {
          return Effect.sync(() => {
            if (probe) probing = false
          })
        }
        return failed(probe, exit.cause)
      })
    })

  return {
    lookup: (key, create, withGrace) => guard("lookup", store.lookup(key, create, withGrace)),
    write: (key, write) => guard("write", store.write(key, write)),
    remove: (key) => guard("unlink", store.remove(key)),
    // Invalidations and sweeps always reach the store, open circuit or not: a writer must be able to invalidate
    // while reads are failing — a Redis full under `noeviction` refuses every lookup that needs a new generation,
    // which opens the circuit, yet accepts the invalidation — and they are rare and bounded by commandTimeout.
    // They leave the circuit as it is: a DEL that succeeds says nothing of whether reads do.
    dropGeneration: (namespace) => store.dropGeneration(namespace),
    sweep: (namespace) => store.sweep(namespace),
    acquireLock: (key, token, ttlMs) => guard("lock", store.acquireLock(key, token, ttlMs)),
    releaseLock: (key, token) => guard("unlock", store.releaseLock(key, token)),
    listenForRelease: (key) => guard("subscribe", store.listenForRelease(key)),
    // Degraded from the first failure until the next success: what failed, in the store's words.
    health: Effect.suspend(() => {
      const inner = store.health ?? Effect.succeed<Health>({ status: "ok" })
      if (consecutiveFailures === 0) return inner
      return Effect.map(inner, (health): Health =>
        health.status === "degraded" ? health : {
          status: "degraded",
          reason: `${openUntil === 0 ? "" : "circuit open: "}the last ${
            consecutiveFailures === 1 ? "store call" : `${consecutiveFailures} store calls`
          } failed, the last with: ${lastFailure instanceof RedisError ? lastFailure.message : String(lastFailure)}`
        })
    })
  }
}
