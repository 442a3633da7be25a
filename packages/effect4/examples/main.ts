// Serves the quick start on http://127.0.0.1:3000 (REDIS_URL=redis://… for the Redis cache).
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { HttpRouter } from "effect/http"
import { createServer } from "node:http"
import { ApiLive } from "./quickstart.js"

HttpRouter.serve(ApiLive).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: 3000, host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
