/**
 * Warnings of one cache instance: one per distinct cause per minute, with a count of the calls it affected. The
 * first occurrence of a cause is logged at once; later ones within the minute are only counted, and the count
 * goes into the next warning of that cause, logged by its first occurrence after the minute. During an outage,
 * 1,000 bypassed calls make one warning, not 1,000.
 *
 * A cause is what failed and why: the operation (or "connection", when a call failed only because the
 * connection is down) and the reason's class — a Redis error's first word (WRONGPASS, NOPERM, OOM, …), a socket
 * error's code (ECONNREFUSED, a TLS certificate code, …) — with its message, digits aside. Time comes from
 * Effect's `Clock`, so `TestClock` drives the minute.
 *
 * The Redis store makes the instance (so that its connection's own events — ioredis 'error' events, what ioredis
 * would otherwise print on the console — are warned of with the calls they affect) and the engine reports into
 * it; over another store, the engine makes its own.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import { RedisError } from "../CacheError.js"

/** One occurrence of a cause. */
export interface Warning {
  /** What makes causes distinct (see `causeOf`). */
  readonly key: string
  /** The warning's text, logged for the first occurrence in a minute. */
  readonly message: string
  /** Calls the occurrence affected: 1 for a call, 0 for an event of the connection's own. */
  readonly calls: number
  readonly annotations?: Record<string, unknown> | undefined
}

export interface Warnings {
  readonly warn: (warning: Warning) => Effect.Effect<void>
  /** `warn` from outside any fiber (an ioredis event), on the runtime the instance was made in. */
  readonly warnNow: (warning: Warning) => void
  /** Logs outside the aggregation (e.g. that the connection is back), on the instance's runtime. */
  readonly logNow: (effect: Effect.Effect<void>) => void
}

const windowMs = 60_000
/** Causes remembered at most: beyond, those not seen for a minute are forgotten. */
const maxCauses = 256

interface State {
  windowStart: number
  calls: number
  lastSeen: number
}

const countFormat = new Intl.NumberFormat("en-US")

/** A warnings instance whose log lines go to the loggers (and whose time is the Clock) of the fiber that makes it. */
export const make: Effect.Effect<Warnings> = Effect.map(Effect.runtime<never>(), (runtime) => unsafeMake(runtime))

/**
 * A warnings instance: `warn` logs in the fiber that reports, `warnNow` and `logNow` on `runtime` (by default
 * Effect's default runtime).
 */
export const unsafeMake = (runtime: Runtime.Runtime<never> = Runtime.defaultRuntime): Warnings => {
  const states = new Map<string, State>()

  const warn = (warning: Warning): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const state = states.get(warning.key)
      if (state !== undefined && now - state.windowStart < windowMs) {
        state.calls += warning.calls
        state.lastSeen = now
        return Effect.void
      }
      const previous = state?.calls ?? 0
      if (state === undefined && states.size >= maxCauses) {
        for (const [key, old] of states) if (now - old.lastSeen >= windowMs) states.delete(key)
      }
      const next: State = { windowStart: now, calls: warning.calls, lastSeen: now }
      if (states.size < maxCauses || state !== undefined) states.set(warning.key, next)
      const since = state === undefined ? 0 : Math.round((now - state.windowStart) / 1000)
      const calls = `${countFormat.format(previous)} call${previous === 1 ? "" : "s"}`
      const counted = previous > 0 ? ` (${calls} affected since this was last warned of, ${since} s ago)` : ""
      return Effect.logWarning(`${warning.message}${counted}`).pipe(
        Effect.annotateLogs({ ...warning.annotations, ...(previous > 0 ? { affectedCalls: previous } : {}) })
      )
    })

  const runFork = Runtime.runFork(runtime)
  return {
    warn,
    warnNow: (warning) => {
      runFork(warn(warning))
    },
    logNow: (effect) => {
      runFork(effect)
    }
  }
}

/** Marks an error as "the connection is down, and this is why" (see `RedisClient.explain`). */
export const connectionFailure: unique symbol = Symbol.for("@ledgerlink/response-cache/connectionFailure")

