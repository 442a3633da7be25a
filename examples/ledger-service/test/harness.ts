/**
 * Runs the service for a test: the real `serviceLayer` on a free loopback port, over a cache and a ledger the test
 * chooses, with a ledger wrapper the test can steer (count aggregates, hold them at a gate, make them fail).
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { BigDecimal, Context, Deferred, Effect, Layer, Logger, LogLevel, Schedule } from "effect"
import { ResponseCache } from "@ledgerlink/response-cache"
import { CacheBackend } from "../src/Backends.js"
import { LedgerUnavailable } from "../src/Domain/Errors.js"
import { LedgerRepo } from "../src/LedgerRepo.js"
import { createGracefulServer, serviceLayer } from "../src/Service.js"

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
  ledger: Layer.Layer<LedgerRepo, E2, R2>
) =>
  serviceLayer(
    NodeHttpServer.layer(createGracefulServer, { port: 0, host: "127.0.0.1" }),
    Layer.merge(cache, steered(ledger))
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
  } = {}
): Effect.Effect<Reply, never, HttpServer.HttpServer> =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.promise(async () => {
      const init: RequestInit & { duplex?: "half" } = { method, headers: { ...options.headers } }
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
/** A tenant no other test uses. */
export const freshTenant = () => crypto.randomUUID()
/** A prefix no other run uses, for a shared Redis. */
export const uniquePrefix = (label: string) => `svc-${label}-${process.pid}-${Date.now().toString(36)}-${unique++}`
