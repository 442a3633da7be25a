/**
 * The ledger: where entries are stored and a tenant's balance is aggregated. Two layers implement it, chosen from
 * `Config` in `Backends.ts`: `LedgerRepo/Embedded.ts` (in memory, seeded with demo tenants) and
 * `LedgerRepo/Postgres.ts` (`@effect/sql-pg`).
 */
import type { BigDecimal, Effect } from "effect"
import { Context } from "effect"
import type { Entry, NewEntry } from "./Domain/Entry.js"
import type { LedgerUnavailable } from "./Domain/Errors.js"
import type { LedgerBackendName } from "./Domain/Health.js"
import type { Tenant } from "./Domain/Tenant.js"
import type { LedgerSnapshotQuery } from "./LedgerSnapshot.js"

/** The aggregate behind a snapshot: the sum of the amounts posted on or before `asOf`, and how many there are. */
export interface Aggregate {
  readonly balance: BigDecimal.BigDecimal
  readonly entries: number
}

/** The ledger store; `Backends.ts` picks its layer. */
export class LedgerRepo extends Context.Tag("ledger-service/LedgerRepo")<LedgerRepo, {
  readonly backend: LedgerBackendName
  /** Where the ledger lives, for the startup line (never a secret). */
  readonly location: string
  /**
   * The ledger's identity, part of every cache namespace: a new one per start for the embedded ledger, the one
   * kept in the database for PostgreSQL (so replicas on one database share cached snapshots, and nothing else does).
   */
  readonly ledgerId: string
  /** Creates a tenant with a new id. */
  readonly createTenant: (name: string) => Effect.Effect<Tenant, LedgerUnavailable>
  /** Whether the tenant exists (tenants are never deleted, so a `true` stays true). */
  readonly tenantExists: (tenantId: string) => Effect.Effect<boolean, LedgerUnavailable>
  /** Stores an entry; once this has succeeded, every later `aggregate` counts it. */
  readonly append: (tenantId: string, entry: NewEntry) => Effect.Effect<Entry, LedgerUnavailable>
  /** The expensive part of a snapshot, computed for real on every call. */
  readonly aggregate: (query: LedgerSnapshotQuery) => Effect.Effect<Aggregate, LedgerUnavailable>
  /** Succeeds when the ledger answers. */
  readonly ping: Effect.Effect<void, LedgerUnavailable>
}>() {}
