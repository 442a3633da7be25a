/**
 * The HTTP API of the ledger snapshot service, as an `HttpApi`: every path parameter and body has a schema, every
 * error its status, and the OpenAPI document (`/openapi.json`) is derived from this definition.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Entry, LedgerDate, NewEntry, TenantId } from "./Domain/Entry.js"
import {
  CacheUnavailable,
  InvalidationPending,
  LedgerUnavailable,
  MalformedBody,
  PayloadTooLarge,
  UnsupportedMediaType
} from "./Domain/Errors.js"
import { Health, Unhealthy } from "./Domain/Health.js"
import { LedgerSnapshot } from "./LedgerSnapshot.js"

/** Reading a tenant's snapshot, and purging its cached ones. */
export class SnapshotsApi extends HttpApiGroup.make("snapshots")
  .add(
    HttpApiEndpoint.get("snapshot", "/tenants/:tenantId/snapshots/:asOf")
      .setPath(Schema.Struct({ tenantId: TenantId, asOf: LedgerDate }))
      .addSuccess(LedgerSnapshot)
      .addError(LedgerUnavailable)
      .addError(CacheUnavailable)
      .annotate(
        OpenApi.Description,
        "The tenant's balance as of the date (entries posted on or before it), from the cache or computed once. " +
          "Header x-cache: hit, miss, coalesced, stale or bypass."
      )
  )
  .add(
    HttpApiEndpoint.del("purge", "/tenants/:tenantId/cache")
      .setPath(Schema.Struct({ tenantId: TenantId }))
      .addSuccess(Schema.Struct({ removed: Schema.NonNegativeInt }))
      .addError(CacheUnavailable)
      .annotate(OpenApi.Description, "Invalidates the tenant's cached snapshots and sweeps them from the store")
  )
  .annotate(OpenApi.Title, "Snapshots")
{}

/** Posting an entry to a tenant's ledger. */
export class EntriesApi extends HttpApiGroup.make("entries")
  .add(
    HttpApiEndpoint.post("post", "/tenants/:tenantId/entries")
      .setPath(Schema.Struct({ tenantId: TenantId }))
      .setPayload(NewEntry)
      .addSuccess(Entry, { status: 201 })
      .addError(MalformedBody)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(LedgerUnavailable)
      .addError(InvalidationPending)
      .annotate(
        OpenApi.Description,
        "Posts an entry (amount: a decimal string), then invalidates the tenant's snapshots: the next read counts it"
      )
  )
  .annotate(OpenApi.Title, "Entries")
{}

/** For operators: health and metrics. */
export class OpsApi extends HttpApiGroup.make("ops")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Health)
      .addError(Unhealthy)
      .annotate(OpenApi.Description, "Which cache and ledger backends are in use, and whether each answers")
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Description, "The cache's metrics in the Prometheus text format")
  )
  .annotate(OpenApi.Title, "Operations")
{}

/** The whole API; `/openapi.json` is derived from it. */
export class Api extends HttpApi.make("ledger-snapshots")
  .add(SnapshotsApi)
  .add(EntriesApi)
  .add(OpsApi)
  .annotate(OpenApi.Title, "Ledger snapshots")
  .annotate(OpenApi.Description, "A tenant's balance as of a date, cached with @ledgerlink/response-cache")
{}
