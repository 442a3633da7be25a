/**
 * Single flight: one resolve per flight key, however many callers ask for it. The first caller forks the resolve
 * into the layer's scope, so that it outlives the caller that started it (a caller's interruption does not cancel
 * it for the others); the last caller to leave takes it down, unless it is a background refresh.
 *
 * Invalidation safety here: the engine puts the generation it read into the flight key, so a call that reads a
 * newer generation (after an invalidation returned) never joins a resolve that started before it.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import type * as ResponseCache from "../ResponseCache.js"
import * as Warnings from "./warnings.js"

type Result<A> = ResponseCache.WithOutcome<A>

interface Flight {
  readonly deferred: Deferred.Deferred<Result<unknown>, unknown>
  /** Callers awaiting the outcome. */
  waiters: number
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** A stale-while-revalidate refresh: it runs to its end even when no caller waits. */
  readonly background: boolean
}

export interface SingleFlight {
  /**
   * Joins the flight of `flightKey`, or starts it with `resolve()` (built only by the caller that starts it); a
   * caller that joined gets outcome `coalesced`.
   */
  readonly shared: <A, E, R>(
    flightKey: string,
    resolve: () => Effect.Effect<Result<A>, E, R>
  ) => Effect.Effect<Result<A>, E, R>
  /** A refresh nobody waits for: it joins a resolve already in flight for the key, or starts one. */
  readonly refreshInBackground: <A, E, R>(
    flightKey: string,
    resolve: () => Effect.Effect<Result<A>, E, R>
  ) => Effect.Effect<void, never, R>
  /** Resolves in flight and the callers waiting on them. */
  readonly inFlight: Effect.Effect<{ readonly resolves: number; readonly callers: number }>
}

/**
 * Flights whose resolves run until `scope` (the layer's) closes. Each resolve is a daemon fiber, and the scope
 * gets one finalizer that interrupts those still running: a fork into the scope itself (`forkIn`) would open and
 * close a child scope for every miss.
 */
export const make = (scope: Scope.Scope, warnings: Warnings.Warnings): Effect.Effect<SingleFlight> => {
  const flights = new Map<string, Flight>()
  const interruptAll = Effect.suspend(() => {
    const running: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
    for (const flight of flights.values()) if (flight.fiber !== undefined) running.push(flight.fiber)
    flights.clear()
    return Fiber.interruptAll(running)
  })

  const awaitFlight = <A, E>(
    flight: Flight,
    flightKey: string,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
    leader: boolean
  ): Effect.Effect<Result<A>, E> => {
    const waiting = restore(Deferred.await(flight.deferred as Deferred.Deferred<Result<A>, E>)).pipe(
      Effect.ensuring(Effect.sync(() => flight.waiters--)),
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          // The last caller to leave takes the resolve down with it; anyone still waiting keeps it going, and
          // a background refresh runs to its end whoever waits.
          if (flight.waiters > 0 || flight.background || flight.fiber === undefined) return Effect.void
          if (flights.get(flightKey) === flight) flights.delete(flightKey)
          return Fiber.interruptFork(flight.fiber)
        })
      )
    )
    return leader ? waiting : Effect.map(waiting, (result) => ({ value: result.value, outcome: "coalesced" }))
  }

  const startOrJoin = <A, E, R>(
    flightKey: string,
    resolve: () => Effect.Effect<Result<A>, E, R>,
    background: boolean
  ): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> =>
    Effect.suspend((): Effect.Effect<{ readonly flight: Flight; readonly leader: boolean }, never, R> => {
      const existing = flights.get(flightKey)
      if (existing !== undefined) {
        // Counted in the same step as the lookup: a yield between joining and being counted would let the last
        // other waiter, interrupted meanwhile, take the resolve down and leave this caller waiting forever.
        if (!background) existing.waiters++
        return Effect.succeed({ flight: existing, leader: false })
      }
      const flight: Flight = {
        deferred: Deferred.unsafeMake(FiberId.none),
        waiters: background ? 0 : 1,
        fiber: undefined,
        background
      }
      flights.set(flightKey, flight)
      const run = Effect.interruptible(Effect.onExit(resolve(), (exit) => {
        if (flights.get(flightKey) === flight) flights.delete(flightKey)
        return Deferred.done(flight.deferred, exit as Exit.Exit<Result<unknown>, unknown>)
      }))
      return Effect.map(Effect.forkDaemon(run), (fiber) => {
        flight.fiber = fiber
        return { flight, leader: true }
      })
    })

  /** One warning per distinct failure per minute, with the count of refreshes it affected. */
  const refreshFailed = (cause: Cause.Cause<unknown>) => {
    const failure = Cause.squash(cause)
    const { reason } = Warnings.causeOf(failure)
    return warnings.warn({
      key: `refresh|${Warnings.describe(reason).replace(/\d+/g, "#").slice(0, 200)}`,
      message: `ResponseCache: a background refresh failed (${Warnings.describe(reason)}); the stale entry stays`,
      calls: 1,
      annotations: { cause: Warnings.describe(reason) }
    })
  }

  return Effect.as(Scope.addFinalizer(scope, interruptAll), {
    shared: <A, E, R>(flightKey: string, resolve: () => Effect.Effect<Result<A>, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          startOrJoin(flightKey, resolve, false),
          ({ flight, leader }) => awaitFlight<A, E>(flight, flightKey, restore, leader)
        )
      ),
    refreshInBackground: <A, E, R>(flightKey: string, resolve: () => Effect.Effect<Result<A>, E, R>) =>
      Effect.uninterruptible(Effect.asVoid(startOrJoin(
        flightKey,
        () =>
          Effect.tapErrorCause(
            resolve(),
            (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : refreshFailed(cause)
          ),
        true
      ))),
    inFlight: Effect.sync(() => {
      let callers = 0
      for (const flight of flights.values()) callers += flight.waiters
      return { resolves: flights.size, callers }
    })
  })
}
