/**
 * The handlers of the `Api`, and the HTTP app: the OpenAPI document at `/openapi.json`, Swagger UI at `/docs`,
 * tokens and rate limits (`Auth.ts`), JSON answers for unknown routes and unreadable requests (the platform answers
 * those with an empty 404 or 400), and never a 500 that shows internals. At the default log level nothing is
 * logged per request; at `LOG_LEVEL=Debug`, one line each.
 */
import {
  HttpApiBuilder,
  HttpApiError,
  HttpApiSwagger,
  HttpMiddleware,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cacheable, CachePolicy, ResponseCache } from "@ledgerlink/response-cache"
import { Cause, Config, Effect, Layer, LogLevel, Option, ParseResult, Schema } from "effect"
import { Api } from "./Api.js"
import { AuthenticationLive, authorize, type Need } from "./Auth.js"
import { CacheBackend } from "./Backends.js"
import { readJson } from "./Body.js"
import { NewEntry } from "./Domain/Entry.js"
import { Unhealthy } from "./Domain/Health.js"
import { NewTenant } from "./Domain/Tenant.js"
import { Ledger } from "./Ledger.js"
import { LedgerRepo } from "./LedgerRepo.js"
import * as LedgerSnapshot from "./LedgerSnapshot.js"
import { PrometheusMetrics } from "./Metrics.js"

/** The largest entry body accepted, in bytes; an entry is about a hundred. */
export const maxEntryBytes = 8 * 1024

/** The caller may `need` on the tenant (403 otherwise), and the tenant exists (404 otherwise), in that order. */
const tenantAccess = (ledger: Ledger, need: Need, tenantId: string) =>
  Effect.zipRight(authorize(need, tenantId), ledger.requireTenant(tenantId))

const encodeSnapshot = Schema.encodeSync(LedgerSnapshot.LedgerSnapshot)

/**
 * The answer for a snapshot, made once per snapshot object and outcome: a cache hit returns the object it decoded
 * last time for the same bytes, so a hot hit is not encoded again, nor is its response built again (schema encode,
 * stringify, the body's bytes and the response's headers were a good part of its cost). A response is immutable.
 */
const answers = new WeakMap<
  LedgerSnapshot.LedgerSnapshot,
  { readonly body: string; readonly byOutcome: Map<string, HttpServerResponse.HttpServerResponse> }
>()
const answerOf = (snapshot: LedgerSnapshot.LedgerSnapshot, outcome: string) => {
  let answer = answers.get(snapshot)
  if (answer === undefined) {
    answer = { body: JSON.stringify(encodeSnapshot(snapshot)), byOutcome: new Map() }
    answers.set(snapshot, answer)
  }
  let response = answer.byOutcome.get(outcome)
  if (response === undefined) {
    response = HttpServerResponse.text(answer.body, {
      contentType: "application/json",
      headers: { "x-cache": outcome }
    })
    answer.byOutcome.set(outcome, response)
  }
  return response
}

const SnapshotsLive = HttpApiBuilder.group(Api, "snapshots", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    return handlers
      .handle("snapshot", ({ path }) =>
        tenantAccess(ledger, "read", path.tenantId).pipe(
          Effect.zipRight(ledger.snapshot(path)),
          Effect.map(({ outcome, value }) => answerOf(value, outcome))
        ))
      .handle("purge", ({ path }) =>
        tenantAccess(ledger, "write", path.tenantId).pipe(
          Effect.zipRight(ledger.purge(path.tenantId)),
          Effect.map((removed) => ({ removed }))
        ))
  }))

const decodeEntry = Schema.decodeUnknown(NewEntry, { errors: "all" })
const decodeTenant = Schema.decodeUnknown(NewTenant, { errors: "all" })

const EntriesLive = HttpApiBuilder.group(Api, "entries", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    // Raw: the body is read here (see Body.ts), so that a bad one is a 4xx with a reason, never a 500. Scope and
    // tenant come first: nothing is read for a caller who may not write.
    return handlers.handleRaw("post", ({ path, request }) =>
      tenantAccess(ledger, "write", path.tenantId).pipe(
        Effect.zipRight(readJson(request, maxEntryBytes)),
        Effect.flatMap(decodeEntry),
        Effect.catchIf(ParseResult.isParseError, HttpApiError.HttpApiDecodeError.refailParseError),
        Effect.flatMap((entry) => ledger.post(path.tenantId, entry))
      ))
  }))

const TenantsLive = HttpApiBuilder.group(Api, "tenants", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    return handlers.handleRaw("create", ({ request }) =>
      authorize("admin").pipe(
        Effect.zipRight(readJson(request, maxEntryBytes)),
        Effect.flatMap(decodeTenant),
        Effect.catchIf(ParseResult.isParseError, HttpApiError.HttpApiDecodeError.refailParseError),
        Effect.flatMap(({ name }) => ledger.createTenant(name))
      ))
  }))

