/**
 * How long a response stays fresh, how long it may be served stale, and how much its expiry is spread.
 *
 * A write's fresh time is `ttl × (1 − U × jitter)` (U uniform in [0, 1), floored to whole ms, at least 1 ms), so
 * entries written together do not expire together. The entry is kept in the store for its fresh time plus
 * `max(staleWhileRevalidate, staleIfError)` and is never served after that.
 *
 * `make` is pure and never throws: a policy is validated when it is used, and an unusable one fails that call
 * with a `TimeError`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { TimeError } from "./CacheError.js"
import { checked } from "./internal/cachePolicy.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface CachePolicy {
  readonly ttl: Duration.Duration
  /** Past its fresh time, an entry is served at once for this long while one background refresh runs. */
  readonly staleWhileRevalidate: Duration.Duration
  /** When the resolver fails, an entry past its fresh time by less than this is served instead of the error. */
  readonly staleIfError: Duration.Duration
  /** Each write's fresh time is shortened by a uniform random fraction up to this, in [0, 1]. */
  readonly jitter: number
  /**
   * Cross-process stampede protection (Redis layers): the first process to miss takes a lock this long and
   * resolves; the others wait for its value, at most this long, instead of resolving. Zero: no lock.
   */
  readonly lock: Duration.Duration
}

/**
 * An input that `Duration.decode` rejects (e.g. `"5 parsecs"`), remembered so the policy fails when used.
 */
const invalidInput = Symbol.for("@ledgerlink/response-cache/CachePolicy/invalidInput")

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly ttl: Duration.DurationInput
  readonly staleWhileRevalidate?: Duration.DurationInput | undefined
  readonly staleIfError?: Duration.DurationInput | undefined
  readonly jitter?: number | undefined
  readonly lock?: Duration.DurationInput | undefined
}): CachePolicy => {
  const problems: Array<string> = []
  const decode = (field: string, input: Duration.DurationInput | undefined): Duration.Duration =>
    input === undefined ? Duration.zero : Option.getOrElse(Duration.decodeUnknown(input), () => {
      problems.push(`${field} ${String(input)} is not a duration`)
      return Duration.zero
    })
  const policy: CachePolicy = {
    ttl: decode("ttl", options.ttl),
    staleWhileRevalidate: decode("staleWhileRevalidate", options.staleWhileRevalidate),
    staleIfError: decode("staleIfError", options.staleIfError),
    jitter: options.jitter ?? 0,
    lock: decode("lock", options.lock)
  }
  return problems.length === 0 ? policy : Object.assign(policy, { [invalidInput]: problems.join("; ") })
}

/**
 * Fresh for 5 minutes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const short: CachePolicy = make({ ttl: Duration.minutes(5) })

/**
 * Fresh for 1 hour.
 *
 * @since 0.1.0
 * @category constructors
 */
export const medium: CachePolicy = make({ ttl: Duration.hours(1) })

/**
 * Fresh for 1 day.
 *
 * @since 0.1.0
 * @category constructors
 */
export const long: CachePolicy = make({ ttl: Duration.days(1) })

/**
 * A policy checked and turned into whole milliseconds, as the stores want it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly ttlMs: number
  readonly staleWhileRevalidateMs: number
  readonly staleIfErrorMs: number
  /** How long an entry is kept after its fresh time ends: the larger stale window. */
  readonly graceMs: number
  readonly jitter: number
  /** 0: no cross-process lock. */
  readonly lockMs: number
}

/**
 * Checks a policy, failing with `TimeError` when it cannot be used.
 *
 * @since 0.1.0
 * @category validation
 */
export const resolve = (policy: CachePolicy): Effect.Effect<Resolved, TimeError> => {
  // Policies are usually constants: check each once.
  let resolved = checked.get(policy)
  if (resolved === undefined) {
    resolved = check(policy)
    checked.set(policy, resolved)
  }
  return resolved
}

const check = (policy: CachePolicy): Effect.Effect<Resolved, TimeError> => {
  const invalid = (policy as { readonly [invalidInput]?: string })[invalidInput]
  if (invalid !== undefined) return Effect.fail(new TimeError({ reason: invalid }))
  const ttlMs = Duration.toMillis(policy.ttl)
  if (!Number.isFinite(ttlMs) || ttlMs < 1) {
    return Effect.fail(
      new TimeError({ reason: `ttl must be finite and at least 1 ms, got ${Duration.format(policy.ttl)}` })
    )
  }
  const staleWhileRevalidateMs = Duration.toMillis(policy.staleWhileRevalidate)
  const staleIfErrorMs = Duration.toMillis(policy.staleIfError)
  if (!Number.isFinite(staleWhileRevalidateMs) || !Number.isFinite(staleIfErrorMs)) {
    return Effect.fail(new TimeError({ reason: "staleWhileRevalidate and staleIfError must be finite" }))
  }
  const lockMs = Duration.toMillis(policy.lock ?? Duration.zero)
  if (!Number.isFinite(lockMs)) return Effect.fail(new TimeError({ reason: "lock must be finite" }))
  const jitter = policy.jitter
  if (typeof jitter !== "number" || Number.isNaN(jitter) || jitter < 0 || jitter > 1) {
    return Effect.fail(new TimeError({ reason: `jitter must be a number in [0, 1], got ${String(jitter)}` }))
  }
  return Exit.succeed({
    ttlMs: Math.floor(ttlMs),
    staleWhileRevalidateMs: Math.floor(staleWhileRevalidateMs),
    staleIfErrorMs: Math.floor(staleIfErrorMs),
    graceMs: Math.floor(Math.max(staleWhileRevalidateMs, staleIfErrorMs)),
    jitter,
    lockMs: Math.ceil(lockMs)
  })
}

/**
 * The fresh time of one write, given `u` uniform in [0, 1): jitter only ever shortens it, never below 1 ms.
 *
 * @since 0.1.0
 * @category validation
 */
export const freshMs = (policy: Resolved, u: number): number =>
  Math.max(1, Math.floor(policy.ttlMs * (1 - u * policy.jitter)))
