/**
 * The ledger in PostgreSQL (`@effect/sql-pg`): one table, `<schema>.entries`, created by the migrations at
 * startup (which also load the demo tenants, so the README's figures hold on either ledger). A snapshot is one
 * aggregate query over an index on `(tenant_id, posted_on)`. Every failure of the database after startup is a
 * typed `LedgerUnavailable` (a 503), never a crash.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient, type SqlError } from "@effect/sql"
import { PgClient, PgMigrator } from "@effect/sql-pg"
import { BigDecimal, Duration, Effect, Layer, Redacted, Schema } from "effect"
import type { Entry } from "../Domain/Entry.js"
import { LedgerUnavailable } from "../Domain/Errors.js"
import { LedgerRepo } from "../LedgerRepo.js"
import { IsoDate } from "../LedgerSnapshot.js"
import { demoEntries, demoTenants } from "./Seed.js"

/** Where the PostgreSQL ledger lives. */
export interface Options {
  readonly url: Redacted.Redacted
  /** The schema that holds the ledger's tables (created if missing); default `ledger`. */
  readonly schema?: string | undefined
  /** Bound on every ledger query; default 5 seconds. */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** How the pool's connections name themselves to the server (`pg_stat_activity`); default `ledger-snapshots`. */
  readonly applicationName?: string | undefined
}

const validSchema = /^[a-z_][a-z0-9_]{0,62}$/

const EntryRow = Schema.Struct({
  id: Schema.UUID,
  tenant_id: Schema.UUID,
  account: Schema.String,
  amount: Schema.BigDecimal,
  posted_on: IsoDate
})

const migrations = (schema: string) =>
  PgMigrator.fromRecord({
    "1_create_entries": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(`${schema}.entries`)} (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        account text NOT NULL,
        amount numeric(19, 4) NOT NULL,
        posted_on date NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`
      yield* sql`CREATE INDEX entries_tenant_posted_on ON ${sql(`${schema}.entries`)} (tenant_id, posted_on)
        INCLUDE (amount)`
    }),
    "2_load_demo_tenants": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = demoEntries().map((entry) => ({
        id: entry.id,
        tenant_id: entry.tenantId,
        account: entry.account,
        amount: BigDecimal.format(entry.amount),
        posted_on: entry.postedOn
      }))
      for (let i = 0; i < rows.length; i += 1000) {
        yield* sql`INSERT INTO ${sql(`${schema}.entries`)} ${sql.insert(rows.slice(i, i + 1000))}`
      }
    }),
    // Tenants exist or are 404: the demo tenants, and every tenant that already has entries, become tenants. The
    // ledger's identity is made once, here, and kept: it is part of every cache namespace.
    "3_tenants_and_ledger_identity": Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(`${schema}.tenants`)} (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`
      yield* sql`INSERT INTO ${sql(`${schema}.tenants`)} ${
        sql.insert(Object.entries(demoTenants).map(([name, id]) => ({ id, name })))
      } ON CONFLICT DO NOTHING`
      yield* sql`INSERT INTO ${sql(`${schema}.tenants`)} (id, name)
        SELECT DISTINCT tenant_id, tenant_id::text FROM ${sql(`${schema}.entries`)} ON CONFLICT DO NOTHING`
      yield* sql`CREATE TABLE ${sql(`${schema}.ledger_identity`)} (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        one boolean PRIMARY KEY DEFAULT true CHECK (one)
      )`
      yield* sql`INSERT INTO ${sql(`${schema}.ledger_identity`)} DEFAULT VALUES`
    })
  })

/** `host:port/database`, never the credentials. */
const locationOf = (url: string, schema: string) => {
  try {
    const parsed = new URL(url)
    return `${parsed.host}${parsed.pathname} schema ${schema}`
  } catch {
    return `schema ${schema}`
  }
}

