/**
 * The whole service as one layer, assembled from its parts: `serviceLayer(server)` takes the HTTP server, so the
 * tests run exactly this on a free port; `ServiceLive` is it on `HOST`:`PORT` from `Config`.
 *
 * Order matters for a graceful stop: the backends are built first and released last, so when the scope closes the
 * server stops listening and waits for the requests in flight while the cache and the ledger still answer them.
 */
import { type HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer, Logger } from "effect"
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  type Server,
  ServerResponse
} from "node:http"
import { RateLimitLive, TokensLive } from "./Auth.js"
import { CacheBackend, CacheLive, LedgerLive } from "./Backends.js"
import { HttpLive, logLevel } from "./Http.js"
import { Ledger } from "./Ledger.js"
import { LedgerRepo } from "./LedgerRepo.js"
import { PrometheusMetrics } from "./Metrics.js"

/** One line at startup: where the service listens and which backends it uses. */
const StartupLine = Layer.effectDiscard(Effect.gen(function*() {
  const cache = yield* CacheBackend
  const ledger = yield* LedgerRepo
  yield* HttpServer.addressFormattedWith((address) =>
    Effect.log(
      `ledger snapshot service on ${address}: cache ${cache.name} (${cache.location}), ` +
        `ledger ${ledger.backend} (${ledger.location})`
    )
  )
}))

/**
 * The service on the given server, over backends that provide the `ResponseCache`, its `CacheBackend`, the
 * `LedgerRepo`, the `Tokens` and the `RateLimit` (anything missing shows as a requirement left); its services stay
 * visible, for tests.
 */
export const serviceLayer = <E1, B, E2, R2>(
  server: Layer.Layer<HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices, E1>,
  backends: Layer.Layer<B, E2, R2>
) =>
  Layer.mergeAll(HttpLive, StartupLine).pipe(
    Layer.provideMerge(server),
    Layer.provideMerge(Layer.mergeAll(Ledger.Default, PrometheusMetrics.Default)),
    Layer.provideMerge(backends)
  )

/** Timeouts of the HTTP server, in milliseconds. */
export interface ServerTimeouts {
  /** Until the request's headers are in (slow-headers clients): default 10 s. */
  readonly headers?: number | undefined
  /** Until the whole request, body included, is in: default 30 s; then a 408 and the connection is closed. */
  readonly request?: number | undefined
  /** An idle keep-alive connection is closed after: default 5 s. */
  readonly keepAlive?: number | undefined
  /** How often the request and headers timeouts are checked: default 1 s. */
  readonly checkEvery?: number | undefined
}

/** Headers on every answer: no sniffing, no framing, no referrer, nothing cached by intermediaries. */
const securityHeaders: ReadonlyArray<readonly [string, string]> = [
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
  ["cross-origin-resource-policy", "same-origin"],
  ["cache-control", "no-store"]
]
/** The API answers JSON and text only; Swagger UI (`/docs`) runs its inline script and style. */
const apiHeaders: ReadonlyArray<readonly [string, string]> = [
  ...securityHeaders,
  ["content-security-policy", "default-src 'none'; frame-ancestors 'none'"]
]
const docsHeaders: ReadonlyArray<readonly [string, string]> = [
  ...securityHeaders,
  [
    "content-security-policy",
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; " +
    "frame-ancestors 'none'"
  ]
]
const closingHeaders: ReadonlyArray<readonly [string, string]> = [["connection", "close"]]
const ourNames = new Set([...apiHeaders, ...closingHeaders].map(([name]) => name))

/**
 * The head of an answer as Node's raw `[name, value, name, value, …]` list: the answer's own headers, then ours
 * but those it (or a header set one by one before, `set`) already has. A flat list costs a fraction of an object
 * merge: the platform's headers object is slow to spread or copy key by key (several µs an answer).
 */
const headList = (
  given: OutgoingHttpHeaders | Array<OutgoingHttpHeader> | undefined,
  ours: ReadonlyArray<readonly [string, string]>,
  set: ReadonlyArray<string>
): Array<OutgoingHttpHeader> => {
  const list: Array<OutgoingHttpHeader> = []
  if (Array.isArray(given)) {
    for (let i = 0; i + 1 < given.length; i += 2) list.push(String(given[i]), given[i + 1]!)
  } else if (given !== undefined) {
    for (const name of Object.keys(given)) {
      const value = given[name]
      if (value !== undefined) list.push(name, value)
    }
  }
  // No closure here (nor anywhere on the hot path): tsx names each one it creates, a defineProperty per call.
  let taken: Array<string> | undefined = set.length > 0 ? [...set] : undefined
  for (let i = 0; i < list.length; i += 2) {
    const lower = (list[i] as string).toLowerCase()
    if (ourNames.has(lower)) (taken ??= []).push(lower)
  }
  for (const [name, value] of ours) {
    if (taken === undefined || !taken.includes(name)) list.push(name, value)
  }
  return list
}

/**
 * A Node HTTP server with timeouts, security headers and a graceful stop.
 *
 * The security headers are added as a response writes its head, in one list with the answer's own headers (which
 * win over ours of the same name): set on each response as it arrived, they sent Node down its slow path for every
 * header of every answer.
 *
 * `close()` stops accepting and waits for open connections; Node closes the idle ones at once, but a request still
 * in flight would leave its keep-alive connection open after its response, holding the stop up to the keep-alive
 * timeout. Here, once closing, answers go out with `Connection: close`.
 */
export const createGracefulServer = (timeouts: ServerTimeouts = {}): Server => {
  let closing = false
  class HardenedResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
    override writeHead(
      statusCode: number,
      reasonOrHeaders?: string | OutgoingHttpHeaders | Array<OutgoingHttpHeader>,
      headers?: OutgoingHttpHeaders | Array<OutgoingHttpHeader>
    ): this {
      const reason = typeof reasonOrHeaders === "string" ? reasonOrHeaders : undefined
      const given = reason === undefined ? reasonOrHeaders as typeof headers : headers
      const ours = this.req.url?.startsWith("/docs") ? docsHeaders : apiHeaders
      const list = headList(given, closing ? [...ours, ...closingHeaders] : ours, this.getHeaderNames())
      return reason === undefined ? super.writeHead(statusCode, list) : super.writeHead(statusCode, reason, list)
    }
  }
  const server = createServer({
    headersTimeout: timeouts.headers ?? 10_000,
    requestTimeout: timeouts.request ?? 30_000,
    keepAliveTimeout: timeouts.keepAlive ?? 5_000,
    connectionsCheckingInterval: timeouts.checkEvery ?? 1_000,
    ServerResponse: HardenedResponse
  })
  const close = server.close.bind(server)
  server.close = (callback) => {
    closing = true
    return close(callback)
  }
  return server
}

/** The server on `HOST` (default 127.0.0.1) and `PORT` (default 3000). */
export const ServerLive = NodeHttpServer.layerConfig(() => createGracefulServer(), {
  port: Config.integer("PORT").pipe(Config.withDefault(3000)),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1"))
})

/** `LOG_LEVEL` for every log line of the process. */
const LogLevelLive = Layer.unwrapEffect(Effect.map(logLevel, Logger.minimumLogLevel))

/** The service as configured: backends, tokens and rate limit chosen from `Config` (see `Backends.ts`, `Auth.ts`). */
export const ServiceLive = serviceLayer(
  ServerLive,
  Layer.mergeAll(CacheLive, LedgerLive, TokensLive, RateLimitLive)
).pipe(Layer.provide(LogLevelLive))
