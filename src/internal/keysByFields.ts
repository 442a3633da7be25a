/**
 * Keys of queries found by their field values, for the hot path.
 *
 * A query whose schema is a plain struct — required string-named fields, no index signature, no parse options of
 * its own — encodes to a function of its field values alone (excess properties are dropped). So when every field
 * holds a primitive, those values, looked up in a tree of `Map`s with one level per field, find the key derived
 * from the first query that had them: no schema encode, no canonical JSON, no hashing of freshly built strings.
 * Only keys that were derived successfully are kept, so a query that would not encode never finds one.
 */
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import type { CacheKey } from "../CacheKey.js"

type Level = Map<unknown, unknown>

/** The field names of a plain struct schema, in a fixed order; undefined when the schema is anything else. */
const plainFields = (schema: Schema.Schema<any, any, never>): ReadonlyArray<string> | undefined => {
  const ast = schema.ast
  if (ast._tag !== "TypeLiteral" || ast.indexSignatures.length > 0 || ast.propertySignatures.length === 0) {
    return undefined
  }
  // Parse options such as `onExcessProperty: "error"` make the encode depend on more than the fields' values.
  if (Option.isSome(AST.getParseOptionsAnnotation(ast))) return undefined
  const fields: Array<string> = []
  for (const property of ast.propertySignatures) {
    if (property.isOptional || typeof property.name !== "string") return undefined
    fields.push(property.name)
  }
  return fields
}

const isPrimitive = (value: unknown) => value === null || (typeof value !== "object" && typeof value !== "function")

/**
 * The memo of one cacheable in one cache. Holds at most `capacity` keys: when full, it starts over (a bound, not
 * recency; a hot query is back in it on its next call).
 */
export class KeysByFields {
  private root: Level = new Map()
  private size = 0

  private constructor(private readonly fields: ReadonlyArray<string>, private readonly capacity: number) {}

  /** A memo for the schema's queries, or undefined when they cannot be keyed by field values. */
  static for(schema: Schema.Schema<any, any, never>, capacity: number): KeysByFields | undefined {
    const fields = plainFields(schema)
    return fields === undefined ? undefined : new KeysByFields(fields, capacity)
  }

  /** The key kept for the query's field values, if its namespace is `namespace`. */
  get(query: unknown, namespace: string): CacheKey | undefined {
    if (typeof query !== "object" || query === null) return undefined
    const fields = this.fields
    let level: unknown = this.root
    for (let i = 0; i < fields.length; i++) {
      const value = (query as Record<string, unknown>)[fields[i]!]
      if (!isPrimitive(value)) return undefined
      level = (level as Level).get(value)
      if (level === undefined) return undefined
    }
    const key = level as CacheKey
    // The namespace comes from the user's function: it may differ for the same query (a version bump).
    return key.namespace.namespace === namespace ? key : undefined
  }

  set(query: unknown, key: CacheKey): void {
    if (typeof query !== "object" || query === null) return
    const fields = this.fields
    const values: Array<unknown> = []
    for (const field of fields) {
      const value = (query as Record<string, unknown>)[field]
      if (!isPrimitive(value)) return
      values.push(value)
    }
    if (this.size >= this.capacity) {
      this.root = new Map()
      this.size = 0
    }
    let level = this.root
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]) as Level | undefined
      if (next === undefined) {
        next = new Map()
        level.set(values[i], next)
      }
      level = next
    }
    if (!level.has(values[values.length - 1])) this.size++
    level.set(values[values.length - 1], key)
  }
}
