/**
 * The ledger snapshot service: `npm start`. Embedded cache and ledger by default; Redis with `REDIS_URL`,
 * PostgreSQL with `DATABASE_URL`. SIGINT or SIGTERM stop it gracefully: the server stops accepting, requests in
 * flight finish, then the Redis and PostgreSQL connections close.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { ServiceLive } from "./Service.js"

ServiceLive.pipe(Layer.launch, NodeRuntime.runMain)
