/**
 * The service's suite, over real HTTP, run unchanged on every pair of backends (memory or Redis cache, embedded
 * or PostgreSQL ledger).
 */
import type { HttpServer } from "@effect/platform"
import { assert, layer } from "@effect/vitest"
import type { ResponseCache } from "@ledgerlink/response-cache"
import { BigDecimal, Deferred, Effect, Fiber, type Layer, Ref } from "effect"
import type { LedgerRepo } from "../src/LedgerRepo.js"
import { demoTenants } from "../src/LedgerRepo/Seed.js"
import { callersInFlight, Control, freshTenant, post, request, snapshot, sum } from "./harness.js"

type Services = HttpServer.HttpServer | ResponseCache.ResponseCache | LedgerRepo | Control

/** A nonzero amount with up to 2 decimals, deterministic in `i`. */
const amountFor = (i: number) => {
  const cents = ((i * 7919) % 200_000) - 80_000 || 1
  return BigDecimal.format(BigDecimal.make(BigInt(cents), 2))
}

export const serviceSuite = <E>(name: string, service: Layer.Layer<Services, E>) =>
  layer(service, { excludeTestServices: true, timeout: "30 seconds" })(name, (it) => {
    it.effect("a snapshot is a miss, then a hit with the same body", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        const stored = yield* post(tenant, { account: "cash", amount: "125.50", postedOn: "2025-03-01" })
        assert.strictEqual(stored.status, 201)
        const first = yield* snapshot(tenant, "2025-12-31")
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.headers.get("x-cache"), "miss")
        assert.deepInclude(first.body, { tenantId: tenant, asOf: "2025-12-31", balance: "125.5", entries: 1 })
        const second = yield* snapshot(tenant, "2025-12-31")
        assert.strictEqual(second.headers.get("x-cache"), "hit")
        assert.deepStrictEqual(second.body, first.body)
      }))

    it.effect("the demo tenants are seeded identically on every ledger", () =>
      Effect.gen(function*() {
        const reply = yield* snapshot(demoTenants.acme, "2025-06-30")
        assert.strictEqual(reply.status, 200)
        assert.deepInclude(reply.body, { balance: "2829066.94", entries: 2249 })
      }))

    it.effect("concurrent identical requests resolve once", () =>
      Effect.gen(function*() {
        const control = yield* Control
        const tenant = yield* freshTenant()
        const gate = yield* Deferred.make<void>()
        const before = control.aggregates
        control.gate = gate
        const replies = yield* Effect.fork(
          Effect.all(Array.from({ length: 20 }, () => snapshot(tenant, "2025-12-31")), { concurrency: "unbounded" })
        )
        yield* callersInFlight(20)
        control.gate = undefined
        yield* Deferred.succeed(gate, void 0)
        const all = yield* Fiber.join(replies)
        assert.strictEqual(control.aggregates - before, 1)
        const outcomes = all.map((reply) => reply.headers.get("x-cache")).sort()
        assert.deepStrictEqual(outcomes, ["miss", ...Array.from({ length: 19 }, () => "coalesced")].sort())
        for (const reply of all) assert.deepStrictEqual(reply.body, all[0]!.body)
      }))

    it.effect("every read after a POST has answered counts the entry: 0 stale answers in a write/read loop", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        const posted: Record<"2025-06-30" | "2025-12-31", Array<string>> = { "2025-06-30": [], "2025-12-31": [] }
        let stale = 0
        const outcomes = new Map<string, number>()
        for (let i = 0; i < 40; i++) {
          const amount = amountFor(i)
          const postedOn = i % 3 === 0 ? "2025-09-15" : "2025-02-01"
          const reply = yield* post(tenant, { account: i % 2 === 0 ? "cash" : "revenue", amount, postedOn })
          assert.strictEqual(reply.status, 201)
          posted["2025-12-31"].push(amount)
          if (postedOn <= "2025-06-30") posted["2025-06-30"].push(amount)
          // Two rounds of concurrent reads of both dates: the first resolves, the second is served from the cache.
          for (let round = 0; round < 2; round++) {
            const reads = yield* Effect.all(
              (["2025-06-30", "2025-12-31", "2025-06-30", "2025-12-31"] as const).map((asOf) =>
                Effect.map(snapshot(tenant, asOf), (reply) => ({ asOf, reply }))
              ),
              { concurrency: "unbounded" }
            )
            for (const { asOf, reply } of reads) {
              assert.strictEqual(reply.status, 200)
              const cache = reply.headers.get("x-cache")!
              outcomes.set(cache, (outcomes.get(cache) ?? 0) + 1)
              if (reply.body.balance !== sum(posted[asOf]) || reply.body.entries !== posted[asOf].length) stale++
            }
          }
        }
        assert.strictEqual(stale, 0, `stale answers: ${stale}`)
        // The cache did serve (hits), and every write was followed by a resolve (misses).
        assert.isAbove(outcomes.get("hit") ?? 0, 0)
        assert.isAtLeast(outcomes.get("miss") ?? 0, 80)
      }))

    it.effect("readers running alongside a writer never see fewer entries than the POSTs that had answered", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        const committed = yield* Ref.make(0)
        const done = yield* Deferred.make<void>()
        const stale = yield* Ref.make(0)
        const reads = yield* Ref.make(0)
        const reader = Effect.gen(function*() {
          while (!(yield* Deferred.isDone(done))) {
            const floor = yield* Ref.get(committed)
            const reply = yield* snapshot(tenant, "2030-01-01")
            assert.strictEqual(reply.status, 200)
            yield* Ref.update(reads, (n) => n + 1)
            if (reply.body.entries < floor) yield* Ref.update(stale, (n) => n + 1)
          }
        })
        const readers = yield* Effect.fork(Effect.all([reader, reader, reader], { concurrency: "unbounded" }))
        for (let i = 0; i < 30; i++) {
          const stored = yield* post(tenant, { account: "cash", amount: amountFor(i), postedOn: "2025-05-05" })
          assert.strictEqual(stored.status, 201)
          yield* Ref.update(committed, (n) => n + 1)
        }
        yield* Deferred.succeed(done, void 0)
        yield* Fiber.join(readers)
        assert.strictEqual(yield* Ref.get(stale), 0)
        assert.isAbove(yield* Ref.get(reads), 30)
        const last = yield* snapshot(tenant, "2030-01-01")
        assert.deepInclude(last.body, { entries: 30, balance: sum(Array.from({ length: 30 }, (_, i) => amountFor(i))) })
      }))

    it.effect("a tenant id is one tenant whatever its case", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        const upper = tenant.toUpperCase()
        assert.strictEqual((yield* snapshot(tenant, "2025-12-31")).body.entries, 0)
        assert.strictEqual((yield* snapshot(upper, "2025-12-31")).headers.get("x-cache"), "hit")
        const stored = yield* post(upper, { account: "cash", amount: "10", postedOn: "2025-01-01" })
        assert.strictEqual(stored.body.tenantId, tenant)
        const reply = yield* snapshot(tenant, "2025-12-31")
        assert.deepInclude(reply.body, { tenantId: tenant, entries: 1, balance: "10" })
      }))

    it.effect("bad input gets a 4xx that says what is wrong, and nothing is written", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        const path = `/tenants/${tenant}/entries`
        const valid = { account: "cash", amount: "12.50", postedOn: "2025-01-31" }
        const json = { "content-type": "application/json" }
        const chunked = () =>
          new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(1024)))
              controller.close()
            }
          })
        const decode = "HttpApiDecodeError"
        const snapshotOf = (asOf: string) => `/tenants/${tenant}/snapshots/${asOf}`
        const entry = (fields: Record<string, unknown>) => ({ json: { ...valid, ...fields } })
        // [what, method, path, request options, status, _tag, what the message must say]
        const cases: Array<[string, string, string, Parameters<typeof request>[2], number, string, RegExp]> = [
          ["malformed UUID", "GET", "/tenants/not-a-uuid/snapshots/2025-01-01", {}, 400, decode, /UUID/],
          ["impossible date", "GET", snapshotOf("2024-02-30"), {}, 400, decode, /2024-02-30 is not a calendar date/],
          ["month 13", "GET", snapshotOf("2024-13-01"), {}, 400, decode, /not a calendar date/],
          ["not a date", "GET", snapshotOf("yesterday"), {}, 400, decode, /YYYY-MM-DD/],
          ["year 0000", "GET", snapshotOf("0000-06-01"), {}, 400, decode, /year 0000/],
          ["purge of a malformed UUID", "DELETE", "/tenants/123/cache", {}, 400, decode, /UUID/],
          ["POST to a malformed UUID", "POST", "/tenants/xyz/entries", { json: valid }, 400, decode, /UUID/],
          ["exponent amount", "POST", path, entry({ amount: "1e3" }), 400, decode, /decimal string/],
          ["float amount", "POST", path, entry({ amount: 12.5 }), 400, decode, /Expected string, actual 12.5/],
          ["word amount", "POST", path, entry({ amount: "ten" }), 400, decode, /decimal string/],
          ["too many decimals", "POST", path, entry({ amount: "1.23456" }), 400, decode, /4 after/],
          ["zero amount", "POST", path, entry({ amount: "0.00" }), 400, decode, /must not be zero/],
          ["impossible postedOn", "POST", path, entry({ postedOn: "2023-02-29" }), 400, decode, /2023-02-29 is not/],
          ["missing account", "POST", path, { json: { amount: "1", postedOn: "2025-01-01" } }, 400, decode, /account/],
          ["unknown field", "POST", path, entry({ currency: "EUR" }), 400, decode, /currency/],
          ["bad account", "POST", path, entry({ account: "" }), 400, decode, /account name/],
          ["not JSON", "POST", path, { body: "{\"account\": ", headers: json }, 400, "MalformedBody", /not valid JSON/],
          ["empty body", "POST", path, { body: "", headers: json }, 400, "MalformedBody", /empty/],
          ["JSON array", "POST", path, { json: [valid] }, 400, decode, /Expected NewEntry|Expected \{/],
          [
            "not declared as JSON",
            "POST",
            path,
            { body: "account=cash", headers: { "content-type": "application/x-www-form-urlencoded" } },
            415,
            "UnsupportedMediaType",
            /application\/json/
          ],
          ["oversized", "POST", path, entry({ memo: "x".repeat(100_000) }), 413, "PayloadTooLarge", /than 8192 bytes/],
          ["oversized, chunked", "POST", path, { body: chunked(), headers: json }, 413, "PayloadTooLarge", /than/],
          ["unknown route", "GET", "/tenants", {}, 404, "RouteNotFound", /no route for GET \/tenants/],
          ["unknown method", "PUT", path, { json: valid }, 404, "RouteNotFound", /no route for PUT/]
        ]
        for (const [what, method, target, options, status, tag, says] of cases) {
          const reply = yield* request(method, target, options)
          assert.strictEqual(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`)
          assert.strictEqual(reply.body._tag, tag, what)
          assert.match(reply.body.message, says, what)
        }
        // Nothing was written for the tenant.
        const after = yield* snapshot(tenant, "2030-01-01")
        assert.deepInclude(after.body, { entries: 0, balance: "0" })
      }))

    it.effect("a failing ledger is a 503 with a typed error, and the service goes on", () =>
      Effect.gen(function*() {
        const control = yield* Control
        const tenant = yield* freshTenant()
        control.failing = true
        const read = yield* snapshot(tenant, "2025-12-31")
        const write = yield* post(tenant, { account: "cash", amount: "1", postedOn: "2025-01-01" })
        const health = yield* request("GET", "/health")
        control.failing = false
        assert.strictEqual(read.status, 503)
        assert.strictEqual(read.body._tag, "LedgerUnavailable")
        assert.strictEqual(write.status, 503)
        assert.strictEqual(write.body._tag, "LedgerUnavailable")
        assert.strictEqual(health.status, 503)
        assert.deepInclude(health.body, { _tag: "Unhealthy" })
        assert.strictEqual(health.body.ledger.reachable, false)
        const again = yield* snapshot(tenant, "2025-12-31")
        assert.strictEqual(again.status, 200)
        assert.deepInclude(again.body, { entries: 0 })
      }))

    it.effect("DELETE /tenants/{id}/cache purges the tenant's snapshots", () =>
      Effect.gen(function*() {
        const tenant = yield* freshTenant()
        yield* snapshot(tenant, "2025-01-01")
        yield* snapshot(tenant, "2025-02-01")
        const purged = yield* request("DELETE", `/tenants/${tenant}/cache`)
        assert.strictEqual(purged.status, 200)
        assert.deepStrictEqual(purged.body, { removed: 2 })
        assert.strictEqual((yield* snapshot(tenant, "2025-01-01")).headers.get("x-cache"), "miss")
      }))

    it.effect("/health, /metrics and /openapi.json", () =>
      Effect.gen(function*() {
        const health = yield* request("GET", "/health")
        assert.strictEqual(health.status, 200)
        assert.strictEqual(health.body.status, "ok")
        assert.deepStrictEqual(Object.keys(health.body).sort(), ["cache", "ledger", "status"])
        assert.isTrue(health.body.cache.reachable && health.body.ledger.reachable)
        const metrics = yield* request("GET", "/metrics")
        assert.strictEqual(metrics.status, 200)
        assert.match(metrics.headers.get("content-type")!, /^text\/plain/)
        assert.match(metrics.body, /# TYPE response_cache_lookups_total counter/)
        assert.match(metrics.body, /response_cache_lookups_total\{[^}]*outcome="hit"[^}]*\} \d+/)
        assert.match(metrics.body, /response_cache_resolve_duration_ms_count\{cache="ledger-snapshot\.v1"/)
        const openapi = yield* request("GET", "/openapi.json")
        assert.strictEqual(openapi.status, 200)
        assert.includeMembers(Object.keys(openapi.body.paths), [
          "/tenants/{tenantId}/snapshots/{asOf}",
          "/tenants/{tenantId}/entries",
          "/tenants/{tenantId}/cache",
          "/health",
          "/metrics"
        ])
      }))
  })