/** Runs the migrations, then builds the repository over the client. */
export const make = (options: Options & { readonly location: string }) =>
  Effect.gen(function*() {
    const schema = options.schema ?? "ledger"
    const sql = yield* SqlClient.SqlClient
    const timeout = Duration.decode(options.queryTimeout ?? Duration.seconds(5))
    yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
    yield* PgMigrator.run({ loader: migrations(schema), table: `${schema}.ledger_migrations` })
    const table = sql(`${schema}.entries`)
    const tenants = sql(`${schema}.tenants`)
    const [identity] = yield* sql<{ readonly id: string }>`SELECT id::text AS id FROM ${
      sql(`${schema}.ledger_identity`)
    }`
    if (identity === undefined) return yield* Effect.dieMessage(`${schema}.ledger_identity has no row`)
    /** Tenants known to exist: they are never deleted, so the hot path asks the database once per tenant. */
    const known = new Set<string>()

    const guarded = <A>(what: string, effect: Effect.Effect<A, SqlError.SqlError>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new LedgerUnavailable({ message: `the ledger database did not ${what} within ${Duration.format(timeout)}` })
        }),
        // The driver's message goes to the log, not to the client.
        Effect.catchTag("SqlError", (error) =>
          Effect.zipRight(
            Effect.logError(`ledger query failed (${what})`, error),
            Effect.fail(new LedgerUnavailable({ message: `the ledger database could not ${what}` }))
          ))
      )

    const decodeEntry = Schema.decodeUnknown(EntryRow)

    return LedgerRepo.of({
      backend: "postgres",
      location: options.location,
      ledgerId: identity.id,
      createTenant: (name) =>
        guarded(
          "create the tenant",
          sql<{ readonly id: string; readonly name: string }>`INSERT INTO ${tenants} ${sql.insert({ name })}
            RETURNING id::text AS id, name`
        ).pipe(Effect.map(([row]) => {
          known.add(row!.id)
          return { id: row!.id, name: row!.name }
        })),
      tenantExists: (tenantId) =>
        known.has(tenantId) ? Effect.succeed(true) : guarded(
          "look the tenant up",
          sql<{ readonly one: number }>`SELECT 1 AS one FROM ${tenants} WHERE id = ${tenantId}`
        ).pipe(Effect.map((rows) => {
          if (rows.length > 0) known.add(tenantId)
          return rows.length > 0
        })),
      append: (tenantId, entry) =>
        guarded(
          "store the entry",
          sql<object>`INSERT INTO ${table} ${
            sql.insert({
              tenant_id: tenantId,
              account: entry.account,
              amount: BigDecimal.format(entry.amount),
              posted_on: entry.postedOn
            })
          } RETURNING id::text AS id, tenant_id::text AS tenant_id, account, amount::text AS amount,
            to_char(posted_on, 'YYYY-MM-DD') AS posted_on`
        ).pipe(
          Effect.flatMap((rows) => Effect.orDie(decodeEntry(rows[0]))),
          Effect.map((row): Entry => ({
            id: row.id,
            tenantId: row.tenant_id,
            account: row.account,
            amount: row.amount,
            postedOn: row.posted_on
          }))
        ),
      aggregate: ({ asOf, tenantId }) =>
        guarded(
          "aggregate the ledger",
          sql<{ readonly balance: string; readonly entries: number }>`
            SELECT COALESCE(SUM(amount), 0)::text AS balance, COUNT(*)::int AS entries
            FROM ${table} WHERE tenant_id = ${tenantId} AND posted_on <= ${asOf}`
        ).pipe(
          Effect.map(([row]) => ({ balance: BigDecimal.unsafeFromString(row!.balance), entries: row!.entries }))
        ),
      ping: guarded("answer", sql`SELECT 1`).pipe(Effect.asVoid)
    })
  })

/**
 * The PostgreSQL ledger: a pool on `url` (closed when the layer's scope ends), the migrations, the repository.
 * Building it fails if the database cannot be reached at startup.
 */
export const layer = (options: Options): Layer.Layer<LedgerRepo, SqlError.SqlError | PgMigrator.MigrationError> => {
  const schema = options.schema ?? "ledger"
  if (!validSchema.test(schema)) {
    return Layer.die(new Error(`Invalid schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]*, at most 63`))
  }
  return Layer.effect(LedgerRepo, make({ ...options, location: locationOf(Redacted.value(options.url), schema) })).pipe(
    Layer.provide(PgClient.layer({
      url: options.url,
      connectTimeout: Duration.seconds(5),
      maxConnections: 10,
      applicationName: options.applicationName ?? "ledger-snapshots"
    })),
    Layer.provide(NodeContext.layer)
  )
}
