/**
 * The whole service as one layer, assembled from its parts: `serviceLayer(server)` takes the HTTP server, so the
 * tests run exactly this on a free port; `ServiceLive` is it on `HOST`:`PORT` from `Config`.
 *
 * Order matters for a graceful stop: the backends are built first and released last, so when the scope closes the
 * server stops listening and waits for the requests in flight while the cache and the ledger still answer them.
 */
import { type HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { createServer, type Server, type ServerResponse } from "node:http"
import { CacheBackend, CacheLive, LedgerLive } from "./Backends.js"
import { HttpLive } from "./Http.js"
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
 * The service on the given server, over backends that provide the `ResponseCache`, its `CacheBackend` and the
 * `LedgerRepo` (anything missing shows as a requirement left); its services stay visible, for tests.
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

/**
 * A Node HTTP server for a graceful stop. `close()` stops accepting and waits for open connections; Node closes
 * the idle ones at once, but a request still in flight would leave its keep-alive connection open after its
 * response, holding the stop up to the keep-alive timeout. Here, once closing, such responses go out with
 * `Connection: close`.
 */
export const createGracefulServer = (): Server => {
  const server = createServer()
  const inFlight = new Set<ServerResponse>()
  server.on("request", (_request, response: ServerResponse) => {
    inFlight.add(response)
    response.once("close", () => inFlight.delete(response))
  })
  const close = server.close.bind(server)
  server.close = (callback) => {
    for (const response of inFlight) {
      if (!response.headersSent) response.setHeader("connection", "close")
    }
    return close(callback)
  }
  return server
}

/** The server on `HOST` (default 127.0.0.1) and `PORT` (default 3000). */
export const ServerLive = NodeHttpServer.layerConfig(createGracefulServer, {
  port: Config.integer("PORT").pipe(Config.withDefault(3000)),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1"))
})

/** The service as configured: backends chosen from `Config` (see `Backends.ts`). */
export const ServiceLive = serviceLayer(ServerLive, Layer.merge(CacheLive, LedgerLive))
