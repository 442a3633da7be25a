/**
 * Key derivation. The layout itself — `<prefix>:{ns:<escaped namespace>}:…`, the BLAKE3 digest over the
 * cacheable's name, its response version if it has one, and the canonical JSON of the encoded query — is the wire
 * package's `Keys`, shared with the Effect 3 package, so both derive the same keys for the same name, version and
 * encoded query.
 *
 * @since 0.1.0
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type { Cacheable } from "./Cacheable.js"
import { SerdeError } from "./CacheError.js"

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
 * @since 0.1.0
 * @category keys
 */
export const namespaceKeys: (prefix: string, namespace: string) => NamespaceKeys = Keys.namespaceKeys

const encoders = new WeakMap<Schema.Top, (query: unknown) => Result.Result<unknown, Schema.SchemaError>>()

const encoderFor = (schema: Schema.Codec<any, any, never, never>) => {
  let encode = encoders.get(schema)
  if (encode === undefined) {
    encode = Schema.encodeUnknownResult(schema)
    encoders.set(schema, encode)
  }
  return encode
}

/**
 * Derives the keys of one query in its namespace, at once: encodes it with the cacheable's query schema
 * (`SerdeError` with subject `query` when it does not encode), then digests its canonical JSON.
 *
 * @since 0.1.0
 * @category keys
 */
export const derive = <Q, A, E, R>(
  namespace: NamespaceKeys,
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Result.Result<CacheKey, SerdeError> => {
  const encoded = encoderFor(cacheable.query)(query)
  if (Result.isFailure(encoded)) return Result.fail(new SerdeError({ subject: "query", cause: encoded.failure }))
  let json: string
  try {
    json = Keys.canonicalJson(encoded.success)
  } catch (cause) {
    return Result.fail(new SerdeError({ subject: "query", cause }))
  }
  return Result.succeed(Keys.cacheKey(namespace, Keys.digest(cacheable.name, json, cacheable.fingerprint)))
}

/**
 * `derive` as an effect.
 *
 * @since 0.1.0
 * @category keys
 */
export const make = <Q, A, E, R>(
  namespace: NamespaceKeys,
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Effect.Effect<CacheKey, SerdeError> => Effect.suspend(() => Effect.fromResult(derive(namespace, cacheable, query)))
