/**
 * Key derivation. Every key the cache writes lives under `<prefix>:{ns:<namespace>}:…`:
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
import { blake3 } from "@noble/hashes/blake3.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"
import canonicalizeModule from "canonicalize"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { SerdeError } from "./CacheError.js"
import type { Cacheable } from "./Cacheable.js"
import { BoundedMap } from "./internal/boundedMap.js"

/**
 * The keys of one namespace.
 *
 * @since 0.1.0
 * @category models
 */
export interface NamespaceKeys {
  readonly namespace: string
  readonly generation: string
  /** Holds the last generation an entry was written under: while it is not the current one, no entry is. */
  readonly written: string
  /** The entry keys of this namespace are `entryPrefix + digest`. */
  readonly entryPrefix: string
  /** A SCAN pattern matching exactly this namespace's entries. */
  readonly entryPattern: string
  readonly lockPrefix: string
}

/**
 * The keys of one query.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheKey {
  readonly namespace: NamespaceKeys
  readonly digest: string
  readonly entry: string
  readonly lock: string
}

// canonicalize is CommonJS (`module.exports = serialize`) while its types declare an ES default export.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined

const validPrefix = /^[A-Za-z0-9._:-]+$/

/**
 * Why a key prefix is unusable, if it is.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkPrefix = (prefix: string): string | undefined =>
  validPrefix.test(prefix)
    ? undefined
    : `Invalid cache key prefix ${JSON.stringify(prefix)}: use letters, digits and . _ : - only`

// Characters with a meaning in keys (hash tags), in SCAN patterns, or in our own escape; and lone surrogates,
// which would all become U+FFFD on the wire.
const special = /[%{}*?[\]\\]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

const escapeChar = (char: string): string => {
  const code = char.charCodeAt(0)
  return code > 0xff ? `%u${code.toString(16).toUpperCase()}` : `%${code.toString(16).toUpperCase().padStart(2, "0")}`
}

/**
 * Escapes a namespace injectively for use inside a key and a SCAN pattern.
 *
 * @since 0.1.0
 * @category keys
 */
export const escapeNamespace = (namespace: string): string => namespace.replace(special, escapeChar)

/**
 * @since 0.1.0
 * @category keys
 */
export const namespaceKeys = (prefix: string, namespace: string): NamespaceKeys => {
  const memoKey = `${prefix}\u0000${namespace}`
  let keys = namespaces.get(memoKey)
  if (keys === undefined) {
    keys = deriveNamespaceKeys(prefix, namespace)
    namespaces.set(memoKey, keys)
  }
  return keys
}

const namespaces = new BoundedMap<string, NamespaceKeys>(10_000)

const deriveNamespaceKeys = (prefix: string, namespace: string): NamespaceKeys => {
  const base = `${prefix}:{ns:${escapeNamespace(namespace)}}`
  return {
    namespace,
    generation: `${base}:g`,
    written: `${base}:w`,
    entryPrefix: `${base}:e:`,
    entryPattern: `${base}:e:*`,
    lockPrefix: `${base}:l:`
  }
}

/**
 * The canonical JSON of a value: object keys sorted recursively, no whitespace. Fails on values JSON cannot hold
 * (NaN, Infinity, bigint, a bare `undefined`).
 *
 * @since 0.1.0
 * @category keys
 */
export const canonicalJson = (value: unknown): Either.Either<string, unknown> => {
  try {
    const json = canonicalize(value)
    return json === undefined ? Either.left(new Error("the value has no JSON form")) : Either.right(json)
  } catch (error) {
    return Either.left(error)
  }
}

/**
 * The 64-hex BLAKE3 digest of a cacheable's name and a query's canonical JSON. The name is written as a JSON
 * string, which ends unambiguously, so no name/query pair shares its input with another.
 *
 * @since 0.1.0
 * @category keys
 */
export const digest = (name: string, canonicalQuery: string): string => {
  const input = JSON.stringify(name) + canonicalQuery
  let hex = digests.get(input)
  if (hex === undefined) {
    hex = bytesToHex(blake3(utf8ToBytes(input)))
    digests.set(input, hex)
  }
  return hex
}

// BLAKE3 of a ~90-byte query costs a few µs: hot queries are digested once.
const digests = new BoundedMap<string, string>(10_000)

const encoders = new WeakMap<Schema.Schema<any, any, never>, (query: unknown) => Either.Either<unknown, unknown>>()

const encoderFor = (schema: Schema.Schema<any, any, never>) => {
  let encode = encoders.get(schema)
  if (encode === undefined) {
    encode = Schema.encodeEither(schema) as (query: unknown) => Either.Either<unknown, unknown>
    encoders.set(schema, encode)
  }
  return encode
}

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
): Effect.Effect<CacheKey, SerdeError> => Effect.suspend(() => unsafeMake(namespace, cacheable, query))

/**
 * `make`, evaluated at once.
 *
 * @since 0.1.0
 * @category keys
 */
export const unsafeMake = <Q, A, E, R>(
  namespace: NamespaceKeys,
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Either.Either<CacheKey, SerdeError> => {
  const encoded = encoderFor(cacheable.query)(query)
  if (Either.isLeft(encoded)) return Either.left(new SerdeError({ subject: "query", cause: encoded.left }))
  const json = canonicalJson(encoded.right)
  if (Either.isLeft(json)) return Either.left(new SerdeError({ subject: "query", cause: json.left }))
  const hex = digest(cacheable.name, json.right)
  return Either.right({ namespace, digest: hex, entry: namespace.entryPrefix + hex, lock: namespace.lockPrefix + hex })
}
