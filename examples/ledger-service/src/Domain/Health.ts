/**
 * What `GET /health` reports: which backends serve the cache and the ledger, and whether each answers.
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** The store under the cache. */
export const CacheBackendName = Schema.Literal("memory", "redis")
export type CacheBackendName = typeof CacheBackendName.Type

/** Where the ledger lives. */
export const LedgerBackendName = Schema.Literal("embedded", "postgres")
export type LedgerBackendName = typeof LedgerBackendName.Type

const backends = {
  /**
   * `status` and `reason` are the cache's own (`ResponseCache.health`): why it is degraded in the store's words —
   * the connection's last failure (WRONGPASS, ECONNREFUSED, a TLS error), a refused ACL permission — never a secret.
   */
  cache: Schema.Struct({
    backend: CacheBackendName,
    reachable: Schema.Boolean,
    status: Schema.Literal("ok", "degraded"),
    reason: Schema.optional(Schema.String)
  }),
  ledger: Schema.Struct({ backend: LedgerBackendName, reachable: Schema.Boolean })
}

/**
 * The service answers snapshots: `degraded` when the cache is unreachable or degraded (snapshots are then computed
 * uncached, or some of them).
 */
export const Health = Schema.Struct({
  status: Schema.Literal("ok", "degraded"),
  ...backends
}).annotations({ identifier: "Health" })

export type Health = typeof Health.Type

/** The ledger is unreachable: snapshots that are not cached cannot be computed. */
export class Unhealthy extends Schema.TaggedError<Unhealthy>()(
  "Unhealthy",
  { message: Schema.String, ...backends },
  HttpApiSchema.annotations({ status: 503, description: "The ledger is unreachable" })
) {}
