/**
 * The fingerprint of a response schema: what its encoded form looks like — the JSON an entry holds — described as
 * plain JSON and hashed. Two schemas whose encoded forms have the same shape get the same fingerprint in every
 * process (nothing in the description depends on object identity, function source or declaration order of object
 * keys); a field added, removed, renamed, made optional or given another type changes it.
 *
 * What it cannot see: refinements (`Schema.positive()`, `minLength`, …) — a filter is a function, so a refined
 * schema has the fingerprint of what it refines — and the inside of declarations (`Schema.declare`), which count by
 * their identifier annotation only. Give an explicit `responseVersion` string when such a change must split entries.
 *
 * The description is of Effect 3's encoded-side AST (`SchemaAST.encodedAST`), in grammar `s1`, hashed by the wire
 * package (`Keys.schemaFingerprint`). The Effect 4 package describes Schema 4's AST in the same grammar, node for
 * node, so the two agree for Schema 3 and Schema 4 declarations of one encoded shape (checked for the common forms
 * by `packages/effect4/test/fingerprint.test.ts`); an explicit version string is the sure choice across the two.
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

const literal = (value: SchemaAST.LiteralValue): unknown => typeof value === "bigint" ? `${value}n` : value

const describe = (ast: SchemaAST.AST, seen: Map<SchemaAST.AST, number>): unknown => {
  switch (ast._tag) {
    case "Literal":
      return { literal: literal(ast.literal) }
    case "UniqueSymbol":
      return { symbol: String(ast.symbol) }
    case "Enums":
      return { enums: ast.enums.map(([name, value]) => [name, value]) }
    case "TemplateLiteral":
      return { template: [ast.head, ...ast.spans.map((span) => [describe(span.type, seen), span.literal])] }
    case "TypeLiteral":
      return {
        object: ast.propertySignatures
          .map((p) => [String(p.name), p.isOptional, describe(p.type, seen)] as const)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        index: ast.indexSignatures.map((i) => [describe(i.parameter, seen), describe(i.type, seen)])
      }
    case "TupleType":
      return {
        tuple: ast.elements.map((e) => [e.isOptional, describe(e.type, seen)]),
        rest: ast.rest.map((r) => describe(r.type, seen))
      }
    case "Union":
      return { union: ast.types.map((t) => describe(t, seen)) }
    case "Suspend": {
      // Recursive schemas: the second visit of a node names the first.
      const at = seen.get(ast)
      if (at !== undefined) return { ref: at }
      seen.set(ast, seen.size)
      return { suspend: describe(ast.f(), seen) }
    }
    case "Refinement":
      return describe(ast.from, seen)
    case "Transformation":
      return describe(ast.from, seen)
    case "Declaration":
      return {
        declaration: Option.getOrElse(SchemaAST.getIdentifierAnnotation(ast), () => "?"),
        parameters: ast.typeParameters.map((t) => describe(t, seen))
      }
    default:
      return ast._tag
  }
}

const fingerprints = new WeakMap<SchemaAST.AST, string>()

/**
 * The fingerprint of a response schema's encoded form: `s1:` and 32 hex of BLAKE3 over the canonical JSON of its
 * description (`s1` names this description's grammar, so a later one cannot collide with it).
 */
export const ofSchema = (schema: Schema.Schema<any, any, never>): string => {
  let fingerprint = fingerprints.get(schema.ast)
  if (fingerprint === undefined) {
    fingerprint = Keys.schemaFingerprint(describe(SchemaAST.encodedAST(schema.ast), new Map()))
    fingerprints.set(schema.ast, fingerprint)
  }
  return fingerprint
}
