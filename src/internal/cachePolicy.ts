/**
 * The policies `CachePolicy.resolve` has checked, and a synchronous look at them for the engine's hot path.
 */
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { TimeError } from "../CacheError.js"
import type { CachePolicy, Resolved } from "../CachePolicy.js"

// Policies are usually constants: each is checked once.
export const checked = new WeakMap<CachePolicy, Effect.Effect<Resolved, TimeError>>()

/** The checked policy, if `CachePolicy.resolve` has already checked it and found it usable. */
export const resolvedSync = (policy: CachePolicy): Resolved | undefined => {
  const resolved = checked.get(policy)
  return resolved !== undefined && Exit.isExit(resolved) && Exit.isSuccess(resolved)
    ? resolved.value as Resolved
    : undefined
}
