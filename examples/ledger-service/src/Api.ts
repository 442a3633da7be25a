/**
 * The HTTP API of the ledger snapshot service, as an `HttpApi`: every path parameter and body has a schema, every
 * error its status, and the OpenAPI document (`/openapi.json`) is derived from this definition — the bearer scheme,
 * the 401/403/404/429 answers and the `x-cache` and `Retry-After` headers included.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "./Auth.js"
import { Entry, LedgerDate, NewEntry, TenantId } from "./Domain/Entry.js"
import {
  CacheUnavailable,
  Forbidden,
  InvalidationPending,
  LedgerUnavailable,
  MalformedBody,
  PayloadTooLarge,
  TenantNotFound,
  UnsupportedMediaType
} from "./Domain/Errors.js"
import { Health, Unhealthy } from "./Domain/Health.js"
import { NewTenant, Tenant } from "./Domain/Tenant.js"
import { LedgerSnapshot } from "./LedgerSnapshot.js"

const TenantPath = Schema.Struct({ tenantId: TenantId })

type Operation = Record<string, any>

/** Adds a header to the responses of `statuses` in an operation of the OpenAPI document. */
const withHeader = (statuses: ReadonlyArray<string>, name: string, header: Operation) => (operation: Operation) => {
  for (const status of statuses) {
    const response = operation.responses?.[status]
    if (response !== undefined) response.headers = { ...response.headers, [name]: header }
  }
  return operation
}

/** Examples on the path parameters, so that contract tools (Dredd, Prism) and Swagger UI can fill them in. */
const parameterExamples: Record<string, string> = {
  tenantId: "6b1f3c2a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
  asOf: "2025-06-30"
}
const withParameterExamples = (operation: Operation) => {
  for (const parameter of operation.parameters ?? []) {
    const example = parameterExamples[parameter.name]
    if (example !== undefined) parameter.example = example
  }
  return operation
}

const xCache = withHeader(["200"], "x-cache", {
  description: "How the snapshot was answered: from the cache (hit, stale), computed (miss), shared with a " +
    "concurrent request (coalesced), or computed around an unavailable cache (bypass)",
  required: true,
  schema: { type: "string", enum: ["hit", "miss", "coalesced", "stale", "bypass"] }
})

const retryAfter = withHeader(["429"], "retry-after", {
  description: "Seconds until the token may send requests again",
  required: true,
  schema: { type: "string", pattern: "^[0-9]+$" }
})

/** Reading a tenant's snapshot, and purging its cached ones. */
export class SnapshotsApi extends HttpApiGroup.make("snapshots")
  .add(
    HttpApiEndpoint.get("snapshot", "/tenants/:tenantId/snapshots/:asOf")
      .setPath(Schema.Struct({ tenantId: TenantId, asOf: LedgerDate }))
      .addSuccess(LedgerSnapshot)
      .addError(Forbidden)
      .addError(TenantNotFound)
      .addError(LedgerUnavailable)
      .addError(CacheUnavailable)
      .annotate(
        OpenApi.Description,
        "The tenant's balance as of the date (entries posted on or before it), from the cache or computed once. " +
          "Scope: read:<tenantId> (or write:<tenantId>, or admin)."
      )
      .annotate(OpenApi.Transform, (operation) => withParameterExamples(retryAfter(xCache(operation))))
  )
  .add(
    HttpApiEndpoint.del("purge", "/tenants/:tenantId/cache")
      .setPath(TenantPath)
      .addSuccess(Schema.Struct({ removed: Schema.NonNegativeInt }))
      .addError(Forbidden)
      .addError(TenantNotFound)
      .addError(LedgerUnavailable)
      .addError(CacheUnavailable)
      .annotate(
        OpenApi.Description,
        "Invalidates the tenant's cached snapshots and sweeps them from the store. Scope: write:<tenantId> or admin."
      )
      .annotate(OpenApi.Transform, (operation) => withParameterExamples(retryAfter(operation)))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Snapshots")
{}

/** Posting an entry to a tenant's ledger. */
export class EntriesApi extends HttpApiGroup.make("entries")
  .add(
    HttpApiEndpoint.post("post", "/tenants/:tenantId/entries")
      .setPath(TenantPath)
      .setPayload(NewEntry)
      .addSuccess(Entry, { status: 201 })
      .addError(MalformedBody)
      .addError(Forbidden)
      .addError(TenantNotFound)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(LedgerUnavailable)
      .addError(InvalidationPending)
      .annotate(
        OpenApi.Description,
        "Posts an entry (amount: a decimal string), then invalidates the tenant's snapshots: the next read counts " +
          "it. Scope: write:<tenantId> or admin."
      )
      .annotate(OpenApi.Transform, (operation) => withParameterExamples(retryAfter(operation)))
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Entries")
{}

/** Creating tenants (admin). */
export class TenantsApi extends HttpApiGroup.make("tenants")
  .add(
    HttpApiEndpoint.post("create", "/tenants")
      .setPayload(NewTenant)
      .addSuccess(Tenant, { status: 201 })
      .addError(MalformedBody)
      .addError(Forbidden)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(LedgerUnavailable)
      .annotate(OpenApi.Description, "Creates a tenant with a new id. Scope: admin.")
      .annotate(OpenApi.Transform, retryAfter)
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Tenants")
{}

/** For operators: health and metrics (no token). */
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
  .add(TenantsApi)
  .add(OpsApi)
  .annotate(OpenApi.Title, "Ledger snapshots")
  .annotate(
    OpenApi.Description,
    "A tenant's balance as of a date, cached with @ledgerlink/response-cache. Every route but /health, /metrics, " +
      "/openapi.json and /docs needs Authorization: Bearer <token>."
  )
{}
