/**
 * The handlers of the `Api`, and the HTTP app: the OpenAPI document at `/openapi.json`, Swagger UI at `/docs`,
 * a request log, and JSON answers for unknown routes and unreadable requests (the platform answers those with an
 * empty 404 or 400).
 */
import {
  HttpApiBuilder,
  HttpApiError,
  HttpApiSwagger,
  HttpApp,
  HttpMiddleware,
  HttpServerError,
  HttpServerResponse
} from "@effect/platform"
import { Cacheable, CachePolicy, ResponseCache } from "@ledgerlink/response-cache"
import { Cause, Effect, Layer, Option, ParseResult, Schema } from "effect"
import { Api } from "./Api.js"
import { CacheBackend } from "./Backends.js"
import { readJson } from "./Body.js"
import { NewEntry } from "./Domain/Entry.js"
import { Unhealthy } from "./Domain/Health.js"
import { Ledger } from "./Ledger.js"
import { LedgerRepo } from "./LedgerRepo.js"
import { PrometheusMetrics } from "./Metrics.js"

/** The largest entry body accepted, in bytes; an entry is about a hundred. */
export const maxEntryBytes = 8 * 1024

const SnapshotsLive = HttpApiBuilder.group(Api, "snapshots", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    return handlers
      .handle("snapshot", ({ path }) =>
        ledger.snapshot(path).pipe(
          Effect.tap(({ outcome }) =>
            HttpApp.appendPreResponseHandler((_request, response) =>
              Effect.succeed(HttpServerResponse.setHeader(response, "x-cache", outcome))
            )
          ),
          Effect.map(({ value }) => value)
        ))
      .handle("purge", ({ path }) => Effect.map(ledger.purge(path.tenantId), (removed) => ({ removed })))
  }))

const decodeEntry = Schema.decodeUnknown(NewEntry, { errors: "all" })

const EntriesLive = HttpApiBuilder.group(Api, "entries", (handlers) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    // Raw: the body is read here (see Body.ts), so that a bad one is a 4xx with a reason, never a 500.
    return handlers.handleRaw("post", ({ path, request }) =>
      readJson(request, maxEntryBytes).pipe(
        Effect.flatMap(decodeEntry),
        Effect.catchIf(ParseResult.isParseError, HttpApiError.HttpApiDecodeError.refailParseError),
        Effect.flatMap((entry) => ledger.post(path.tenantId, entry))
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
          const backends = {
            cache: { backend: cacheBackend.name, reachable: cacheUp },
            ledger: { backend: repo.backend, reachable: ledgerUp }
          }
          if (!ledgerUp) {
            return yield* new Unhealthy({ message: "the ledger does not answer: uncached snapshots fail", ...backends })
          }
          return { status: cacheUp ? "ok" as const : "degraded" as const, ...backends }
        }))
      .handle("metrics", () => metrics.scrape)
  }))

/** The API with its handlers; needs the `Ledger`, the cache, its backend, the ledger repo and the metrics. */
export const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide([SnapshotsLive, EntriesLive, OpsLive]))

const json = (status: number, body: { readonly _tag: string; readonly message: string }) =>
  HttpServerResponse.unsafeJson(body, { status })

/**
 * Unknown routes get a 404 and unreadable requests a 400, each with a JSON body that says what is wrong, in the
 * shape of the API's own errors. Anything else passes through unchanged.
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
          message: `no route for ${method} ${url}: see /openapi.json for the routes`
        }))
      }
      if (error._tag === "RequestError") {
        return Effect.succeed(json(400, {
          _tag: "MalformedBody",
          message: `the request could not be read: ${error.message}`
        }))
      }
    }
    return Effect.failCause(cause)
  })
)

/** The HTTP app on an `HttpServer`, with `/openapi.json` and `/docs`. */
export const HttpLive = HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
  Layer.provide(ErrorsAsJson),
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(ApiLive)
)
