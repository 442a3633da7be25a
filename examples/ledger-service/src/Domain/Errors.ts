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

/** The cache store failed an operation that cannot fail open (a purge). */
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
