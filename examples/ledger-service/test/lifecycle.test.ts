/**
 * Starting and stopping: `npm start`'s entry point as a real process (its one startup line, its backends chosen
 * from the environment, a clean exit on SIGTERM), and a graceful stop in process (the server stops accepting,
 * the request in flight finishes, then the Redis connection closes).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, inject, it } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { startRedisServer } from "../../../test/support/redisServer.js"
import * as EmbeddedLedger from "../src/LedgerRepo/Embedded.js"
import { demoTenants } from "../src/LedgerRepo/Seed.js"
import {
  baseUrl,
  cacheOf,
  callersInFlight,
  Control,
  freshTenant,
  serviceUnderTest,
  snapshot,
  uniquePrefix
} from "./harness.js"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Running {
  readonly url: string
  readonly line: string
  readonly output: () => string
  /** Sends the signal and waits for the exit code. */
  readonly stop: (signal: NodeJS.Signals) => Effect.Effect<number | null>
}

/** `src/main.ts` in a process of its own, on a port it picks (PORT=0), with only `env` configured. */
const startMain = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const clean = { ...process.env }
      for (
        const name of [
          "REDIS_URL",
          "DATABASE_URL",
          "DATABASE_SCHEMA",
          "CACHE_PREFIX",
          "SNAPSHOT_TTL",
          "HOST",
          "API_TOKENS",
          "RATE_LIMIT_PER_SECOND",
          "LOG_LEVEL"
        ]
      ) {
        delete clean[name]
      }
      const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
        cwd: root,
        env: { ...clean, PORT: "0", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const started = yield* Deferred.make<{ url: string; line: string }, Error>()
      const exited = yield* Deferred.make<number | null>()
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString()
        const match = /^.*ledger snapshot service on (http:\/\/[^:]+:\d+): .*$/m.exec(output)
        if (match) Deferred.unsafeDone(started, Exit.succeed({ url: match[1]!, line: match[0] }))
      }
      child.stdout.on("data", onOutput)
      child.stderr.on("data", onOutput)
      child.once("exit", (code) => {
        Deferred.unsafeDone(started, Exit.fail(new Error(`the service exited (${code}) before starting:\n${output}`)))
        Deferred.unsafeDone(exited, Exit.succeed(code))
      })
      const { line, url } = yield* Deferred.await(started).pipe(Effect.timeout("40 seconds"))
      const running: Running = {
        url,
        line,
        output: () => output,
        stop: (signal) => Effect.zipRight(Effect.sync(() => child.kill(signal)), Deferred.await(exited))
      }
      return { child, running }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  ).pipe(Effect.map(({ running }) => running))

const fetchJson = (url: string, init: RequestInit & { readonly token?: string } = {}) =>
  Effect.promise(async () => {
    const { token, ...rest } = init
    const headers = {
      ...rest.headers as Record<string, string>,
      ...(token ? { authorization: `Bearer ${token}` } : {})
    }
    const response = await fetch(url, { ...rest, headers })
    return { status: response.status, cache: response.headers.get("x-cache"), body: await response.json() as any }
  })

/** Reads the demo tenant twice, posts, reads again: miss, hit, 201, miss with the new balance. */
const session = (url: string, token = "demo-acme-writer") =>
  Effect.gen(function*() {
    const snapshotUrl = `${url}/tenants/${demoTenants.acme}/snapshots/2025-06-30`
    const first = yield* fetchJson(snapshotUrl, { token })
    assert.strictEqual(first.status, 200)
    const second = yield* fetchJson(snapshotUrl, { token })
    assert.deepStrictEqual([first.cache, second.cache], ["miss", "hit"])
    const posted = yield* fetchJson(`${url}/tenants/${demoTenants.acme}/entries`, {
      method: "POST",
      token,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ account: "cash", amount: "1000.01", postedOn: "2025-06-30" })
    })
    assert.strictEqual(posted.status, 201)
    const third = yield* fetchJson(snapshotUrl, { token })
    assert.strictEqual(third.cache, "miss")
    assert.strictEqual(third.body.entries, first.body.entries + 1)
    return { first, third }
  })

