/**
 * Key derivation evaluated at once, for the engine's hot path (the public form is `CacheKey.make`).
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Cacheable } from "../Cacheable.js"
import { SerdeError } from "../CacheError.js"

const encoders = new WeakMap<Schema.Schema<any, any, never>, (query: unknown) => Either.Either<unknown, unknown>>()

const encoderFor = (schema: Schema.Schema<any, any, never>) => {
  let encode = encoders.get(schema)
  if (encode === undefined) {
    encode = Schema.encodeEither(schema) as (query: unknown) => Either.Either<unknown, unknown>
    encoders.set(schema, encode)
  }
  return encode
}

/** `CacheKey.make`, evaluated at once: the engine's hot path. */
export const unsafeMake = <Q, A, E, R>(
  namespace: Keys.NamespaceKeys,
  cacheable: Cacheable<Q, A, E, R>,
  query: Q
): Either.Either<Keys.CacheKey, SerdeError> => {
  const encoded = encoderFor(cacheable.query)(query)
  if (Either.isLeft(encoded)) return Either.left(new SerdeError({ subject: "query", cause: encoded.left }))
  const json = Either.try({ try: () => Keys.canonicalJson(encoded.right), catch: (error) => error })
  if (Either.isLeft(json)) return Either.left(new SerdeError({ subject: "query", cause: json.left }))
  return Either.right(Keys.cacheKey(namespace, Keys.digest(cacheable.name, json.right, cacheable.fingerprint)))
}
