/**
 * Tenants: a tenant exists once an admin has created it (`POST /tenants`); every tenant route answers 404 for any
 * other id, and no route creates a tenant by writing to it.
 */
import { Schema } from "effect"
import { TenantId } from "./Entry.js"

/** A tenant's display name: 1 to 100 characters, no control characters. */
export const TenantName = Schema.String.pipe(
  Schema.pattern(/^[^\p{Cc}]{1,100}$/u, {
    message: () => "expected a name of 1 to 100 characters, no control characters"
  }),
  Schema.annotations({ identifier: "TenantName", examples: ["Acme Corp"] })
)

/** The body of `POST /tenants`; unknown fields are rejected rather than ignored. */
export const NewTenant = Schema.Struct({ name: TenantName }).annotations({
  identifier: "NewTenant",
  parseOptions: { onExcessProperty: "error" },
  examples: [{ name: "Acme Corp" }]
})

export type NewTenant = typeof NewTenant.Type

/** A tenant as stored. */
export const Tenant = Schema.Struct({ id: TenantId, name: Schema.String }).annotations({
  identifier: "Tenant",
  examples: [{ id: "6b1f3c2a-0d4e-4f5a-8b6c-7d8e9f0a1b2c", name: "acme" }]
})

export type Tenant = typeof Tenant.Type
