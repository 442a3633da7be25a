/**
 * Single flight: one resolve per flight key, however many callers ask for it. The first caller forks the resolve
 * into the layer's scope, so that it outlives the caller that started it (a caller's interruption does not cancel
 * it for the others); the last caller to leave takes it down, unless it is a background refresh.
 *
 * Invalidation safety here: the engine puts the generation it read into the flight key, so a call that reads a
 * newer generation (after an invalidation returned) never joins a resolve that started before it.
 *
 * Joining costs one asynchronous step per caller (a stampede has a thousand of them): the caller's resume callback
 * is kept on the flight, found and counted in the same step, and the resolve's exit is handed to every callback
 * when it ends — no Deferred, no finalizer per caller; leaving on interruption is the step's canceler. Leading
 * costs the resolve's fiber and little more (every miss pays it): the leader waits the same way, and the fiber is
 * started within the leader's step, so a resolve that never suspends answers without a scheduler step.
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scope from "effect/Scope"
import type * as ResponseCache from "../ResponseCache.js"
import * as Warnings from "./warnings.js"

type Result<A> = ResponseCache.WithOutcome<A>

type Resume = (exit: Exit.Exit<Result<unknown>, unknown>) => void

interface Flight {
  /** Callers awaiting the outcome (the leader, while it waits, and the joiners). */
  waiters: number
  /** The leader's resume, once it waits; it gets the resolve's own outcome. */
  leader: Resume | undefined
  /** The joiners' resumes; they get outcome `coalesced`. */
  readonly joiners: Set<Resume>
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Set when the resolve has ended. */
  exit: Exit.Exit<Result<unknown>, unknown> | undefined
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

/** The exit a joiner gets: the leader's value with outcome `coalesced`, or the same failure. */
const coalesced = (exit: Exit.Exit<Result<unknown>, unknown>): Exit.Exit<Result<unknown>, unknown> =>
  Exit.isSuccess(exit) ? Exit.succeed({ value: exit.value.value, outcome: "coalesced" }) : exit

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

  /** The resolve has ended: every waiting caller gets its exit. */
  const complete = (flightKey: string, flight: Flight, exit: Exit.Exit<Result<unknown>, unknown>) => {
    if (flights.get(flightKey) === flight) flights.delete(flightKey)
    flight.exit = exit
    const leader = flight.leader
    flight.leader = undefined
    if (leader !== undefined) leader(exit)
    if (flight.joiners.size > 0) {
      const joined = coalesced(exit)
      for (const resume of flight.joiners) resume(joined)
      flight.joiners.clear()
    }
  }

  /**
   * A caller leaves the flight before its end (interrupted). The last caller to leave takes the resolve down with
   * it; anyone still waiting keeps it going, and a background refresh runs to its end whoever waits.
   */
  const leave = (flightKey: string, flight: Flight) => {
    flight.waiters--
    if (flight.waiters > 0 || flight.background || flight.fiber === undefined || flight.exit !== undefined) return
    if (flights.get(flightKey) === flight) flights.delete(flightKey)
    flight.fiber.unsafeInterruptAsFork(FiberId.none)
  }

  /**
   * A joiner waits: counted in the same step as it found the flight, so that no yield lets the last other waiter,
   * interrupted meanwhile, take the resolve down and leave this caller waiting forever. Its canceler (run when it
   * is interrupted while waiting) makes it leave.
   */
  const join = (flightKey: string, flight: Flight, resume: Resume) => {
    if (flight.exit !== undefined) {
      resume(coalesced(flight.exit))
      return undefined
    }
    flight.waiters++
    flight.joiners.add(resume)
    return Effect.sync(() => {
      if (flight.joiners.delete(resume)) leave(flightKey, flight)
    })
  }

  /**
   * Makes the flight, counted with its first caller unless it is a refresh, and starts its resolve in a fiber of
   * its own with the caller's context, services and fiber refs (a daemon: it outlives the caller). It starts within
   * the caller's step (`immediate`), so a resolve that never suspends (a memory store, a synchronous resolver) has
   * ended when this returns, without a scheduler step. That fiber is made by `Runtime.runFork` rather than
   * `Effect.forkDaemon`, so that making the flight, counting it and forking are one step with no Effect around them:
   * nothing can interrupt the caller between them.
   */
  const start = <A, E, R>(
    flightKey: string,
    resolve: () => Effect.Effect<Result<A>, E, R>,
    background: boolean,
    caller: Fiber.RuntimeFiber<unknown, unknown>,
    callerFlags: RuntimeFlags.RuntimeFlags,
    immediate: boolean
  ): Flight => {
    const flight: Flight = {
      waiters: background ? 0 : 1,
      leader: undefined,
      joiners: new Set(),
      fiber: undefined,
      exit: undefined,
      background
    }
    flights.set(flightKey, flight)
    const runtime = Runtime.make({
      context: caller.getFiberRef(FiberRef.currentContext) as Context.Context<R>,
      fiberRefs: caller.getFiberRefs(),
      // Interruptible even when the caller is not: the last caller to leave takes it down.
      runtimeFlags: RuntimeFlags.enable(callerFlags, RuntimeFlags.Interruption)
    })
    const fiber = Runtime.runFork(runtime, resolve(), { immediate })
    flight.fiber = fiber as Fiber.RuntimeFiber<unknown, unknown>
    // Called at once when the resolve has already ended.
    fiber.addObserver((exit) => complete(flightKey, flight, exit as Exit.Exit<Result<unknown>, unknown>))
    return flight
  }

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

  /**
   * Joins the flight, or starts it and waits as its leader: found, made, counted and forked in one step, so no
   * interruption falls between them; only the wait is interruptible, and an interrupted caller leaves.
   */
  const shared = <A, E, R>(
    flightKey: string,
    resolve: () => Effect.Effect<Result<A>, E, R>
  ): Effect.Effect<Result<A>, E, R> =>
    Effect.withFiberRuntime<Result<A>, E, R>((caller, status) =>
      Effect.async<Result<A>, E, R>((resume) => {
        const joined = flights.get(flightKey)
        if (joined !== undefined) return join(flightKey, joined, resume as Resume)
        const flight = start(flightKey, resolve, false, caller, status.runtimeFlags, true)
        if (flight.exit !== undefined) {
          resume(flight.exit as Exit.Exit<Result<A>, E>)
          return undefined
        }
        flight.leader = resume as Resume
        return Effect.sync(() => {
          flight.leader = undefined
          leave(flightKey, flight)
        })
      })
    )

  return Effect.as(Scope.addFinalizer(scope, interruptAll), {
    shared,
    // Started on the scheduler rather than in the caller's step: the caller answers with the stale value at once.
    refreshInBackground: <A, E, R>(flightKey: string, resolve: () => Effect.Effect<Result<A>, E, R>) =>
      Effect.withFiberRuntime<void, never, R>((caller, status) => {
        if (!flights.has(flightKey)) {
          start(
            flightKey,
            () =>
              Effect.tapErrorCause(
                resolve(),
                (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : refreshFailed(cause)
              ),
            true,
            caller,
            status.runtimeFlags,
            false
          )
        }
        return Effect.void
      }),
    inFlight: Effect.sync(() => {
      let callers = 0
      for (const flight of flights.values()) callers += flight.waiters
      return { resolves: flights.size, callers }
    })
  })
}
