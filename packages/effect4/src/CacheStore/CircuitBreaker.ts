/**
 * A store behind Effect 4's own circuit breaker (`effect/persistence/CircuitBreaker`): after `failures` store calls
 * in a row have failed, the store is not called for `cooldown` — calls fail at once with `RedisError` instead, so
 * while Redis is down or hung `getOrResolve` answers from the resolver at the resolver's speed rather than waiting
 * out a timeout per call. Then one call goes through as the probe: success closes the circuit, failure reopens it.
 *
 * The breaker's state is per process (its memory store), as in the Effect 3 package: each process judges its own
 * connection.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Breaker from "effect/persistence/CircuitBreaker"
import { RedisError } from "../CacheError.js"
import { CacheStore } from "../CacheStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Consecutive failures that open the circuit. */
  readonly failures: number
  /** How long an open circuit stays open before a probe. */
  readonly cooldown: Duration.Duration
}

const key = "response-cache-store"

// A failed store call counts against Redis; anything else (a success, an interruption) does not.
const classify = (exit: Exit.Exit<unknown, unknown>): Breaker.Outcome =>
  Exit.isSuccess(exit) ? Breaker.success : Breaker.failure()

/**
 * The store of the context behind a breaker.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(store: CacheStore["Service"], options: Options) {
  const breaker = yield* Breaker.make({
    tripPolicy: Breaker.consecutive(options.failures),
    openDuration: options.cooldown
  }).pipe(Effect.provide(Breaker.layerStoreMemory()))

  const rejected = (operation: string) => (error: Breaker.CircuitBreakerError) =>
    Effect.fail(new RedisError({ operation, cause: new Error(`circuit open: ${error.message}`) }))

  // While every store call succeeds, calls skip the breaker: its admission (a store read with a scope of its own)
  // cost ~22 µs of a ~44 µs hit, measured. The first failure is recorded in the breaker as it happened, and from
  // then on every call goes through it, until one succeeds through it — which closes the circuit (a probe) or
  // resets its streak — so the breaker counts exactly the consecutive failures it would have seen.
  let suspicious = false
  const guard = <A, R>(operation: string, effect: Effect.Effect<A, RedisError, R>): Effect.Effect<A, RedisError, R> =>
    Effect.suspend(() => {
      if (!suspicious) {
        return Effect.tapError(effect, (error) => {
          suspicious = true
          return Effect.ignore(breaker.execute(Effect.fail(error), { key, classify }))
        })
      }
      return breaker.execute(effect, { key, classify }).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            suspicious = false
          })
        ),
        Effect.catchTag("CircuitBreakerError", rejected(operation))
      )
    })

  return CacheStore.of({
    lookup: (k, create, withGrace) => guard("lookup", store.lookup(k, create, withGrace)),
    write: (k, write) => guard("write", store.write(k, write)),
    remove: (k) => guard("unlink", store.remove(k)),
    dropGeneration: (namespace) => guard("invalidateNamespace", store.dropGeneration(namespace)),
    sweep: store.sweep,
    acquireLock: (k, token, ttlMs) => guard("lock", store.acquireLock(k, token, ttlMs)),
    releaseLock: (k, token) => guard("unlock", store.releaseLock(k, token)),
    listenForRelease: store.listenForRelease
  })
})

/**
 * Puts a breaker in front of the `CacheStore` that `store` provides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(
  store: Layer.Layer<CacheStore, E, R>,
  options: Options
): Layer.Layer<CacheStore, E, R> =>
  Layer.effect(CacheStore, CacheStore.use((inner) => make(inner, options))).pipe(
    Layer.provide(store)
  )
