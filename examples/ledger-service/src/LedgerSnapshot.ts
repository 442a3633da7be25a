/**
 * The seed's example: a tenant's ledger snapshot (its balance as of a date, aggregated over its journal), cached
 * per tenant. The service in `src/` resolves it from its ledger; `demo` is the seed's stub resolver.
 *
 * @since 0.1.0
 */
import { Cacheable, CachePolicy } from "@ledgerlink/response-cache"
import * as BigDecimal from "effect/BigDecimal"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const daysIn = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** `YYYY-MM-DD` (already matched) names a day of the proleptic Gregorian calendar, as `Date` counts them. */
const isCalendarDate = (s: string): boolean => {
  const year = Number(s.slice(0, 4))
  const month = Number(s.slice(5, 7))
  const day = Number(s.slice(8, 10))
  if (month < 1 || month > 12 || day < 1) return false
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  return day <= (month === 2 && leap ? 29 : daysIn[month - 1]!)
}

/**
 * A calendar date, `YYYY-MM-DD`, that exists (2024-02-30 does not).
 *
 * @since 0.1.0
 * @category schemas
 */
export const IsoDate = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}$/, { message: () => "expected a date as YYYY-MM-DD" }),
  // Arithmetic rather than a `Date` round trip: every request's path is checked with it.
  Schema.filter((s) => isCalendarDate(s) || `${s} is not a calendar date`),
  Schema.brand("IsoDate")
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type IsoDate = typeof IsoDate.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const LedgerSnapshotQuery = Schema.Struct({
  tenantId: Schema.UUID,
  asOf: IsoDate
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type LedgerSnapshotQuery = typeof LedgerSnapshotQuery.Type

/**
 * The balance is an exact decimal (stored as its string), never a float.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LedgerSnapshot = Schema.Struct({
  tenantId: Schema.UUID,
  asOf: IsoDate,
  balance: Schema.BigDecimal,
  entries: Schema.NonNegativeInt,
  generatedAt: Schema.DateTimeUtc
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type LedgerSnapshot = typeof LedgerSnapshot.Type

/**
 * The namespace of a tenant's cached responses: invalidating it drops every snapshot of that tenant.
 *
 * @since 0.1.0
 * @category keys
 */
export const tenantNamespace = (tenantId: string): string => `tenant:${tenantId}:v1`

/**
 * The namespace of a tenant's snapshots in one ledger: the ledger's identity is part of it, so that a process over
 * another ledger (a restarted embedded one, a replica on another database) never reads entries it did not write,
 * while replicas over one database share them.
 *
 * @since 0.1.0
 * @category keys
 */
export const ledgerNamespace = (ledgerId: string, tenantId: string): string =>
  `ledger:${ledgerId}:tenant:${tenantId}:v1`

/**
 * Ledger snapshots as a `Cacheable`, resolved by `resolve`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cacheable = <E, R>(
  resolve: (query: LedgerSnapshotQuery) => Effect.Effect<LedgerSnapshot, E, R>,
  policy: CachePolicy.CachePolicy = CachePolicy.medium,
  namespace: (tenantId: string) => string = tenantNamespace
): Cacheable.Cacheable<LedgerSnapshotQuery, LedgerSnapshot, E, R> =>
  Cacheable.make({
    name: "ledger-snapshot.v1",
    query: LedgerSnapshotQuery,
    response: LedgerSnapshot,
    namespace: (query) => namespace(query.tenantId),
    policy,
    resolve
  })

/**
 * The seed's stub: a heavy computation (120 ms) that answers a balance of 1234.56.
 *
 * @since 0.1.0
 * @category constructors
 */
export const demo = cacheable((query) =>
  Effect.gen(function*() {
    yield* Effect.sleep("120 millis")
    return {
      tenantId: query.tenantId,
      asOf: query.asOf,
      balance: BigDecimal.make(123456n, 2),
      entries: 0,
      generatedAt: yield* DateTime.now
    }
  })
)
