/**
 * The fingerprint of a response schema (`responseVersion: true`): what its encoded form looks like — the JSON an
 * entry holds — described as plain JSON and hashed by the wire package (`Keys.schemaFingerprint`).
 *
 * The description is written in the grammar of the Effect 3 package's (`src/internal/fingerprint.ts`, grammar
 * `s1`), node for node over Schema 4's encoded AST (`SchemaAST.toEncoded`): Schema 4's `String` node is described as
 * Schema 3's `StringKeyword`, `Objects` as a `TypeLiteral`, `Arrays` as a `TupleType`, `Null` as the literal null,
 * and so on. So a Schema 3 and a Schema 4 declaration of the same encoded shape get the same fingerprint, and the
 * two packages share entries under `responseVersion: true` too — checked, for the schema forms listed in the test
 * (`test/fingerprint.test.ts`), against the Effect 3 package's own function.
 *
 * What it cannot see, as in the Effect 3 package: checks (`Schema.isGreaterThan`, …, Schema 3's refinements) and
 * the inside of declarations, which count by their identifier only. A form outside the tested list may describe
 * differently in the two packages: that costs shared hits (each package keys its own entries), never correctness.
 * An explicit version string is the portable choice.
 */
import { Keys } from "@ledgerlink/response-cache-wire"
import * as SchemaAST from "effect/SchemaAST"

const literal = (value: SchemaAST.LiteralValue): unknown => typeof value === "bigint" ? `${value}n` : value

/** Schema 3's keyword tags, for the Schema 4 nodes that have no structure. */
const keywords: Record<string, string> = {
  String: "StringKeyword",
  Number: "NumberKeyword",
  Boolean: "BooleanKeyword",
  BigInt: "BigIntKeyword",
  Symbol: "SymbolKeyword",
  Undefined: "UndefinedKeyword",
  Void: "VoidKeyword",
  Never: "NeverKeyword",
  Unknown: "UnknownKeyword",
  Any: "AnyKeyword",
  ObjectKeyword: "ObjectKeyword"
}

const describe = (ast: SchemaAST.AST, seen: Map<SchemaAST.AST, number>): unknown => {
  switch (ast._tag) {
    case "Null":
      return { literal: null }
    case "Literal":
      return { literal: literal(ast.literal) }
    case "UniqueSymbol":
      return { symbol: String(ast.symbol) }
    case "Enum":
      return { enums: ast.enums.map(([name, value]) => [name, value]) }
    case "TemplateLiteral": {
      // Schema 3 keeps a head and spans of (type, following text); Schema 4 a flat list of parts.
      let head = ""
      const spans: Array<[unknown, string]> = []
      for (const part of ast.parts) {
        if (part._tag === "Literal") {
          if (spans.length === 0) head += String(part.literal)
          else spans[spans.length - 1]![1] += String(part.literal)
        } else {
          spans.push([describe(part, seen), ""])
        }
      }
      return { template: [head, ...spans] }
    }
    case "Objects":
      return {
        object: ast.propertySignatures
          .map((p) => [String(p.name), SchemaAST.isOptional(p.type), describe(p.type, seen)] as const)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        index: ast.indexSignatures.map((i) => [describe(i.parameter, seen), describe(i.type, seen)])
      }
    case "Arrays":
      return {
        tuple: ast.elements.map((e) => [SchemaAST.isOptional(e), describe(e, seen)]),
        rest: ast.rest.map((r) => describe(r, seen))
      }
    case "Union":
      return { union: ast.types.map((t) => describe(t, seen)) }
    case "Suspend": {
      // Recursive schemas: the second visit of a node names the first.
      const at = seen.get(ast)
      if (at !== undefined) return { ref: at }
      seen.set(ast, seen.size)
      return { suspend: describe(ast.thunk(), seen) }
    }
    case "Declaration":
      return {
        declaration: SchemaAST.resolveIdentifier(ast) ?? "?",
        parameters: ast.typeParameters.map((t) => describe(t, seen))
      }
    default:
      return keywords[ast._tag] ?? ast._tag
  }
}

const fingerprints = new WeakMap<SchemaAST.AST, string>()

/**
 * The fingerprint of a response schema's encoded form: `s1:` and 32 hex of BLAKE3 over its description.
 */
export const ofSchema = (schema: { readonly ast: SchemaAST.AST }): string => {
  let fingerprint = fingerprints.get(schema.ast)
  if (fingerprint === undefined) {
    fingerprint = Keys.schemaFingerprint(describe(SchemaAST.toEncoded(schema.ast), new Map()))
    fingerprints.set(schema.ast, fingerprint)
  }
  return fingerprint
}