const pgUrl = Redacted.make(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test")
const pgAnswers = Effect.runPromiseExit(
  Layer.build(PgClient.layer({ url: pgUrl, connectTimeout: "2 seconds" })).pipe(Effect.scoped)
).then(Exit.isSuccess)

const pgTokens = "lifecycle-admin-token=admin"

describe.concurrent("npm start (src/main.ts) as a process", () => {
  it.scopedLive(
    "with nothing configured: memory cache, embedded ledger, one startup line, exit 0 on SIGTERM",
    () =>
      Effect.gen(function*() {
        const main = yield* startMain({})
        assert.match(main.line, /cache memory \(in process\), ledger embedded \(in process\)$/)
        assert.match(main.url, /^http:\/\/127\.0\.0\.1:\d+$/)
        yield* session(main.url)
        assert.strictEqual(main.output().match(/ledger snapshot service on/g)?.length, 1)
        // At the default level nothing is logged per request: the demo-mode warning and the startup line, no more.
        const lines = main.output().trim().split("\n")
        assert.strictEqual(lines.length, 2, main.output())
        assert.match(lines[0]!, /WARN.*API_TOKENS is not set: demo mode.*demo-acme-writer/)
        assert.strictEqual(yield* main.stop("SIGTERM"), 0)
      }),
    45_000
  )

  it.scopedLive(
    "with REDIS_URL and DATABASE_URL: Redis cache, PostgreSQL ledger (when a server answers)",
    () =>
      Effect.gen(function*() {
        const pg = yield* Effect.promise(() => pgAnswers)
        const schema = uniquePrefix("main").replace(/-/g, "_")
        if (pg) {
          yield* Effect.addFinalizer(() =>
            Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
              Effect.provide(PgClient.layer({ url: pgUrl })),
              Effect.orDie
            )
          )
        }
        const main = yield* startMain({
          REDIS_URL: inject("redisUrl"),
          CACHE_PREFIX: uniquePrefix("main"),
          ...(pg ? { DATABASE_URL: Redacted.value(pgUrl), DATABASE_SCHEMA: schema, API_TOKENS: pgTokens } : {})
        })
        assert.match(main.line, /cache redis \(127\.0\.0\.1:\d+\)/)
        assert.match(main.line, pg ? /ledger postgres \(127\.0\.0\.1:5432\/test schema svc_main_/ : /ledger embedded/)
        assert.notInclude(main.output(), "postgres://")
        const health = yield* fetchJson(`${main.url}/health`)
        assert.deepStrictEqual(health.body, {
          status: "ok",
          cache: { backend: "redis", reachable: true, status: "ok" },
          ledger: { backend: pg ? "postgres" : "embedded", reachable: true }
        })
        yield* session(main.url, pg ? "lifecycle-admin-token" : "demo-acme-writer")
        assert.strictEqual(yield* main.stop("SIGINT"), 0)
      }),
    45_000
  )
})

describe("npm start as a process: restarts and refusals", () => {
  it.scopedLive(
    "restarted on the same Redis, the embedded ledger is a new one: the first read is a miss",
    () =>
      Effect.gen(function*() {
        const env = { REDIS_URL: inject("redisUrl"), CACHE_PREFIX: uniquePrefix("restart") }
        const before = yield* startMain(env)
        // miss, hit, POST (2250 entries), miss: the previous process's Redis now holds a 2250-entry snapshot.
        const { third } = yield* session(before.url)
        assert.strictEqual(third.body.entries, 2250)
        const again = yield* fetchJson(`${before.url}/tenants/${demoTenants.acme}/snapshots/2025-06-30`, {
          token: "demo-acme-reader"
        })
        assert.deepStrictEqual([again.cache, again.body.entries], ["hit", 2250])
        assert.strictEqual(yield* before.stop("SIGTERM"), 0)

        const after = yield* startMain(env)
        const first = yield* fetchJson(`${after.url}/tenants/${demoTenants.acme}/snapshots/2025-06-30`, {
          token: "demo-acme-reader"
        })
        assert.strictEqual(first.cache, "miss")
        assert.deepInclude(first.body, { entries: 2249, balance: "2829066.94" })
        assert.strictEqual(yield* after.stop("SIGTERM"), 0)
      }),
    60_000
  )

  it.scopedLive("with DATABASE_URL and no API_TOKENS it refuses to start, and says why", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(startMain({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" }))
      assert.match(String(error), /API_TOKENS is not set: with DATABASE_URL the service does not start without tokens/)
      assert.notInclude(String(error), "ledger snapshot service on")
    }), 45_000)
})

describe("graceful stop", () => {
  it.live(
    "the server stops accepting, the request in flight finishes, then the Redis connection closes",
    () =>
      Effect.gen(function*() {
        const redis = yield* Effect.promise(() => startRedisServer())
        const inspector = new Redis(redis.url)
        const clients = Effect.promise(async () =>
          (await inspector.client("LIST") as string).trim().split("\n").filter((line) => !line.includes("cmd=client"))
            .length
        )
        try {
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(
            serviceUnderTest(
              cacheOf("redis", ResponseCache.layerRedis({ url: redis.url, prefix: uniquePrefix("stop") })),
              EmbeddedLedger.layer()
            ),
            scope
          )
          const control = Context.get(context, Control)
          const base = yield* Effect.provide(baseUrl, context)
          const gate = yield* Deferred.make<void>()
          control.gate = gate
          const tenant = yield* Effect.provide(freshTenant(), context)
          const inFlight = yield* Effect.fork(Effect.provide(snapshot(tenant, "2025-12-31"), context))
          yield* Effect.provide(callersInFlight(1), context)
          assert.isAbove(yield* clients, 0)

          const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
          // The server no longer accepts connections (polled: the close has to reach the listener)…
          for (let i = 0;; i++) {
            const refused = yield* Effect.either(Effect.tryPromise(() => fetch(`${base}/health`)))
            if (refused._tag === "Left") break
            if (i > 200) assert.fail("the server kept accepting connections while stopping")
            yield* Effect.sleep("5 millis")
          }
          // …while the request in flight still waits, and with it the stop, and the cache is still connected.
          assert.isTrue(Option.isNone(yield* Fiber.poll(closing)))
          assert.isAbove(yield* clients, 0)
          yield* Deferred.succeed(gate, void 0)
          const reply = yield* Fiber.join(inFlight)
          assert.strictEqual(reply.status, 200)
          assert.deepInclude(reply.body, { tenantId: tenant, entries: 0 })
          const started = Date.now()
          yield* Fiber.join(closing)
          assert.isBelow(Date.now() - started, 1000)
          assert.strictEqual(yield* clients, 0)
        } finally {
          inspector.disconnect()
          yield* Effect.promise(() => redis.stop())
        }
      }),
    20_000
  )
})
