/**
 * The service's typed errors, each with its HTTP status and a message that says what went wrong.
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { Entry } from "./Entry.js"

/** The ledger could not answer (its database is down, a query failed or timed out). Nothing was written. */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()(
  "LedgerUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503, description: "The ledger could not answer; nothing was written" })
) {}

/** The cache store failed an operation that cannot fail open (a purge). The store's own message is logged, not sent. */
export class CacheUnavailable extends Schema.TaggedError<CacheUnavailable>()(
  "CacheUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503, description: "The cache store could not be reached" })
) {}

/**
 * The entry was stored, but the tenant's cached snapshots could not be invalidated. This process serves that
 * tenant's snapshots from the ledger, uncached, until a background retry has invalidated them; the entry is in the
 * body, so a client must not post it again.
 */
export class InvalidationPending extends Schema.TaggedError<InvalidationPending>()(
  "InvalidationPending",
  { message: Schema.String, entry: Entry },
  HttpApiSchema.annotations({
    status: 503,
    description: "The entry was stored (do not post it again), but cached snapshots could not be invalidated yet"
  })
) {}

/** The request body is not what the endpoint reads (empty, not JSON, not UTF-8). */
export class MalformedBody extends Schema.TaggedError<MalformedBody>()(
  "MalformedBody",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400, description: "The body is not a JSON document" })
) {}

/** The request body is larger than the endpoint accepts. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { message: Schema.String, limit: Schema.Int },
  HttpApiSchema.annotations({ status: 413, description: "The body is larger than the limit, in bytes" })
) {}

/** The request body is not declared as JSON. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 415, description: "The body must be sent as application/json" })
) {}

/** No route matches the method and path. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()(
  "RouteNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404, description: "No such route" })
) {}

/** No token, a malformed `Authorization` header, or a token the service does not know. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 401,
    description: "Missing or unknown bearer token (`Authorization: Bearer <token>`)"
  })
) {}

/** A known token without the scope the route needs. */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String, required: Schema.String },
  HttpApiSchema.annotations({
    status: 403,
    description: "The token is valid but lacks the scope the route needs (`required` names it)"
  })
) {}

/** The tenant does not exist: tenants are created with `POST /tenants`, never by writing to them. */
export class TenantNotFound extends Schema.TaggedError<TenantNotFound>()(
  "TenantNotFound",
  { message: Schema.String, tenantId: Schema.String },
  HttpApiSchema.annotations({ status: 404, description: "No such tenant (create it with POST /tenants)" })
) {}

/** The token has used up its requests for the current window; header `Retry-After` says when to try again. */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()(
  "TooManyRequests",
  { message: Schema.String, retryAfterSeconds: Schema.Int },
  HttpApiSchema.annotations({
    status: 429,
    description: "Rate limit of the token exceeded; header Retry-After (seconds) says when to try again"
  })
) {}
