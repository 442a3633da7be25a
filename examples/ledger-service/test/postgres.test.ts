/**
 * The service on the PostgreSQL ledger: `DATABASE_URL`, or the CI server on 127.0.0.1:5432 (user postgres, database
 * test). Each run uses schemas of its own and drops them afterwards. With no server there, the tests are reported
 * as skipped, with one line that says so.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, inject, it, layer } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import { Effect, Exit, Layer, Redacted, Schedule, Scope } from "effect"
import { LedgerRepo } from "../src/LedgerRepo.js"
import * as PostgresLedger from "../src/LedgerRepo/Postgres.js"
import { demoTenants, entriesPerTenant } from "../src/LedgerRepo/Seed.js"
import { cacheOf, freshTenant, post, serviceUnderTest, snapshot, uniquePrefix } from "./harness.js"
import { serviceSuite } from "./suite.js"

const configured = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ""
const url = Redacted.make(configured ? process.env.DATABASE_URL! : "postgres://postgres@127.0.0.1:5432/test")

const admin = PgClient.layer({ url, connectTimeout: "2 seconds", maxConnections: 2 })

const reachable = await Effect.runPromiseExit(Layer.build(admin).pipe(Effect.scoped))
// Skipped only when no server was asked for: a DATABASE_URL that does not answer fails the run.
if (Exit.isFailure(reachable) && !configured) {
  console.warn(
    `PostgreSQL ledger tests skipped: DATABASE_URL is not set and no server answers at ${
      new URL(Redacted.value(url)).host
    }`
  )
}

if (Exit.isFailure(reachable) && configured) {
  it("DATABASE_URL answers", () => {
    assert.fail(`DATABASE_URL is set but does not answer: ${String(reachable.cause)}`)
  })
}

/** A schema of this run's own, dropped (with everything in it) when the layer is released. */
const ownSchema = (schema: string) =>
  Layer.scopedDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.addFinalizer(() => Effect.orDie(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`)))
  ).pipe(Layer.provide(admin))

const schemaName = (label: string) => uniquePrefix(label).replace(/-/g, "_")

/** The service on Redis (the suite's server) and PostgreSQL (a fresh schema), dropped afterwards. */
const onPostgres = (schema: string) =>
  serviceUnderTest(
    cacheOf("redis", ResponseCache.layerRedis({ url: inject("redisUrl"), prefix: uniquePrefix("pg") })),
    PostgresLedger.layer({ url, schema })
  ).pipe(Layer.provideMerge(ownSchema(schema)))

describe.skipIf(Exit.isFailure(reachable))("PostgreSQL ledger", () => {
  serviceSuite("service: Redis cache, PostgreSQL ledger", onPostgres(schemaName("suite")))

  const schema = schemaName("pg")
  layer(onPostgres(schema).pipe(Layer.provideMerge(admin)), { excludeTestServices: true, timeout: "30 seconds" })(
    "service on PostgreSQL",
    (it) => {
      it.effect("migrations ran once: rerunning them on the same schema changes nothing", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const again = yield* Effect.scoped(
            Effect.flatMap(Layer.build(PostgresLedger.layer({ url, schema })), (context) =>
              LedgerRepo.pipe(
                Effect.flatMap((repo) => repo.aggregate({ tenantId: demoTenants.globex, asOf: "2099-12-31" as never })),
                Effect.provide(context)
              ))
          )
          assert.strictEqual(again.entries, entriesPerTenant)
          const [row] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(`${schema}.entries`)}`
          assert.strictEqual(row!.n, 3 * entriesPerTenant)
        }))

      it.effect("the ledger's identity is kept in the database: every process on it has the same one", () =>
        Effect.gen(function*() {
          const current = yield* LedgerRepo
          const other = yield* Effect.scoped(
            Effect.flatMap(
              Layer.build(PostgresLedger.layer({ url, schema })),
              (context) => Effect.map(LedgerRepo.pipe(Effect.provide(context)), (repo) => repo.ledgerId)
            )
          )
          assert.strictEqual(other, current.ledgerId)
          assert.match(current.ledgerId, /^[0-9a-f-]{36}$/)
          // Another schema is another ledger.
          const elsewhere = schemaName("other")
          const third = yield* Effect.scoped(
            Effect.flatMap(
              Layer.build(PostgresLedger.layer({ url, schema: elsewhere })),
              (context) => Effect.map(LedgerRepo.pipe(Effect.provide(context)), (repo) => repo.ledgerId)
            )
          ).pipe(
            Effect.ensuring(
              Effect.orDie(
                Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(elsewhere)} CASCADE`)
              )
            )
          )
          assert.notStrictEqual(third, current.ledgerId)
        }))

      it.effect("stopping the service closes its connections to PostgreSQL", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const applicationName = uniquePrefix("pool")
          const connections = Effect.map(
            sql<{ readonly n: number }>`
              SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`,
            ([row]) => row!.n
          )
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(
            serviceUnderTest(
              cacheOf("memory", ResponseCache.layerMemory()),
              PostgresLedger.layer({ url, schema, applicationName })
            ),
            scope
          )
          const reply = yield* Effect.provide(snapshot(demoTenants.acme, "2025-06-30"), context)
          assert.strictEqual(reply.status, 200)
          assert.isAbove(yield* connections, 0)
          yield* Scope.close(scope, Exit.void)
          // A server process leaves pg_stat_activity a moment after its client has gone: polled, bounded. A read
          // that fails counts as "not yet" (a full run once saw 1 left after 153 ms, far short of the bound).
          const left = yield* connections.pipe(
            Effect.orElseSucceed(() => -1),
            Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("3 seconds"),
            Effect.orElse(() => connections)
          )
          assert.strictEqual(left, 0)
        }))

      it.effect("an entry is a row; a query that fails is a 503 LedgerUnavailable, and the service goes on", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const tenant = yield* freshTenant()
          const stored = yield* post(tenant, { account: "cash", amount: "-42.1234", postedOn: "2025-04-01" })
          assert.strictEqual(stored.status, 201)
          const rows = yield* sql<{ readonly amount: string }>`
            SELECT amount::text AS amount FROM ${sql(`${schema}.entries`)} WHERE id = ${stored.body.id}`
          assert.deepStrictEqual(rows, [{ amount: "-42.1234" }])
          yield* sql`ALTER TABLE ${sql(`${schema}.entries`)} RENAME TO entries_away`
          const read = yield* snapshot(tenant, "2025-12-31")
          const write = yield* post(tenant, { account: "cash", amount: "1", postedOn: "2025-04-01" })
          yield* sql`ALTER TABLE ${sql(`${schema}.entries_away`)} RENAME TO entries`
          assert.strictEqual(read.status, 503)
          assert.strictEqual(read.body._tag, "LedgerUnavailable")
          assert.match(read.body.message, /could not aggregate the ledger/)
          assert.strictEqual(write.status, 503)
          assert.strictEqual(write.body._tag, "LedgerUnavailable")
          const again = yield* snapshot(tenant, "2025-12-31")
          assert.strictEqual(again.status, 200)
          assert.deepInclude(again.body, { entries: 1, balance: "-42.1234" })
        }))
    }
  )
})
