/**
 * `responseVersion: true` across the packages: the Effect 4 package's fingerprint of a Schema 4 response schema is
 * the Effect 3 package's fingerprint of the Schema 3 declaration of the same encoded shape, so the two share entries
 * under it. Both functions run here side by side: the Effect 3 one is imported from the repository root, where
 * `effect` resolves to Effect 3.
 */
import { assert, describe, it } from "@effect/vitest"
import * as S4 from "effect/Schema"
import { ofSchema as of3, Schema as S3 } from "../../../test/support/schema3.js"
import * as Fingerprint4 from "../src/internal/fingerprint.js"

class Account3 extends S3.Class<Account3>("Account")({ id: S3.String, total: S3.Number }) {}
class Account4 extends S4.Class<Account4>("Account")({ id: S4.String, total: S4.Number }) {}

const s3 = S3
/** Pairs of a Schema 3 and a Schema 4 declaration of the same encoded form. */
const pairs: ReadonlyArray<readonly [string, S3.Schema<any, any, never>, { readonly ast: any }]> = [
  ["String", s3.String, S4.String],
  ["Number", s3.Number, S4.Number],
  ["Boolean", s3.Boolean, S4.Boolean],
  ["Unknown", s3.Unknown, S4.Unknown],
  ["Null", s3.Null, S4.Null],
  ["Literal", s3.Literal("EUR"), S4.Literal("EUR")],
  ["Literals", s3.Literal("EUR", "USD"), S4.Literals(["EUR", "USD"])],
  ["Struct", s3.Struct({ id: s3.String, total: s3.Number }), S4.Struct({ total: S4.Number, id: S4.String })],
  [
    "optional field",
    s3.Struct({ id: s3.String, note: s3.optional(s3.String) }),
    S4.Struct({ id: S4.String, note: S4.optional(S4.String) })
  ],
  [
    "exact optional field",
    s3.Struct({ id: s3.String, note: s3.optionalWith(s3.String, { exact: true }) }),
    S4.Struct({ id: S4.String, note: S4.optionalKey(S4.String) })
  ],
  ["NullOr", s3.NullOr(s3.String), S4.NullOr(S4.String)],
  ["Array", s3.Array(s3.Struct({ n: s3.Number })), S4.Array(S4.Struct({ n: S4.Number }))],
  ["Tuple", s3.Tuple(s3.String, s3.Number), S4.Tuple([S4.String, S4.Number])],
  ["Record", s3.Record({ key: s3.String, value: s3.Number }), S4.Record(S4.String, S4.Number)],
  [
    "Union of structs",
    s3.Union(s3.Struct({ a: s3.String }), s3.Struct({ b: s3.Number })),
    S4.Union([
      S4.Struct({ a: S4.String }),
      S4.Struct({ b: S4.Number })
    ])
  ],
  ["refinements do not count", s3.Number.pipe(s3.int()), S4.Int],
  ["a transformation counts by its encoded side", s3.NumberFromString, S4.NumberFromString],
  ["Class", Account3, Account4],
  [
    "nested",
    s3.Struct({
      account: s3.String,
      lines: s3.Array(s3.Struct({ amount: s3.String, currency: s3.Literal("EUR", "USD"), memo: s3.NullOr(s3.String) }))
    }),
    S4.Struct({
      account: S4.String,
      lines: S4.Array(
        S4.Struct({ amount: S4.String, currency: S4.Literals(["EUR", "USD"]), memo: S4.NullOr(S4.String) })
      )
    })
  ]
]

describe("response fingerprints across the packages", () => {
  for (const [label, schema3, schema4] of pairs) {
    it(`${label}: the same fingerprint in both packages`, () => {
      assert.match(Fingerprint4.ofSchema(schema4), /^s1:[0-9a-f]{32}$/)
      assert.strictEqual(Fingerprint4.ofSchema(schema4), of3(schema3))
    })
  }

  it("a field added, removed, renamed, made optional or given another type changes it", () => {
    const base = Fingerprint4.ofSchema(S4.Struct({ id: S4.String, total: S4.Number }))
    for (
      const other of [
        S4.Struct({ id: S4.String }),
        S4.Struct({ id: S4.String, total: S4.Number, currency: S4.String }),
        S4.Struct({ key: S4.String, total: S4.Number }),
        S4.Struct({ id: S4.String, total: S4.optionalKey(S4.Number) }),
        S4.Struct({ id: S4.String, total: S4.String })
      ]
    ) assert.notStrictEqual(Fingerprint4.ofSchema(other), base)
  })
})
