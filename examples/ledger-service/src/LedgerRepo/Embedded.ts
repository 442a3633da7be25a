/**
 * The embedded ledger: in memory, seeded with the demo tenants (`Seed.ts`). A snapshot sums the tenant's entries
 * for real on every call; nothing is precomputed, so the cache is what makes a repeated snapshot cheap.
 */
import { BigDecimal, Effect, Layer } from "effect"
import type { Entry } from "../Domain/Entry.js"
import { LedgerRepo } from "../LedgerRepo.js"
import { demoEntries, demoTenants } from "./Seed.js"

/** A ledger in this process, seeded with the demo tenants (or empty, for tests that want their own data). */
export const make = (options: { readonly seed?: boolean | undefined } = {}) =>
  Effect.sync(() => {
    const byTenant = new Map<string, Array<Entry>>()
    const entriesOf = (tenantId: string) => {
      let entries = byTenant.get(tenantId)
      if (entries === undefined) {
        entries = []
        byTenant.set(tenantId, entries)
      }
      return entries
    }
    const tenants = new Map<string, string>()
    if (options.seed ?? true) {
      for (const [name, id] of Object.entries(demoTenants)) tenants.set(id, name)
      for (const entry of demoEntries()) entriesOf(entry.tenantId).push(entry as Entry)
    }
    return LedgerRepo.of({
      backend: "embedded",
      location: "in process",
      // A new ledger on every start: nothing cached for a previous one may be served from this one.
      ledgerId: crypto.randomUUID(),
      createTenant: (name) =>
        Effect.sync(() => {
          const id = crypto.randomUUID()
          tenants.set(id, name)
          return { id, name }
        }),
      tenantExists: (tenantId) => Effect.sync(() => tenants.has(tenantId)),
      append: (tenantId, entry) =>
        Effect.sync(() => {
          const stored: Entry = { id: crypto.randomUUID(), tenantId, ...entry }
          entriesOf(tenantId).push(stored)
          return stored
        }),
      aggregate: ({ asOf, tenantId }) =>
        Effect.sync(() => {
          let balance = BigDecimal.fromBigInt(0n)
          let entries = 0
          for (const entry of byTenant.get(tenantId) ?? []) {
            if (entry.postedOn <= asOf) {
              balance = BigDecimal.sum(balance, entry.amount)
              entries++
            }
          }
          return { balance, entries }
        }),
      ping: Effect.void
    })
  })

/** The embedded ledger, seeded with the demo tenants. */
export const layer = (options: { readonly seed?: boolean | undefined } = {}): Layer.Layer<LedgerRepo> =>
  Layer.effect(LedgerRepo, make(options))
