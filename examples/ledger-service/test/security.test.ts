/**
 * The service exposed to callers it cannot trust, over real HTTP: tokens and scopes (401/403/200 for each), tenants
 * that exist or are 404, the per-token rate limit (429 with Retry-After), and hostile requests — deep or duplicated
 * JSON, foreign charsets, oversized and never-ending bodies, huge URLs — each a 4xx with a JSON reason or a closed
 * connection, never a 500, and never an error body that shows internals.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import { Effect, Layer } from "effect"
import { connect, type Socket } from "node:net"
import * as EmbeddedLedger from "../src/LedgerRepo/Embedded.js"
import { demoTenants } from "../src/LedgerRepo/Seed.js"
import {
  access,
  baseUrl,
  cacheOf,
  freshTenant,
  post,
  request,
  serviceUnderTest,
  snapshot,
  tokens,
  uniquePrefix
} from "./harness.js"

const service = serviceUnderTest(cacheOf("memory", ResponseCache.layerMemory()), EmbeddedLedger.layer(), {
  timeouts: { request: 1_500, headers: 1_500, checkEvery: 250 }
})

const entry = { account: "cash", amount: "1.25", postedOn: "2025-01-02" }
const acme = demoTenants.acme
const globex = demoTenants.globex

/** A raw TCP connection to the service, for what fetch cannot send (a body that never ends, or never stops). */
const rawConnection = Effect.flatMap(baseUrl, (base) =>
  Effect.acquireRelease(
    Effect.async<Socket, Error>((resume) => {
      const socket = connect(Number(new URL(base).port), "127.0.0.1")
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ))

/** What came back on `socket` until the server closed it: the text, and how many bytes were written meanwhile. */
const untilClosed = (socket: Socket, feed?: { readonly chunk: Buffer; readonly maxBytes: number }) =>
  Effect.async<{ readonly text: string; readonly written: number; readonly closedByServer: boolean }>((resume) => {
    let text = ""
    let written = 0
    let done = false
    const finish = (closedByServer: boolean) => {
      if (done) return
      done = true
      resume(Effect.succeed({ text, written, closedByServer }))
    }
    socket.on("data", (data) => {
      text += data.toString("latin1")
    })
    socket.once("end", () => finish(true))
    socket.once("close", () => finish(true))
    socket.once("error", () => finish(true))
    if (feed !== undefined) {
      const pump = () => {
        while (!done && !socket.destroyed && written < feed.maxBytes) {
          written += feed.chunk.length
          if (!socket.write(`${feed.chunk.length.toString(16)}\r\n${feed.chunk.toString("latin1")}\r\n`, "latin1")) {
            socket.once("drain", pump)
            return
          }
        }
        if (written >= feed.maxBytes) finish(false)
      }
      pump()
    }
  })

layer(service, { excludeTestServices: true, timeout: "30 seconds" })("service security", (it) => {
  it.effect("auth matrix: no or unknown token 401, a token without the scope 403, with it 200/201", () =>
    Effect.gen(function*() {
      const read = (tenant: string, token: string | null, headers?: Record<string, string>) =>
        request("GET", `/tenants/${tenant}/snapshots/2025-06-30`, { token, ...(headers ? { headers } : {}) })
      const write = (tenant: string, token: string | null) =>
        request("POST", `/tenants/${tenant}/entries`, { token, json: entry })
      const purge = (tenant: string, token: string | null) => request("DELETE", `/tenants/${tenant}/cache`, { token })
      const create = (token: string | null) => request("POST", "/tenants", { token, json: { name: "matrix" } })
      // [what, request, status, _tag]
      const cases: Array<
        [string, Effect.Effect<{ status: number; body: any; headers: Headers }, never, any>, number, string]
      > = [
        ["read, no token", read(acme, null), 401, "Unauthorized"],
        ["read, unknown token", read(acme, "not-a-token-of-this-service"), 401, "Unauthorized"],
        ["read, Basic scheme", read(acme, null, { authorization: `Basic ${btoa("a:b")}` }), 401, "Unauthorized"],
        ["read, Bearer and nothing", read(acme, null, { authorization: "Bearer " }), 401, "Unauthorized"],
        ["write, no token", write(acme, null), 401, "Unauthorized"],
        ["create tenant, no token", create(null), 401, "Unauthorized"],
        ["purge, no token", purge(acme, null), 401, "Unauthorized"],
        ["reader reads its tenant", read(acme, tokens.acmeReader), 200, ""],
        ["reader reads another tenant", read(globex, tokens.acmeReader), 403, "Forbidden"],
        ["reader writes its tenant", write(acme, tokens.acmeReader), 403, "Forbidden"],
        ["reader purges its tenant", purge(acme, tokens.acmeReader), 403, "Forbidden"],
        ["reader creates a tenant", create(tokens.acmeReader), 403, "Forbidden"],
        ["writer reads its tenant (write implies read)", read(acme, tokens.acmeWriter), 200, ""],
        ["writer writes its tenant", write(acme, tokens.acmeWriter), 201, ""],
        ["writer purges its tenant", purge(acme, tokens.acmeWriter), 200, ""],
        ["writer writes another tenant", write(globex, tokens.acmeWriter), 403, "Forbidden"],
        ["writer creates a tenant", create(tokens.acmeWriter), 403, "Forbidden"],
        ["globex reader reads globex", read(globex, tokens.globexReader), 200, ""],
        ["admin reads any tenant", read(globex, tokens.admin), 200, ""],
        ["admin writes any tenant", write(globex, tokens.admin), 201, ""],
        ["admin creates a tenant", create(tokens.admin), 201, ""]
      ]
      for (const [what, effect, status, tag] of cases) {
        const reply = yield* effect
        assert.strictEqual(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`)
        if (tag !== "") assert.strictEqual(reply.body._tag, tag, what)
        if (status === 401) assert.notInclude(JSON.stringify(reply.body), "not-a-token", what)
        if (status === 403) assert.match(reply.body.required, /^(admin|read:|write:)/, what)
      }
      // The operators' routes need no token.
      for (const path of ["/health", "/metrics", "/openapi.json", "/docs"]) {
        assert.strictEqual((yield* request("GET", path, { token: null })).status, 200, path)
      }
    }))

  it.effect("a tenant exists or is 404; writing to an unknown tenant does not create it", () =>
    Effect.gen(function*() {
      const unknown = crypto.randomUUID()
      const write = yield* post(unknown, entry)
      assert.strictEqual(write.status, 404)
      assert.deepInclude(write.body, { _tag: "TenantNotFound", tenantId: unknown })
      const read = yield* snapshot(unknown, "2025-06-30")
      assert.strictEqual(read.status, 404)
      assert.strictEqual(read.body._tag, "TenantNotFound")
      assert.strictEqual((yield* request("DELETE", `/tenants/${unknown}/cache`)).status, 404)
      // A scope on a tenant that does not exist gives no way in either: 403 before 404 for other tokens.
      assert.strictEqual(
        (yield* request("GET", `/tenants/${unknown}/snapshots/2025-06-30`, {
          token: tokens.acmeReader
        })).status,
        403
      )
      // POST /tenants creates one, and then it answers.
      const created = yield* request("POST", "/tenants", { json: { name: "Initech Europe" } })
      assert.strictEqual(created.status, 201)
      assert.match(created.body.id, /^[0-9a-f-]{36}$/)
      assert.strictEqual(created.body.name, "Initech Europe")
      assert.strictEqual((yield* post(created.body.id, entry)).status, 201)
      assert.deepInclude((yield* snapshot(created.body.id, "2025-06-30")).body, { entries: 1, balance: "1.25" })
      // A name must be a name.
      const bad = yield* request("POST", "/tenants", { json: { name: "" } })
      assert.strictEqual(bad.status, 400)
      const extra = yield* request("POST", "/tenants", { json: { name: "x", id: unknown } })
      assert.strictEqual(extra.status, 400)
    }))

  it.effect("hostile bodies: a 4xx with a JSON reason, never a 500, and nothing written", () =>
    Effect.gen(function*() {
      const tenant = yield* freshTenant()
      const path = `/tenants/${tenant}/entries`
      const json = { "content-type": "application/json" }
      const deep = "[".repeat(4000) + "]".repeat(4000)
      const deepObject = "{\"a\":".repeat(40) + "1" + "}".repeat(40)
      const valid = JSON.stringify(entry)
      const cases: Array<[string, string | Uint8Array, Record<string, string>, number, string, RegExp]> = [
        ["4,000-deep array", deep, json, 400, "MalformedBody", /deeper than 32/],
        ["40-deep object", deepObject, json, 400, "MalformedBody", /deeper than 32/],
        [
          "duplicate key",
          valid.replace("{", "{\"amount\":\"9999\","),
          json,
          400,
          "MalformedBody",
          /"amount" appears twice/
        ],
        [
          "duplicate key, escaped",
          "{\"account\":\"cash\",\"amount\":\"1\",\"\\u0061mount\":\"2\",\"postedOn\":\"2025-01-01\"}",
          json,
          400,
          "MalformedBody",
          /appears twice/
        ],
        [
          "charset utf-16",
          valid,
          { "content-type": "application/json; charset=utf-16" },
          415,
          "UnsupportedMediaType",
          /UTF-8/
        ],
        [
          "charset latin1",
          valid,
          { "content-type": "application/json;charset=ISO-8859-1" },
          415,
          "UnsupportedMediaType",
          /UTF-8/
        ],
        [
          "not UTF-8",
          new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
          json,
          400,
          "MalformedBody",
          /not valid UTF-8/
        ],
        ["text/json", valid, { "content-type": "text/json" }, 415, "UnsupportedMediaType", /application\/json/],
        ["NUL in JSON", "{\"account\":\"ca\u0000sh\"}", json, 400, "MalformedBody", /not valid JSON/]
      ]
      for (const [what, body, headers, status, tag, says] of cases) {
        const reply = yield* request("POST", path, {
          body: typeof body === "string" ? body : new Blob([body]).stream(),
          headers
        })
        assert.strictEqual(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`)
        assert.strictEqual(reply.body._tag, tag, what)
        assert.match(reply.body.message, says, what)
      }
      // UTF-8 named in any spelling is fine.
      const quoted = yield* request("POST", path, {
        body: valid,
        headers: { "content-type": "application/json; charset=\"UTF-8\"" }
      })
      assert.strictEqual(quoted.status, 201)
      assert.deepInclude((yield* snapshot(tenant, "2030-01-01")).body, { entries: 1 })
    }))

  it.effect("hostile URLs and headers: 4xx, short messages, security headers on every answer", () =>
    Effect.gen(function*() {
      const long = yield* request("GET", "/x" + "a".repeat(15_000))
      assert.strictEqual(long.status, 404)
      assert.isBelow(JSON.stringify(long.body).length, 300)
      for (
        const path of [
          `/tenants/%ZZ/snapshots/2025-01-01`,
          `/tenants/${"%00".repeat(10)}/snapshots/2025-01-01`,
          `/tenants/${acme}/snapshots/%E0%A4%A`,
          `/tenants/${acme}/snapshots/${"9".repeat(5000)}`,
          `/tenants/${"A".repeat(5000)}/snapshots/2025-01-01`
        ]
      ) {
        const reply = yield* request("GET", path)
        assert.isTrue(reply.status >= 400 && reply.status < 500, `${path.slice(0, 60)}: ${reply.status}`)
        assert.isBelow(JSON.stringify(reply.body).length, 1000, path.slice(0, 60))
      }
      const ok = yield* snapshot(acme, "2025-06-30")
      for (const reply of [ok, long]) {
        assert.strictEqual(reply.headers.get("x-content-type-options"), "nosniff")
        assert.strictEqual(reply.headers.get("x-frame-options"), "DENY")
        assert.strictEqual(reply.headers.get("cache-control"), "no-store")
        assert.match(reply.headers.get("content-security-policy")!, /default-src 'none'/)
      }
    }))

  it.scoped("a 413 is answered at once and the connection closed: the rest of the body is not read", () =>
    Effect.gen(function*() {
      const tenant = yield* freshTenant()
      const socket = yield* rawConnection
      socket.write(
        `POST /tenants/${tenant}/entries HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${tokens.admin}\r\n` +
          "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
      )
      // Up to 256 MiB offered; the server must close long before (after the 8 KiB limit and what is in flight).
      const result = yield* untilClosed(socket, { chunk: Buffer.alloc(64 * 1024, 0x20), maxBytes: 256 * 1024 * 1024 })
      assert.isTrue(result.closedByServer, `the server kept reading: ${result.written} bytes written`)
      assert.match(result.text, /^HTTP\/1\.1 413 /)
      assert.match(result.text, /connection: close/i)
      assert.include(result.text, "PayloadTooLarge")
    }))

  it.scoped("a body that never ends is cut off by the request timeout (408), not held", () =>
    Effect.gen(function*() {
      const tenant = yield* freshTenant()
      const socket = yield* rawConnection
      socket.write(
        `POST /tenants/${tenant}/entries HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${tokens.admin}\r\n` +
          "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n"
      )
      const result = yield* untilClosed(socket)
      assert.isTrue(result.closedByServer)
      assert.match(result.text, /^HTTP\/1\.1 408 /)
      // The service goes on.
      assert.strictEqual((yield* snapshot(tenant, "2025-06-30")).status, 200)
    }))
})

describe("rate limit", () => {
  const limited = serviceUnderTest(cacheOf("memory", ResponseCache.layerMemory()), EmbeddedLedger.layer(), {
    access: access({ ratePerSecond: 3 })
  })
  it.scopedLive(
    "past its limit a token gets 429 with Retry-After; other tokens are not affected",
    () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(limited)
        yield* Effect.gen(function*() {
          const replies = yield* Effect.all(
            Array.from({ length: 12 }, () => snapshot(acme, "2025-06-30")),
            { concurrency: "unbounded" }
          )
          const statuses = replies.map((reply) => reply.status)
          const limitedReplies = replies.filter((reply) => reply.status === 429)
          assert.isAtLeast(limitedReplies.length, 1, statuses.join(","))
          assert.isAtLeast(statuses.filter((status) => status === 200).length, 3, statuses.join(","))
          for (const reply of limitedReplies) {
            assert.strictEqual(reply.body._tag, "TooManyRequests")
            assert.isAtLeast(Number(reply.headers.get("retry-after")), 1)
            assert.strictEqual(reply.body.retryAfterSeconds, Number(reply.headers.get("retry-after")))
          }
          // Another token has its own budget.
          const other = yield* request("GET", `/tenants/${acme}/snapshots/2025-06-30`, { token: tokens.acmeReader })
          assert.strictEqual(other.status, 200)
        }).pipe(Effect.provide(context))
      }),
    20_000
  )
})

