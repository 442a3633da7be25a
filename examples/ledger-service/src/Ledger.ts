/**
 * The ledger snapshot use cases, on the `ResponseCache` and the `LedgerRepo`:
 *
 * - a snapshot is `getOrResolveWithOutcome` on the `LedgerSnapshot` cacheable, resolved by aggregating the ledger;
 * - a new entry is written to the ledger first, then the tenant's namespace is invalidated, and only then is the
 *   entry reported as stored: once the POST has answered, no read returns a snapshot computed before the entry;
 * - if the invalidation fails (Redis down or hung), the entry is stored, and the client is told so with a 503
 *   (`InvalidationPending`, carrying the entry, so that it is not posted twice); until a background retry has
 *   invalidated the namespace, this process answers that tenant's snapshots from the ledger, uncached (`bypass`).
 *   A stale balance is never served, not even once Redis is back with the old entries still in it.
 */
import { type CacheError, CachePolicy, ResponseCache } from "@ledgerlink/response-cache"
import { BigDecimal, Config, DateTime, Duration, Effect, FiberSet, Schedule } from "effect"
import type { Entry, NewEntry } from "./Domain/Entry.js"
import { CacheUnavailable, InvalidationPending, type LedgerUnavailable, TenantNotFound } from "./Domain/Errors.js"
import type { Tenant } from "./Domain/Tenant.js"
import { LedgerRepo } from "./LedgerRepo.js"
import * as LedgerSnapshot from "./LedgerSnapshot.js"

/** How a snapshot is cached: `SNAPSHOT_TTL` (default 5 minutes), a little jitter, short stale windows. */
export const snapshotPolicy = Config.duration("SNAPSHOT_TTL").pipe(
  Config.withDefault(Duration.minutes(5)),
  Config.map((ttl) =>
    CachePolicy.make({
      ttl,
      jitter: 0.1,
      // Past its ttl, an entry is served at once while one refresh runs; an invalidated entry never is.
      staleWhileRevalidate: Duration.seconds(30),
      // If the ledger fails, a snapshot up to 10 minutes past its ttl is better than an error.
      staleIfError: Duration.minutes(10)
    })
  )
)

/** Attempts at invalidating before the POST answers: one, and three quick retries. */
const invalidateNow = Schedule.exponential(Duration.millis(20)).pipe(Schedule.intersect(Schedule.recurs(3)))

/** Then, in the background, until it succeeds. */
const invalidateEventually = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(5)))
)

/**
 * A store failure where the cache cannot fail open: logged with its cause, answered without it (a client has no use
 * for the store driver's message). Serde and policy errors cannot happen here: defects.
 */
const cacheFailure = (error: CacheError) =>
  error._tag === "RedisError"
    ? Effect.zipRight(
      Effect.logWarning("cache store failed", error.message),
      Effect.fail(new CacheUnavailable({ message: "the cache store could not be reached; try again later" }))
    )
    : Effect.die(error)

