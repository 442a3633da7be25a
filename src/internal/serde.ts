/**
 * Serde of responses: schema encode + JSON text on the way in, JSON.parse + schema decode on the way out, each
 * failure a `SerdeError`. `DecodeMemo` keeps the last payload decoded per entry, so a hit whose bytes did not
 * change is not decoded again.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { SerdeError } from "../CacheError.js"
import type * as CacheKey from "../CacheKey.js"

type AnySchema = Schema.Schema<any, any, never>

const memoBySchema = <F>(build: (schema: AnySchema) => F) => {
  const memo = new WeakMap<AnySchema, F>()
  return (schema: AnySchema): F => {
    let f = memo.get(schema)
    if (f === undefined) {
      f = build(schema)
      memo.set(schema, f)
    }
    return f
  }
}

const encoderFor = memoBySchema((schema) => Schema.encodeEither(schema))
const decoderFor = memoBySchema((schema) => Schema.decodeUnknownEither(schema))

/** The response's JSON text, or `SerdeError` when it does not encode (or has no JSON form, e.g. a bigint). */
export const encodeResponse = <A>(
  schema: Schema.Schema<A, any, never>,
  value: A
): Either.Either<string, SerdeError> => {
  const encoded = encoderFor(schema)(value)
  if (Either.isLeft(encoded)) return Either.left(new SerdeError({ subject: "response", cause: encoded.left }))
  try {
    const json = JSON.stringify(encoded.right)
    return json === undefined
      ? Either.left(new SerdeError({ subject: "response", cause: new Error("the value has no JSON form") }))
      : Either.right(json)
  } catch (cause) {
    return Either.left(new SerdeError({ subject: "response", cause }))
  }
}

/** The stored JSON text decoded with the response schema, or `SerdeError` (a corrupt or outdated entry). */
export const decodeEntry = <A>(schema: Schema.Schema<A, any, never>, payload: string): Either.Either<A, SerdeError> => {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch (cause) {
    return Either.left(new SerdeError({ subject: "entry", cause }))
  }
  return Either.mapLeft(decoderFor(schema)(json), (cause) => new SerdeError({ subject: "entry", cause }))
}

interface Memo {
  readonly schema: AnySchema
  readonly payload: string
  readonly value: unknown
}

/**
 * The last payload decoded for each entry key, with its value: a hit whose bytes are the same as last time
 * (compared in full, just read from the store) needs no JSON.parse and no schema decode. Safe because the
 * comparison is of the whole payload, never of a version or a hash.
 *
 * Bounded in entries (`capacity`) and in payload characters (`maxChars`: the payload string and, roughly, the
 * decoded value it stands for are kept), as `BoundedMap` is: two generations of half the bound each, the older
 * dropped whole when the newer is full, what is read carried over. A payload over half `maxChars` is not kept.
 */
export class DecodeMemo {
  private current = new Map<string, Memo>()
  private previous = new Map<string, Memo>()
  private currentChars = 0
  private readonly halfEntries: number
  private readonly halfChars: number

  constructor(options: { readonly capacity?: number; readonly maxChars?: number } = {}) {
    this.halfEntries = Math.max(1, Math.floor((options.capacity ?? 10_000) / 2))
    this.halfChars = Math.max(1, Math.floor((options.maxChars ?? 64 * 1024 * 1024) / 2))
  }

  /** Payload characters held (both generations). */
  get chars(): number {
    let chars = 0
    for (const memo of this.previous.values()) chars += memo.payload.length
    return chars + this.currentChars
  }

  private remember(key: string, memo: Memo): void {
    const size = memo.payload.length
    if (size > this.halfChars) return
    const replaced = this.current.get(key)
    if (replaced !== undefined) {
      this.currentChars -= replaced.payload.length
    } else if (this.current.size >= this.halfEntries || this.currentChars + size > this.halfChars) {
      this.previous = this.current
      this.current = new Map()
      this.currentChars = 0
    }
    this.current.set(key, memo)
    this.currentChars += size
  }

  decode<A>(
    schema: Schema.Schema<A, any, never>,
    key: CacheKey.CacheKey,
    payload: string
  ): Either.Either<A, SerdeError> {
    let memo = this.current.get(key.entry)
    if (memo === undefined) {
      memo = this.previous.get(key.entry)
      if (memo !== undefined) {
        this.previous.delete(key.entry)
        this.remember(key.entry, memo)
      }
    }
    if (memo !== undefined && memo.payload === payload && memo.schema === schema) {
      return Either.right(memo.value as A)
    }
    const decoded = decodeEntry(schema, payload)
    if (Either.isRight(decoded)) this.remember(key.entry, { schema, payload, value: decoded.right })
    return decoded
  }
}
