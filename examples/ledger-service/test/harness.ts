/**
 * Runs the service for a test: the real `serviceLayer` on a free loopback port, over a cache and a ledger the test
 * chooses, with a ledger wrapper the test can steer (count aggregates, hold them at a gate, make them fail).
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ResponseCache } from "@ledgerlink/response-cache"
import { BigDecimal, Context, Deferred, Effect, Layer, Logger, LogLevel, Schedule } from "effect"
import { type RateLimit, rateLimitMemory, type Tokens, tokensLayer } from "../src/Auth.js"
import { CacheBackend } from "../src/Backends.js"
import { LedgerUnavailable } from "../src/Domain/Errors.js"
import { LedgerRepo } from "../src/LedgerRepo.js"
import { demoTenants } from "../src/LedgerRepo/Seed.js"
import { createGracefulServer, type ServerTimeouts, serviceLayer } from "../src/Service.js"

/** The tokens of the services under test. */
export const tokens = {
  admin: "test-admin-token-0001",
  acmeReader: "test-acme-reader-0001",
  acmeWriter: "test-acme-writer-0001",
  globexReader: "test-globex-reader-01"
} as const

export const testTokens = [
  `${tokens.admin}=admin`,
  `${tokens.acmeReader}=read:${demoTenants.acme}`,
  `${tokens.acmeWriter}=write:${demoTenants.acme}`,
  `${tokens.globexReader}=read:${demoTenants.globex}`
].join(",")

/** The test tokens and a rate limit no test reaches (unless it asks for one). */
export const access = (options: { readonly ratePerSecond?: number } = {}): Layer.Layer<Tokens | RateLimit> =>
  Layer.merge(tokensLayer(testTokens), rateLimitMemory(options.ratePerSecond ?? 1_000_000))

/** Steers the ledger under the service. */
export interface LedgerControl {
  /** `aggregate` calls so far (the resolves the cache let through). */
  aggregates: number
  /** While set, `aggregate` waits for it (after counting itself). */
  gate: Deferred.Deferred<void> | undefined
  /** While true, every ledger call fails with `LedgerUnavailable`. */
  failing: boolean
}

export class Control extends Context.Tag("test/service/Control")<Control, LedgerControl>() {}

const failure = new LedgerUnavailable({ message: "the ledger is failing on purpose (test)" })

/** The ledger of `inner`, steered by `Control`. */
export const steered = <E, R>(inner: Layer.Layer<LedgerRepo, E, R>) =>
  Layer.effectContext(Effect.gen(function*() {
    const repo = yield* LedgerRepo
    const control: LedgerControl = { aggregates: 0, gate: undefined, failing: false }
    const guard = <A>(effect: Effect.Effect<A, LedgerUnavailable>): Effect.Effect<A, LedgerUnavailable> =>
      Effect.suspend(() => (control.failing ? Effect.fail(failure) : effect))
    return Context.make(Control, control).pipe(Context.add(
      LedgerRepo,
      LedgerRepo.of({
        ...repo,
        append: (tenantId, entry) => guard(repo.append(tenantId, entry)),
        aggregate: (query) =>
          Effect.suspend(() => {
            control.aggregates++
            const gate = control.gate
            return Effect.zipRight(gate ? Deferred.await(gate) : Effect.void, guard(repo.aggregate(query)))
          }),
        ping: guard(repo.ping)
      })
    ))
  })).pipe(Layer.provide(inner))

/** The cache's backend tag beside a cache layer. */
export const cacheOf = <A, E>(name: "memory" | "redis", layer: Layer.Layer<A, E>) =>
  Layer.merge(layer, Layer.succeed(CacheBackend, { name, location: "test" }))

/** The service on a free port, over `cache` and a steered `ledger`; quiet below warnings. */
export const serviceUnderTest = <C, E1, E2, R2>(
  cache: Layer.Layer<C, E1>,
  ledger: Layer.Layer<LedgerRepo, E2, R2>,
  options: { readonly access?: Layer.Layer<Tokens | RateLimit>; readonly timeouts?: ServerTimeouts } = {}
) =>
  serviceLayer(
    NodeHttpServer.layer(() => createGracefulServer(options.timeouts), { port: 0, host: "127.0.0.1" }),
    Layer.mergeAll(cache, steered(ledger), options.access ?? access())
  ).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))

/** `http://127.0.0.1:<port>` of the running service. */
export const baseUrl = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
})

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

/** One real HTTP request to the service. */
export const request = (
  method: string,
  path: string,
  options: {
    readonly json?: unknown
    readonly body?: string | ReadableStream<Uint8Array>
    readonly headers?: Record<string, string>
    /** The bearer token to send: the admin's by default, none with `null`. */
    readonly token?: string | null
  } = {}
): Effect.Effect<Reply, never, HttpServer.HttpServer> =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.promise(async () => {
      const token = options.token === undefined ? tokens.admin : options.token
      const init: RequestInit & { duplex?: "half" } = {
        method,
        headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...options.headers }
      }
      if (options.json !== undefined) {
        init.body = JSON.stringify(options.json)
        ;(init.headers as Record<string, string>)["content-type"] ??= "application/json"
      } else if (options.body !== undefined) {
        init.body = options.body
        init.duplex = "half"
      }
      const response = await fetch(base + path, init)
      const text = await response.text()
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body }
    }))

export const snapshot = (tenantId: string, asOf: string) => request("GET", `/tenants/${tenantId}/snapshots/${asOf}`)

export const post = (tenantId: string, entry: { account: string; amount: string; postedOn: string }) =>
  request("POST", `/tenants/${tenantId}/entries`, { json: entry })

/** Waits until `cache` has `callers` callers on its resolves in flight (a condition, polled; bounded). */
export const callersInFlight = (callers: number) =>
  ResponseCache.ResponseCache.pipe(
    Effect.flatMap((cache) => cache.inFlight),
    Effect.repeat({ until: (inFlight) => inFlight.callers >= callers, schedule: Schedule.spaced("2 millis") }),
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`never ${callers} callers in flight`) }),
    Effect.orDie
  )

/** Exact decimal sum of amount strings. */
export const sum = (amounts: ReadonlyArray<string>) =>
  BigDecimal.format(
    BigDecimal.normalize(
      amounts.reduce((acc, a) => BigDecimal.sum(acc, BigDecimal.unsafeFromString(a)), BigDecimal.fromBigInt(0n))
    )
  )

let unique = 0
/** A new tenant (`POST /tenants` with the admin token), that no other test uses. */
export const freshTenant = (name = "test tenant") =>
  Effect.map(request("POST", "/tenants", { json: { name } }), (reply) => {
    if (reply.status !== 201) throw new Error(`POST /tenants: ${reply.status} ${JSON.stringify(reply.body)}`)
    return reply.body.id as string
  })
/** A prefix no other run uses, for a shared Redis. */
export const uniquePrefix = (label: string) => `svc-${label}-${process.pid}-${Date.now().toString(36)}-${unique++}`
