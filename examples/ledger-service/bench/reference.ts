/**
 * The reference for `npm run bench:service`: a minimal `@effect/platform` HttpApi server on the same stack as the
 * service (Node, `NodeHttpServer`, `HttpApiBuilder`, tsx; no span per request, as the service) with one route of the
 * service's shape that answers a constant JSON body of `BODY_BYTES` bytes: no auth, no rate limit, no cache, no ledger.
 * Prints `reference on http://…` when it listens.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"

const Body = Schema.Struct({ tenantId: Schema.String, asOf: Schema.String, padding: Schema.String })

class Api extends HttpApi.make("reference").add(
  HttpApiGroup.make("snapshots").add(
    HttpApiEndpoint.get("snapshot", "/tenants/:tenantId/snapshots/:asOf")
      .setPath(Schema.Struct({ tenantId: Schema.String, asOf: Schema.String }))
      .addSuccess(Body)
  )
) {}

const bytes = Number(process.env.BODY_BYTES ?? 200)
// `{"tenantId":"…","asOf":"…","padding":"…"}` of exactly `bytes` bytes for the bench's path.
const base =
  JSON.stringify({ tenantId: "6b1f3c2a-0d4e-4f5a-8b6c-7d8e9f0a1b2c", asOf: "2025-06-30", padding: "" }).length
const padding = "x".repeat(Math.max(0, bytes - base))

const Handlers = HttpApiBuilder.group(
  Api,
  "snapshots",
  (handlers) =>
    handlers.handle("snapshot", ({ path }) => Effect.succeed({ tenantId: path.tenantId, asOf: path.asOf, padding }))
)

const Main = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Handlers))),
  HttpMiddleware.withTracerDisabledWhen(() => true),
  Layer.provide(Layer.effectDiscard(
    HttpServer.addressFormattedWith((address) => Effect.log(`reference on ${address}`))
  )),
  Layer.provide(NodeHttpServer.layerConfig(createServer, {
    port: Config.integer("PORT").pipe(Config.withDefault(3001)),
    host: Config.succeed("127.0.0.1")
  }))
)

Main.pipe(Layer.launch, NodeRuntime.runMain)