it("token lists are checked when the service starts", async () => {
  const { parseTokens } = await import("../src/Auth.js")
  const { Either } = await import("effect")
  assert.isTrue(Either.isRight(parseTokens(`abcdefghijklmnop=admin,qrstuvwxyz012345=read:${acme}+write:${globex}`)))
  for (const bad of ["", "short=admin", "abcdefghijklmnop=root", "abcdefghijklmnop=read:nope", "abcdefghijklmnop"]) {
    const parsed = parseTokens(bad)
    assert.isTrue(Either.isLeft(parsed), bad)
    if (Either.isLeft(parsed)) assert.notInclude(parsed.left, "abcdefghijklmnop", bad)
  }
})

describe("rate limit in Redis", () => {
  it.scopedLive(
    "two processes' limiters share one budget per token, and never let more through than it",
    () =>
      Effect.gen(function*() {
        const { RateLimit, rateLimitRedis } = yield* Effect.promise(() => import("../src/Auth.js"))
        const { inject } = yield* Effect.promise(() => import("@effect/vitest"))
        const options = { limit: 100, url: inject("redisUrl"), prefix: uniquePrefix("ratelimit") }
        const first = yield* Layer.build(rateLimitRedis(options))
        const second = yield* Layer.build(rateLimitRedis(options))
        const started = Date.now()
        const attempt = (context: typeof first) =>
          Effect.either(Effect.flatMap(RateLimit, (limit) => limit.check("token-a")).pipe(Effect.provide(context)))
        const results = yield* Effect.all(
          Array.from({ length: 150 }, (_, i) => attempt(i % 2 === 0 ? first : second)),
          { concurrency: 16 }
        )
        const elapsed = (Date.now() - started) / 1000
        const allowed = results.filter((result) => result._tag === "Right").length
        // The bucket holds 100 and refills 100 a second: no more can have passed, whichever process asked.
        assert.isAtMost(allowed, 100 + Math.ceil(100 * elapsed))
        assert.isAtLeast(allowed, 50)
        assert.isAbove(results.length - allowed, 0)
        // Another token has a budget of its own.
        const other = yield* Effect.either(
          Effect.flatMap(RateLimit, (limit) => limit.check("token-b")).pipe(
            Effect.provide(first)
          )
        )
        assert.strictEqual(other._tag, "Right")
      }),
    20_000
  )
})
