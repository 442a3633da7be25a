/**
 * The OpenAPI document against the running service, checked by a third-party contract tool: Prism's validating
 * proxy (`@stoplight/prism-cli`) sits between the test and the service, and reports in `sl-violations` every answer
 * whose status, headers or body the document does not describe. Each route is called for each status it documents
 * that a request can provoke; no answer may violate the document, and the valid requests none at all. (A body that
 * is not JSON is left out: Prism itself never answers one. The service suite covers it.)
 */
import { assert, it } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import { Deferred, Effect, Exit, Layer } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../../../test/support/redisServer.js"
import * as EmbeddedLedger from "../src/LedgerRepo/Embedded.js"
import { demoTenants } from "../src/LedgerRepo/Seed.js"
import { access, baseUrl, cacheOf, Control, serviceUnderTest, tokens } from "./harness.js"

const prismCli = createRequire(import.meta.url).resolve("@stoplight/prism-cli/dist/index.js")

/** Prism's validating proxy in front of `upstream`, on a free port, stopped with the scope. */
const prismProxy = (spec: object, upstream: string) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "prism-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const file = join(dir, "openapi.json")
    writeFileSync(file, JSON.stringify(spec))
    const port = yield* Effect.promise(() => freePort())
    const ready = yield* Deferred.make<string, Error>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, [prismCli, "proxy", file, upstream, "--port", String(port)], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        const onOutput = (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes("Prism is listening")) {
            Deferred.unsafeDone(ready, Exit.succeed(`http://127.0.0.1:${port}`))
          }
        }
        child.stdout.on("data", onOutput)
        child.stderr.on("data", onOutput)
        child.once(
          "exit",
          (code) => Deferred.unsafeDone(ready, Exit.fail(new Error(`prism exited (${code}):\n${output}`)))
        )
        return child
      }),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    void child
    return yield* Deferred.await(ready).pipe(Effect.timeout("60 seconds"))
  })

interface Violation {
  readonly location: ReadonlyArray<string>
  readonly message: string
}

const service = serviceUnderTest(cacheOf("memory", ResponseCache.layerMemory()), EmbeddedLedger.layer(), {
  access: access({ ratePerSecond: 10 })
})

it.scopedLive(
  "Prism's validating proxy finds no answer of the service that the OpenAPI document does not describe",
  () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(service)
      const upstream = yield* Effect.provide(baseUrl, context)
      const control = yield* Effect.provide(Control, context)
      const spec = yield* Effect.promise(() =>
        fetch(`${upstream}/openapi.json`).then((r) => r.json() as Promise<object>)
      )
      const proxy = yield* prismProxy(spec, upstream)

      const call = (
        method: string,
        path: string,
        options: { token?: string | null; json?: unknown; body?: string; contentType?: string } = {}
      ) =>
        Effect.promise(async () => {
          const token = options.token === undefined ? tokens.admin : options.token
          const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
          const body = options.json !== undefined ? JSON.stringify(options.json) : options.body
          if (body !== undefined) headers["content-type"] = options.contentType ?? "application/json"
          const response = await fetch(proxy + path, {
            method,
            headers,
            signal: AbortSignal.timeout(20_000),
            ...(body !== undefined ? { body } : {})
          })
          await response.arrayBuffer()
          const violations = JSON.parse(response.headers.get("sl-violations") ?? "[]") as Array<Violation>
          return { status: response.status, violations }
        })

      const acme = demoTenants.acme
      const unknown = crypto.randomUUID()
      const entry = { account: "cash", amount: "12.50", postedOn: "2025-02-03" }
      const snapshotPath = (tenant: string, asOf = "2025-06-30") => `/tenants/${tenant}/snapshots/${asOf}`
      // [what, request, status, the request itself is valid]
      const cases: Array<[string, ReturnType<typeof call>, number, boolean]> = [
        ["snapshot, miss", call("GET", snapshotPath(acme), { token: tokens.acmeReader }), 200, true],
        ["snapshot, hit", call("GET", snapshotPath(acme), { token: tokens.acmeReader }), 200, true],
        ["entry", call("POST", `/tenants/${acme}/entries`, { token: tokens.acmeWriter, json: entry }), 201, true],
        ["purge", call("DELETE", `/tenants/${acme}/cache`, { token: tokens.acmeWriter }), 200, true],
        ["tenant", call("POST", "/tenants", { json: { name: "Contract Co" } }), 201, true],
        ["health", call("GET", "/health", { token: null }), 200, true],
        ["metrics", call("GET", "/metrics", { token: null }), 200, true],
        ["no token", call("GET", snapshotPath(acme), { token: null }), 401, false],
        ["no scope", call("GET", snapshotPath(demoTenants.globex), { token: tokens.acmeReader }), 403, true],
        ["unknown tenant", call("GET", snapshotPath(unknown)), 404, true],
        ["unknown tenant, entry", call("POST", `/tenants/${unknown}/entries`, { json: entry }), 404, true],
        ["bad date", call("GET", snapshotPath(acme, "2024-02-30")), 400, false],
        ["bad field", call("POST", `/tenants/${acme}/entries`, { json: { ...entry, amount: "1e3" } }), 400, false],
        [
          "form body",
          call("POST", "/tenants", { body: "name=x", contentType: "application/x-www-form-urlencoded" }),
          415,
          false
        ],
        ["large body", call("POST", "/tenants", { json: { name: "x".repeat(10_000) } }), 413, false]
      ]
      for (const [what, request, status, valid] of cases) {
        const reply = yield* request
        assert.strictEqual(reply.status, status, what)
        const ofResponse = reply.violations.filter((violation) => violation.location[0] === "response")
        assert.deepStrictEqual(ofResponse, [], `${what}: the answer violates the document`)
        if (valid) assert.deepStrictEqual(reply.violations, [], `${what}: the request violates the document`)
      }
      // 503: the ledger fails.
      control.failing = true
      const failing = yield* call("GET", snapshotPath(demoTenants.initech))
      control.failing = false
      assert.strictEqual(failing.status, 503)
      assert.deepStrictEqual(failing.violations, [])
      // 429: one token past its limit (10 a second, a burst of 10).
      const burst = yield* Effect.all(
        Array.from({ length: 25 }, () => call("GET", snapshotPath(demoTenants.globex), { token: tokens.globexReader })),
        { concurrency: "unbounded" }
      )
      const limited = burst.filter((reply) => reply.status === 429)
      assert.isAtLeast(limited.length, 1)
      for (const reply of burst) assert.deepStrictEqual(reply.violations, [], `burst ${reply.status}`)
    }),
  120_000
)
