/**
 * A `Cacheable` describes one kind of query: how it is keyed (its name and query schema), how its response is
 * stored (the response schema), which namespace it belongs to, how long it lives, and how it is computed.
 *
 * @since 0.1.0
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type { CachePolicy } from "./CachePolicy.js"
import * as Fingerprint from "./internal/fingerprint.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Cacheable<in out Q, in out A, out E = never, out R = never> {
  /** Stable id, part of every key digest: bump it when the response shape changes. */
  readonly name: string
  /** The query is keyed by the canonical JSON of its encoded form. */
  readonly query: Schema.Schema<Q, any, never>
  /** The response is stored as the JSON text of its encoded form and decoded on read. */
  readonly response: Schema.Schema<A, any, never>
  /** The tenant or system scope of a query, e.g. `tenant:${id}:v1`; any string, the empty one included. */
  readonly namespace: (query: Q) => string
  readonly policy: CachePolicy | ((query: Q) => CachePolicy)
  readonly resolve: (query: Q) => Effect.Effect<A, E, R>
  /**
   * Which response schema entries are written under, folded into every key digest (see `responseVersion` on
   * `make`); undefined: none, the keys of earlier versions.
   */
  readonly fingerprint?: string | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <Q, QI, A, AI, E = never, R = never>(options: {
  readonly name: string
  readonly query: Schema.Schema<Q, QI, never>
  readonly response: Schema.Schema<A, AI, never>
  readonly namespace: (query: Q) => string
  readonly policy: CachePolicy | ((query: Q) => CachePolicy)
  readonly resolve: (query: Q) => Effect.Effect<A, E, R>
  /**
   * Makes a change of the response schema a miss rather than a decode failure, in every mode (opt-in):
   * `true` fingerprints the schema's encoded form (field names, optionality, types — not refinements), a string is
   * a version you bump yourself. Either is part of every key digest, so an entry written under another schema has
   * another key: never read, never a `SerdeError`, never overwritten by the other schema's processes during a
   * rolling deploy (it expires by its ttl). Unset: keys as in earlier versions. The Effect 4 package takes the same
   * option and computes the same keys for a string, and for `true` over a Schema 4 declaration of the same encoded
   * shape (the common forms; a string is the sure choice).
   */
  readonly responseVersion?: string | true | undefined
}): Cacheable<Q, A, E, R> => {
  const { responseVersion, ...rest } = options
  return {
    ...rest,
    fingerprint: responseVersion === true
      ? Fingerprint.ofSchema(options.response)
      : responseVersion === undefined
      ? undefined
      : Keys.versionFingerprint(responseVersion)
  }
}

/**
 * The policy that applies to one query.
 *
 * @since 0.1.0
 * @category accessors
 */
export const policyFor = <Q, A, E, R>(cacheable: Cacheable<Q, A, E, R>, query: Q): CachePolicy =>
  typeof cacheable.policy === "function" ? cacheable.policy(query) : cacheable.policy
