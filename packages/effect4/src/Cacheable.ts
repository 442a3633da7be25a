/**
 * A `Cacheable` describes one kind of query: how it is keyed (its name and query schema), how its response is
 * stored (the response schema), which namespace it belongs to, how long it lives, and how it is computed.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type { CachePolicy } from "./CachePolicy.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Cacheable<in out Q, in out A, out E = never, out R = never> {
  /** Stable id, part of every key digest: bump it when the response shape changes. */
  readonly name: string
  /** The query is keyed by the canonical JSON of its encoded form. */
  readonly query: Schema.Codec<Q, any, never, never>
  /** The response is stored as the JSON text of its encoded form and decoded on read. */
  readonly response: Schema.Codec<A, any, never, never>
  /** The tenant or system scope of a query, e.g. `tenant:${id}:v1`; any string, the empty one included. */
  readonly namespace: (query: Q) => string
  readonly policy: CachePolicy | ((query: Q) => CachePolicy)
  readonly resolve: (query: Q) => Effect.Effect<A, E, R>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <Q, QI, A, AI, E = never, R = never>(options: {
  readonly name: string
  readonly query: Schema.Codec<Q, QI, never, never>
  readonly response: Schema.Codec<A, AI, never, never>
  readonly namespace: (query: Q) => string
  readonly policy: CachePolicy | ((query: Q) => CachePolicy)
  readonly resolve: (query: Q) => Effect.Effect<A, E, R>
}): Cacheable<Q, A, E, R> => ({ ...options })

/**
 * The policy that applies to one query.
 *
 * @since 0.1.0
 * @category accessors
 */
export const policyFor = <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q): CachePolicy =>
  typeof cacheable.policy === "function" ? cacheable.policy(query) : cacheable.policy