/** The words of an error: its message, or its code when it has no message (Node's AggregateError of a connect). */
export const describe = (error: unknown): string => {
  if (error instanceof Error) {
    if (error.message !== "") return error.message
    const code = (error as { code?: unknown }).code
    const inner = (error as { errors?: ReadonlyArray<unknown> }).errors?.[0]
    if (inner !== undefined) return describe(inner)
    return typeof code === "string" ? code : error.name
  }
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  return String(error)
}

/** The words of an error as a sentence, ending with one full stop. */
const sentence = (error: unknown): string => `${describe(error).replace(/\.+$/, "")}.`

/** The class of a reason: a Redis error's first word or a socket error's code, and the message without digits. */
const reasonKey = (error: unknown): string => {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined
  return `${typeof code === "string" ? code : ""}|${describe(error).replace(/\d+/g, "#").slice(0, 200)}`
}

/**
 * What a store failure comes down to: the deepest error of its cause chain (through a `RedisError`, a circuit
 * breaker's "circuit open", a command turned away while the connection is down), and whether it is the
 * connection's failure rather than the command's own.
 */
export const causeOf = (error: unknown): { readonly reason: unknown; readonly connection: boolean } => {
  let reason = error
  let connection = false
  for (let depth = 0; depth < 10; depth++) {
    if (reason instanceof RedisError) {
      reason = reason.cause
      continue
    }
    if (reason instanceof Error && (reason as { [connectionFailure]?: boolean })[connectionFailure] === true) {
      connection = true
    }
    if (reason instanceof Error && reason.cause instanceof Error && reason.cause !== reason) {
      reason = reason.cause
      continue
    }
    break
  }
  return { reason, connection }
}

/** The warning of a connection's own failure (an ioredis 'error' event), or of a call it turned away. */
export const connectionWarning = (reason: unknown, calls: number): Warning => ({
  key: `connection|${reasonKey(reason)}`,
  message: `ResponseCache: the Redis connection failed: ${sentence(reason)} ` +
    "Calls answer from their resolvers (outcome bypass) until it is back",
  calls,
  annotations: { cause: describe(reason) }
})

/**
 * The warning of one Redis Cluster node's failure (a connection, or a slot-map refresh it did not answer): not the
 * cluster's, whose other nodes go on serving; only calls that fail because of it answer from their resolvers.
 */
export const clusterNodeWarning = (reason: unknown, node: string): Warning => ({
  key: `node|${node}|${reasonKey(reason)}`,
  message: `ResponseCache: Redis Cluster node ${node} failed: ${sentence(reason)} ` +
    "ioredis reconnects to it and refreshes the slot map; calls that fail meanwhile answer from their resolvers " +
    "(outcome bypass)",
  calls: 0,
  annotations: { node, cause: describe(reason) }
})

/** The warning of a store failure a call answered from its resolver (`doing`: "reading", "writing", …). */
export const storeWarning = (error: RedisError, doing: string): Warning => {
  const { connection, reason } = causeOf(error)
  if (connection) return connectionWarning(reason, 1)
  return {
    key: `${error.operation}|${reasonKey(reason)}`,
    message: `ResponseCache: the store failed while ${doing} (${error.operation}): ${sentence(reason)} ` +
      "Answering from the resolver",
    calls: 1,
    annotations: { operation: error.operation, cause: describe(reason) }
  }
}

const ofStore_ = new WeakMap<object, Warnings>()

/** The warnings instance a store reports into, so that the engine over it reports into the same one. */
export const attach = <S extends object>(store: S, warnings: Warnings): S => {
  ofStore_.set(store, warnings)
  return store
}

/** The warnings instance a store reports into; for a store without one, one of its own, made now. */
export const forStore = (store: object): Warnings => {
  let warnings = ofStore_.get(store)
  if (warnings === undefined) {
    warnings = unsafeMake()
    ofStore_.set(store, warnings)
  }
  return warnings
}
