/**
 * Key derivation. Every key the cache writes lives under `<prefix>:{ns:<namespace>}:…`:
 *
 * - `…:g`            the namespace's generation: a unique token, created by the first lookup or write that finds
 *                    none. An invalidation DELetes it (one O(1) command, which Redis accepts even when it is full
 *                    under `noeviction`, where a SET is refused), so no stored entry is current any more; the next
 *                    lookup creates a new token. Processes that still replace it with `SET … XX KEEPTTL` interoperate:
 *                    either way no entry of the old token is current again;
 * - `…:w`            the last generation any entry was written under (so a sweep knows when none is current);
 * - `…:e:<digest>`   an entry, where `<digest>` is the 64-hex BLAKE3 of the cacheable's name, its response
 *                    fingerprint when it has one (see `digest`), and the canonical JSON of the query's encoded form;
 * - `…:l:<digest>`   the cross-process resolve lock of one entry.
 *
 * The namespace is escaped injectively (`%`, braces, glob characters and lone surrogates become `%XX` / `%uXXXX`),
 * so the hash tag `{ns:…}` ends where we mean it to — one namespace is one Redis Cluster slot — no two namespaces
 * share a key, and the sweep pattern `…:e:*` of one namespace can never match another's keys.
 *
 * Pub/sub: `<prefix>:lock-released` carries the entry key whose lock was released; `<prefix>:near` carries what a
 * process changed (`e:<entry key>` or `n:<generation key>`), for near-caches.
 *
 * @since 0.1.0
 */
import { blake3 } from "@noble/hashes/blake3.js"
import { utf8ToBytes } from "@noble/hashes/utils.js"
import canonicalizeModule from "canonicalize"
import { BoundedMap } from "./BoundedMap.js"

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
 * The keys of the query whose digest is `hex`, in its namespace.
 *
 * @since 0.1.0
 * @category keys
 */
export const cacheKey = (namespace: NamespaceKeys, hex: string): CacheKey => ({
  namespace,
  digest: hex,
  entry: namespace.entryPrefix + hex,
  lock: namespace.lockPrefix + hex
})

/**
 * The canonical JSON of a value: object keys sorted recursively, no whitespace. Throws on values JSON cannot hold
 * (NaN, Infinity, bigint, a bare `undefined`).
 *
 * @since 0.1.0
 * @category keys
 */
export const canonicalJson = (value: unknown): string => {
  const json = canonicalize(value)
  if (json === undefined) throw new Error("the value has no JSON form")
  return json
}

/**
 * The 64-hex BLAKE3 digest of a cacheable's name, its response fingerprint if it has one, and a query's canonical
 * JSON. The name is written as a JSON string, which ends unambiguously; a fingerprint follows as `@` and a JSON
 * string (`@` starts no JSON value), so no name/fingerprint/query triple shares its input with another — and a
 * digest without a fingerprint is the one every earlier version computed.
 *
 * The fingerprint says which response schema the entry was written under: an entry written under another one has
 * another key, so a reader never meets it (a miss, in every mode), and processes on two schemas side by side (a
 * rolling deploy) never overwrite each other's entries. It only ever splits entries: generations and locks do not
 * depend on it, so invalidation is shared whatever the fingerprints.
 *
 * @since 0.1.0
 * @category keys
 */
export const digest = (name: string, canonicalQuery: string, fingerprint?: string | undefined): string => {
  const input = fingerprint === undefined
    ? JSON.stringify(name) + canonicalQuery
    : JSON.stringify(name) + "@" + JSON.stringify(fingerprint) + canonicalQuery
  let hex = digests.get(input)
  if (hex === undefined) {
    hex = hexOf(blake3(utf8Of(input)))
    digests.set(input, hex)
  }
  return hex
}

// Flat: noble's `bytesToHex` (before Node has `Uint8Array.prototype.toHex`) appends two characters at a time, and
// the string it returns is a chain of ~26 cons-string nodes. A key memo holds thousands of digests, and such a chain
// is ~900 bytes where the flat string is 64 bytes: every young-generation collection copied them.
const hexOf = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

// The UTF-8 bytes of a digest's input, in one buffer reused from call to call (the hash reads it and keeps nothing):
// `utf8ToBytes` makes a TextEncoder and two arrays per call, which cost more than the BLAKE3 itself. Inputs that
// may not fit (a UTF-16 code unit takes at most 3 bytes) get bytes of their own.
const encoder = new TextEncoder()
const scratch = new Uint8Array(16 * 1024)
const utf8Of = (input: string): Uint8Array =>
  input.length * 3 <= scratch.length
    ? scratch.subarray(0, encoder.encodeInto(input, scratch).written)
    : encoder.encode(input)

/**
 * The fingerprint of an explicit response version (`responseVersion: "<version>"` in either package): `v:` and
 * the version, so it can never equal a schema fingerprint (`s1:…`) whatever the string.
 *
 * @since 0.1.0
 * @category keys
 */
export const versionFingerprint = (version: string): string => `v:${version}`

/**
 * The fingerprint of a response schema, from a plain-JSON description of its encoded form (each package describes
 * its own Schema's AST in one grammar, `s1`): `s1:` and 32 hex of BLAKE3 over the description's canonical JSON.
 *
 * @since 0.1.0
 * @category keys
 */
export const schemaFingerprint = (description: unknown): string =>
  `s1:${hexOf(blake3(utf8ToBytes(canonicalJson(description)))).slice(0, 32)}`

// BLAKE3 of a ~90-byte query costs a few µs: hot queries are digested once.
const digests = new BoundedMap<string, string>(10_000)

/**
 * The channel on which a released lock names its entry key.
 *
 * @since 0.1.0
 * @category channels
 */
export const lockReleasedChannel = (prefix: string): string => `${prefix}:lock-released`

/**
 * The channel on which processes announce what they changed, for near-caches.
 *
 * @since 0.1.0
 * @category channels
 */
export const nearChannel = (prefix: string): string => `${prefix}:near`

/**
 * What a near-cache channel message says: an entry changed (`e:<entry key>`) or a namespace's generation did
 * (`n:<generation key>`).
 *
 * @since 0.1.0
 * @category channels
 */
export type NearMessage =
  | { readonly _tag: "Entry"; readonly entry: string }
  | { readonly _tag: "Namespace"; readonly generation: string }

/**
 * @since 0.1.0
 * @category channels
 */
export const nearMessage = (message: NearMessage): string =>
  message._tag === "Entry" ? `e:${message.entry}` : `n:${message.generation}`

/**
 * @since 0.1.0
 * @category channels
 */
export const parseNearMessage = (message: string): NearMessage =>
  message.startsWith("n:")
    ? { _tag: "Namespace", generation: message.slice(2) }
    : { _tag: "Entry", entry: message.slice(2) }
