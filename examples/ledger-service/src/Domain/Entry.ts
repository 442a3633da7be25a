/**
 * Ledger entries: what a client posts (`NewEntry`, validated strictly) and what the ledger stores (`Entry`).
 * Amounts are exact decimals (`BigDecimal`), never floats.
 */
import { BigDecimal, Schema } from "effect"
import { IsoDate } from "../LedgerSnapshot.js"

const example = "6b1f3c2a-0d4e-4f5a-8b6c-7d8e9f0a1b2c"

/**
 * A tenant id: a UUID, lower-cased on the way in, so that one tenant has one cache namespace whatever the case.
 * The OpenAPI document says `format: uuid` (the lower-casing step would otherwise leave a plain string there).
 */
export const TenantId = Schema.Lowercase.pipe(
  Schema.compose(Schema.UUID.annotations({ message: () => `expected a UUID, e.g. ${example}` })),
  Schema.annotations({
    identifier: "TenantId",
    description: "A tenant's id (a UUID; upper case is accepted and means the same tenant)",
    examples: [example],
    jsonSchema: { type: "string", format: "uuid", examples: [example] }
  })
)

/** A calendar date the ledger can keep: an `IsoDate` from year 0001 on (PostgreSQL has no year 0000). */
export const LedgerDate = IsoDate.pipe(
  Schema.filter((date) => !date.startsWith("0000-") || "year 0000 is not a calendar year: use 0001 to 9999"),
  Schema.annotations({
    identifier: "LedgerDate",
    description: "A calendar date, YYYY-MM-DD, from 0001-01-01 on",
    examples: [IsoDate.make("2025-06-30")],
    jsonSchema: { type: "string", format: "date", pattern: "^\\d{4}-\\d{2}-\\d{2}$", examples: ["2025-06-30"] }
  })
)

/** An account name: letters, digits and `._:-`, 1 to 64 characters. */
export const Account = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._:-]{1,64}$/, {
    message: () => "expected an account name of 1 to 64 letters, digits or ._:- (e.g. cash, revenue:eu)"
  }),
  Schema.annotations({ identifier: "Account" })
)

/** At most 15 digits before the point and 4 after: what `numeric(19, 4)` holds, so both ledgers agree. */
const decimalString = /^-?\d{1,15}(\.\d{1,4})?$/

/** A posted amount: a decimal string, parsed exactly into a `BigDecimal`; never zero. */
export const Amount = Schema.String.pipe(
  Schema.pattern(decimalString, {
    message: () =>
      "expected a decimal string such as \"125.50\" or \"-3.2\" (at most 15 digits before the point, 4 after)"
  }),
  Schema.compose(Schema.BigDecimal),
  Schema.filter((amount) => !BigDecimal.isZero(amount) || "amount must not be zero"),
  Schema.annotations({ identifier: "Amount", examples: [BigDecimal.unsafeFromString("125.50")] })
)

/** The body of `POST /tenants/{tenantId}/entries`; unknown fields are rejected rather than ignored. */
export const NewEntry = Schema.Struct({
  account: Account,
  amount: Amount,
  postedOn: LedgerDate
}).annotations({
  identifier: "NewEntry",
  parseOptions: { onExcessProperty: "error" },
  examples: [{ account: "cash", amount: BigDecimal.unsafeFromString("100.25"), postedOn: IsoDate.make("2025-06-01") }]
})

export type NewEntry = typeof NewEntry.Type

/** A stored entry. */
export const Entry = Schema.Struct({
  id: Schema.UUID,
  tenantId: Schema.UUID,
  account: Schema.String,
  amount: Schema.BigDecimal,
  postedOn: IsoDate
}).annotations({ identifier: "Entry" })

export type Entry = typeof Entry.Type