/** The use cases: `snapshot`, `post`, `purge`, `createTenant`, `requireTenant`. */
export class Ledger extends Effect.Service<Ledger>()("ledger-service/Ledger", {
  scoped: Effect.gen(function*() {
    const repo = yield* LedgerRepo
    const cache = yield* ResponseCache.ResponseCache
    const policy = yield* snapshotPolicy
    const retries = yield* FiberSet.make()

    /** The expensive part: aggregate the tenant's ledger as of the date. */
    const compute = (query: LedgerSnapshot.LedgerSnapshotQuery) =>
      Effect.zipWith(
        repo.aggregate(query),
        DateTime.now,
        (aggregate, generatedAt): LedgerSnapshot.LedgerSnapshot => ({
          tenantId: query.tenantId,
          asOf: query.asOf,
          balance: BigDecimal.normalize(aggregate.balance),
          entries: aggregate.entries,
          generatedAt
        })
      )

    const namespaceOf = (tenantId: string) => LedgerSnapshot.ledgerNamespace(repo.ledgerId, tenantId)
    const snapshots = LedgerSnapshot.cacheable(compute, policy, namespaceOf)

    /** Namespaces whose invalidation is still owed, with how many invalidations are. */
    const owed = new Map<string, number>()
    const settle = (namespace: string) =>
      Effect.sync(() => {
        const left = (owed.get(namespace) ?? 1) - 1
        if (left === 0) owed.delete(namespace)
        else owed.set(namespace, left)
      })

    const invalidateInBackground = (namespace: string) =>
      cache.invalidateNamespace(namespace).pipe(
        Effect.retry(invalidateEventually),
        Effect.zipRight(settle(namespace)),
        Effect.zipRight(Effect.logInfo(`cache invalidated after all: ${namespace}`)),
        Effect.onInterrupt(() =>
          Effect.logWarning(`shutting down with an invalidation still owed: ${namespace} may be stale in Redis`)
        )
      )

    const snapshot = (
      query: LedgerSnapshot.LedgerSnapshotQuery
    ): Effect.Effect<ResponseCache.WithOutcome<LedgerSnapshot.LedgerSnapshot>, LedgerUnavailable | CacheUnavailable> =>
      Effect.suspend(() =>
        owed.size > 0 && owed.has(namespaceOf(query.tenantId))
          ? Effect.map(compute(query), (value) => ({ value, outcome: "bypass" as const }))
          : cache.getOrResolveWithOutcome(snapshots, query).pipe(
            Effect.catchTags({ RedisError: cacheFailure, SerdeError: cacheFailure, TimeError: cacheFailure })
          )
      )

    const post = (tenantId: string, entry: NewEntry): Effect.Effect<Entry, LedgerUnavailable | InvalidationPending> =>
      Effect.gen(function*() {
        const stored = yield* repo.append(tenantId, entry)
        const namespace = namespaceOf(tenantId)
        yield* cache.invalidateNamespace(namespace).pipe(
          Effect.retry(invalidateNow),
          Effect.catchAll((error) =>
            Effect.gen(function*() {
              owed.set(namespace, (owed.get(namespace) ?? 0) + 1)
              // Forked from an uninterruptible region, the retry would inherit it and hold up the shutdown.
              yield* FiberSet.run(retries, Effect.interruptible(invalidateInBackground(namespace)))
              yield* Effect.logWarning(`entry ${stored.id} stored, cache invalidation owed: ${error.message}`)
              return yield* new InvalidationPending({
                message: `entry ${stored.id} was stored, but the cached snapshots of tenant ${tenantId} could not be ` +
                  "invalidated yet; this service answers them uncached until they are. Do not post the entry again.",
                entry: stored
              })
            })
          )
        )
        return stored
      }).pipe(
        // A client that hangs up must not leave a written entry behind an uninvalidated cache.
        Effect.uninterruptible
      )

    const purge = (tenantId: string): Effect.Effect<number, CacheUnavailable> =>
      cache.purgeNamespace(namespaceOf(tenantId)).pipe(
        Effect.catchTags({ RedisError: cacheFailure, SerdeError: cacheFailure, TimeError: cacheFailure })
      )

    const createTenant = (name: string): Effect.Effect<Tenant, LedgerUnavailable> => repo.createTenant(name)

    /** Succeeds when the tenant exists: no route answers for, or writes to, a tenant that was never created. */
    const requireTenant = (tenantId: string): Effect.Effect<void, TenantNotFound | LedgerUnavailable> =>
      Effect.flatMap(repo.tenantExists(tenantId), (exists) =>
        exists ? Effect.void : Effect.fail(
          new TenantNotFound({ message: `no tenant ${tenantId}: tenants are created with POST /tenants`, tenantId })
        ))

    return { snapshot, post, purge, createTenant, requireTenant } as const
  })
}) {}
