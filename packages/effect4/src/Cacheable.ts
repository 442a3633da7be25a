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
  readonly query: Schema.Codec<Q, QI, never, never>
  readonly response: Schema.Codec<A, AI, never, never>
  readonly namespace: (query: Q) => string
  readonly policy: CachePolicy | ((query: Q) => CachePolicy)
  readonly resolve: (query: Q) => Effect.Effect<A, E, R>
  /**
   * A version of the response schema that you bump yourself when its encoded form changes (opt-in): part of every
   * key digest, so an entry written under another version has another key — a miss, in every mode (never a
   * `SerdeError`), and never overwritten by the other version's processes during a rolling deploy (it expires by
   * its ttl). The digest is the wire package's, computed as the Effect 3 package computes it for the same string,
   * so the two packages share entries for one version. Unset: the keys of earlier versions.
   *
   * (The Effect 3 package also takes `true`, a fingerprint of its Schema 3 AST; Schema 4's AST is another, so a
   * fingerprint of it could not be promised equal across the packages: the string is the portable form.)
   */
  readonly responseVersion?: string | undefined
}): Cacheable<Q, A, E, R> => {
  const { responseVersion, ...rest } = options
  return {
    ...rest,
    fingerprint: responseVersion === undefined ? undefined : Keys.versionFingerprint(responseVersion)
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
