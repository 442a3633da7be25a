/**
 * Key derivation (the layout itself is the wire package's `Keys`, shared with the Effect 4 package). Every key the cache writes lives under `<prefix>:{ns:<namespace>}:…`:
 *
 * - `…:g`            the namespace's generation (a token replaced by every invalidation);
 * - `…:w`            the last generation any entry was written under (so a sweep knows when none is current);
 * - `…:e:<digest>`   an entry, where `<digest>` is the 64-hex BLAKE3 of the cacheable's name and the canonical
 *                    JSON of the query's encoded form;
 * - `…:l:<digest>`   the cross-process resolve lock of one entry.
 *
 * The namespace is escaped injectively (`%`, braces, glob characters and lone surrogates become `%XX` / `%uXXXX`),
 * so the hash tag `{ns:…}` ends where we mean it to — one namespace is one Redis Cluster slot — no two namespaces
 * share a key, and the sweep pattern `…:e:*` of one namespace can never match another's keys.
 *
 * @since 0.1.0
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Cacheable } from "./Cacheable.js"
import type { SerdeError } from "./CacheError.js"
import * as internal from "./internal/cacheKey.js"

/**
 * @since 0.1.0
 * @category models
 */
export type NamespaceKeys = Keys.NamespaceKeys

/**
 * @since 0.1.0
 * @category models
 */
export type CacheKey = Keys.CacheKey

/**
 * Why a key prefix is unusable, if it is.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkPrefix: (prefix: string) => string | undefined = Keys.checkPrefix

/**
 * The prefix, or `ConfigError.InvalidData` at `prefix` saying why it is unusable.
 *
 * @since 0.1.0
 * @category validation
 */
export const validPrefix = (prefix: string): Effect.Effect<string, ConfigError.ConfigError> => {
  const problem = Keys.checkPrefix(prefix)
  return problem === undefined ? Effect.succeed(prefix) : Effect.fail(ConfigError.InvalidData(["prefix"], problem))
}

/**
 * Escapes a namespace injectively for use inside a key and a SCAN pattern.
 *
 * @since 0.1.0
 * @category keys
 */
export const escapeNamespace: (namespace: string) => string = Keys.escapeNamespace

/**
 * @since 0.1.0
 * @category keys
 */
export const namespaceKeys: (prefix: string, namespace: string) => NamespaceKeys = Keys.namespaceKeys

/**
 * The canonical JSON of a value: object keys sorted recursively, no whitespace. Fails on values JSON cannot hold
 * (NaN, Infinity, bigint, a bare `undefined`).
 *
 * @since 0.1.0
 * @category keys
 */
export const canonicalJson = (value: unknown): Either.Either<string, unknown> =>
  Either.try({ try: () => Keys.canonicalJson(value), catch: (error) => error })

/**
 * The 64-hex BLAKE3 digest of a cacheable's name and a query's canonical JSON.
 *
 * @since 0.1.0
 * @category keys
 */
export const digest: (name: string, canonicalQuery: string, fingerprint?: string | undefined) => string = Keys.digest

/**
 * Derives the keys of one query in its namespace: encodes it with the cacheable's query schema (`SerdeError` with
 * subject `query` when it does not encode), then digests its canonical JSON.
 *
 * @since 0.1.0
 * @category keys
 */
export const make = <Q, A, E, R>(
  namespace: NamespaceKeys,
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Effect.Effect<CacheKey, SerdeError> => Effect.suspend(() => internal.unsafeMake(namespace, cacheable, query))
