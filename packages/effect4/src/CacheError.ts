/**
 * The errors a cache operation can fail with. Each carries what was being done and the original `cause`, so a log
 * line says which command or which value went wrong without a debugger.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * The store failed or timed out (Redis unreachable, a command over `commandTimeout`, a script error).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `Redis ${this.operation} failed: ${describe(this.cause)}`
  }
}

/**
 * A query or response that does not encode with its schema, or a stored entry that does not parse or decode.
 *
 * @since 0.1.0
 * @category errors
 */
export class SerdeError extends Data.TaggedError("SerdeError")<{
  readonly subject: "query" | "response" | "entry"
  readonly cause: unknown
}> {
  override get message(): string {
    return `Cannot serialise the ${this.subject}: ${describe(this.cause)}`
  }
}

/**
 * A cache policy that cannot be used: a ttl that is not finite or under 1 ms, a stale window that is not finite,
 * a jitter outside [0, 1].
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeError extends Data.TaggedError("TimeError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `Unusable cache policy: ${this.reason}`
  }
}

/**
 * Every error the cache itself can raise; a resolver's own errors pass through beside these, unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export type CacheError = RedisError | SerdeError | TimeError

const describe = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "object" && cause !== null && "message" in cause) return String(cause.message)
  return String(cause)
}