/** A query the cache can answer without any resolver: reading it tells whether the store answers. */
const healthProbe = Cacheable.make({
  name: "health-probe.v1",
  query: Schema.Struct({}),
  response: Schema.Boolean,
  namespace: () => "health",
  policy: CachePolicy.short,
  resolve: () => Effect.succeed(true)
})

const OpsLive = HttpApiBuilder.group(Api, "ops", (handlers) =>
  Effect.gen(function*() {
    const cache = yield* ResponseCache.ResponseCache
    const cacheBackend = yield* CacheBackend
    const repo = yield* LedgerRepo
    const metrics = yield* PrometheusMetrics
    const answers = <E>(check: Effect.Effect<unknown, E>) =>
      check.pipe(Effect.timeout("1 second"), Effect.as(true), Effect.orElseSucceed(() => false))
    return handlers
      .handle("health", () =>
        Effect.gen(function*() {
          const [cacheUp, ledgerUp] = yield* Effect.all([answers(cache.get(healthProbe, {})), answers(repo.ping)], {
            concurrency: 2
          })
          // Read after the probe: a probe that just failed is part of what it says.
          const cacheHealth = yield* cache.health
          const backends = {
            cache: {
              backend: cacheBackend.name,
              reachable: cacheUp,
              status: cacheHealth.status,
              ...(cacheHealth.reason === undefined ? {} : { reason: cacheHealth.reason })
            },
            ledger: { backend: repo.backend, reachable: ledgerUp }
          }
          if (!ledgerUp) {
            return yield* new Unhealthy({ message: "the ledger does not answer: uncached snapshots fail", ...backends })
          }
          return { status: cacheUp && cacheHealth.status === "ok" ? "ok" as const : "degraded" as const, ...backends }
        }))
      .handle("metrics", () => metrics.scrape)
  }))

/** The API with its handlers; needs the `Ledger`, the cache, its backend, the ledger repo and the metrics. */
export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([SnapshotsLive, EntriesLive, TenantsLive, OpsLive]),
  Layer.provide(AuthenticationLive)
)

const json = (status: number, body: { readonly _tag: string; readonly message: string }) =>
  HttpServerResponse.unsafeJson(body, { status })

/** A URL as an error message may quote it: never more than 100 characters of it. */
const quoteUrl = (url: string) => (url.length > 100 ? `${url.slice(0, 100)}…` : url)

/**
 * Unknown routes get a 404 and unreadable requests a 400, each with a JSON body that says what is wrong, in the
 * shape of the API's own errors. Anything else unexpected (a defect) is a 500 that says nothing of the internals:
 * its cause goes to the log.
 */
const ErrorsAsJson = HttpApiBuilder.middleware((app) =>
  Effect.catchAllCause(app, (cause) => {
    const error = Option.orElse(
      Cause.failureOption(cause as Cause.Cause<unknown>),
      () => Cause.dieOption(cause)
    ).pipe(Option.getOrUndefined)
    if (HttpServerError.isServerError(error)) {
      if (error._tag === "RouteNotFound") {
        const { method, url } = error.request
        return Effect.succeed(json(404, {
          _tag: "RouteNotFound",
          message: `no route for ${method} ${quoteUrl(url)}: see /openapi.json for the routes`
        }))
      }
      if (error._tag === "RequestError") {
        return Effect.succeed(json(400, { _tag: "MalformedBody", message: "the request could not be read" }))
      }
    }
    // Typed failures are the API's own errors (each answers with its status), and an interruption is a client gone.
    if (Cause.isFailure(cause) || !Cause.isDie(cause)) return Effect.failCause(cause)
    return Effect.as(
      Effect.logError("unexpected failure while answering a request", cause),
      json(500, { _tag: "InternalError", message: "the service failed to answer this request; it has been logged" })
    )
  })
)

/** One line per request, at Debug level only (at Info and above, a request costs no logging at all). */
const accessLog = HttpMiddleware.make((app) =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) =>
      Effect.tap(app, (response) => Effect.logDebug(`${request.method} ${quoteUrl(request.url)} ${response.status}`))
  )
)

/** The minimum log level: `LOG_LEVEL` (All, Trace, Debug, Info, Warning, Error, Fatal, None), default Info. */
export const logLevel = Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))

/** The HTTP app on an `HttpServer`, with `/openapi.json` and `/docs`; the access log only at Debug. */
export const HttpLive = Layer.unwrapEffect(
  Effect.map(
    logLevel,
    (level) =>
      (LogLevel.lessThanEqual(level, LogLevel.Debug) ? HttpApiBuilder.serve(accessLog) : HttpApiBuilder.serve()).pipe(
        Layer.provide(ErrorsAsJson),
        Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
        Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
        Layer.provide(ApiLive),
        // No span per request: nothing here exports traces, and a span costs the hot path real time.
        HttpMiddleware.withTracerDisabledWhen(() => true)
      )
  )
)
