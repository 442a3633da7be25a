/**
 * The conformance suite of the Effect 4 package: the scenarios of the Effect 3 package's `test/conformance.ts`,
 * with the same names in the same order, written in Effect 4 (so a reader can compare them side by side), run
 * unchanged against every backend.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Cacheable, CacheKey, CachePolicy, ResponseCache, ResponseCacheMetrics } from "../src/index.js"
import { recordingTracer } from "./support/recordingTracer.js"

export interface Backend {
  readonly name: string
  /** A fresh, isolated cache (its own prefix on a shared Redis; its own store in memory). */
  readonly layer: (
    options: { readonly prefix: string; readonly strict?: boolean; readonly maxEntryBytes?: number }
  ) => Layer.Layer<
    ResponseCache.ResponseCache,
    Config.ConfigError
  >
  /** Redis time is Redis's own: those tests run on the live clock. The memory layer runs under TestClock. */
  readonly live: boolean
  /** Lets `ms` pass: TestClock for memory; real time for Redis, whose expiry is its own. */
  readonly advance: (ms: number) => Effect.Effect<void>
  /** Checks that an entry written with `ttlMs` lives exactly that long (TestClock or PTTL). */
  readonly expectLifetime: (check: {
    readonly prefix: string
    readonly lookup: Effect.Effect<ResponseCache.WithOutcome<number>, unknown, ResponseCache.ResponseCache>
    readonly entryKey: string
    readonly ttlMs: number
    readonly jitter: number
  }) => Effect.Effect<void, unknown, ResponseCache.ResponseCache>
}

/**
 * The lifetime check of the Redis backends: the entry's PTTL, read through `inspector` (a plain or a Cluster
 * client), is its whole lifetime, shortened only by jitter.
 */
export const expectLifetimeByPttl = (
  inspector: Effect.Effect<{ readonly pttl: (key: string) => Promise<number> }, never, Scope.Scope>
): Backend["expectLifetime"] =>
({ entryKey, jitter, lookup, ttlMs }) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* inspector
    assert.strictEqual((yield* lookup).outcome, "miss")
    const pttl = yield* Effect.promise(() => client.pttl(entryKey))
    // Jitter only shortens: PX is in [ttl × (1 − jitter), ttl]; a few ms pass between the write and the PTTL.
    assert.isAtMost(pttl, ttlMs)
    assert.isAtLeast(pttl, Math.floor(ttlMs * (1 - jitter)) - 1000)
    assert.strictEqual((yield* lookup).outcome, "hit")
  }))

/**
 * The command timeout of the conformance suite's Redis layers. The default (500 ms) is right for production, but a
 * CI machine running every suite on 2 shared cores can stall a command longer than that, and a timed-out command is
 * a bypass, which the scenarios do not expect. Timeouts themselves are tested with their own layers.
 */
export const testCommandTimeout = "5 seconds"

let unique = 0
/** Prefixes, cache names and namespaces unique to one test, so tests sharing a Redis never see each other. */
export const uniqueName = (label: string) => `${label}${process.pid}x${Date.now().toString(36)}x${unique++}`

class LedgerUnavailable extends Data.TaggedError("LedgerUnavailable")<{ readonly tenant: string }> {}

const Query = Schema.Struct({ tenant: Schema.String, n: Schema.Number })
type Query = typeof Query.Type

/** A cacheable whose resolver counts its runs and answers `n * 10 + runs` (so a re-resolve is visible). */
export const probe = (options: {
  readonly policy?: CachePolicy.CachePolicy
  readonly resolve?: (query: Query, run: number) => Effect.Effect<number, LedgerUnavailable>
  readonly response?: Schema.Codec<number, any>
  readonly name?: string
} = {}) => {
  const state = { runs: 0 }
  const cacheable = Cacheable.make({
    name: options.name ?? uniqueName("probe"),
    query: Query,
    response: options.response ?? Schema.Number,
    namespace: (query) => `tenant:${query.tenant}:v1`,
    policy: options.policy ?? CachePolicy.medium,
    resolve: (query) =>
      Effect.suspend(() => {
        const run = ++state.runs
        return options.resolve ? options.resolve(query, run) : Effect.succeed(query.n * 10 + run)
      })
  })
  return { cacheable, state }
}

/** A resolver that waits for `gate`, announcing on `started` that it runs and on `interrupted` that it was stopped. */
const gated = Effect.gen(function*() {
  const started = yield* Deferred.make<void>()
  const gate = yield* Deferred.make<void>()
  const interrupted = yield* Deferred.make<void>()
  const resolve = (query: Query, run: number) =>
    Deferred.succeed(started, void 0).pipe(
      Effect.andThen(Deferred.await(gate)),
      Effect.as(query.n * 10 + run),
      Effect.onInterrupt(() => Deferred.succeed(interrupted, void 0))
    )
  return { started, gate, interrupted, resolve }
})

const outcomes = (results: ReadonlyArray<ResponseCache.WithOutcome<unknown>>) => {
  const counts: Record<string, number> = {}
  for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1
  return counts
}

export const conformance = (backend: Backend) => {
  const test = backend.live ? it.live : it.effect
  const withCache = <A, E>(
    effect: Effect.Effect<A, E, ResponseCache.ResponseCache>,
    options: { readonly prefix?: string; readonly strict?: boolean; readonly maxEntryBytes?: number } = {}
  ) => Effect.provide(effect, backend.layer({ prefix: options.prefix ?? uniqueName("t"), ...options }))

  const lookup = ResponseCache.getOrResolveWithOutcome

  describe(`ResponseCache conformance: ${backend.name}`, () => {
    test("a miss resolves once and stores; a hit does not resolve", () =>
      withCache(Effect.gen(function*() {
        const { cacheable, state } = probe()
        const first = yield* lookup(cacheable, { tenant: "a", n: 1 })
        const second = yield* lookup(cacheable, { tenant: "a", n: 1 })
        assert.deepStrictEqual(first, { value: 11, outcome: "miss" })
        assert.deepStrictEqual(second, { value: 11, outcome: "hit" })
        assert.strictEqual(state.runs, 1)
        assert.deepStrictEqual(yield* ResponseCache.get(cacheable, { tenant: "a", n: 1 }), Option.some(11))
        assert.deepStrictEqual(yield* ResponseCache.get(cacheable, { tenant: "a", n: 2 }), Option.none())
      })))

    test("getOrResolve composes in a pipeline, curried", () =>
      withCache(Effect.gen(function*() {
        const { cacheable } = probe()
        const values = yield* Effect.forEach([1, 2, 1], (n) =>
          Effect.succeed({ tenant: "a", n }).pipe(
            Effect.flatMap(ResponseCache.getOrResolve(cacheable))
          ))
        assert.deepStrictEqual(values, [11, 22, 11])
      })))

    test("keys are canonical: key order does not matter, the name and every value do", () =>
      withCache(Effect.gen(function*() {
        let runs = 0
        const make = (name: string) =>
          Cacheable.make({
            name,
            query: Schema.Record(Schema.String, Schema.Unknown),
            response: Schema.Number,
            namespace: () => "shared",
            policy: CachePolicy.short,
            resolve: () => Effect.sync(() => ++runs)
          })
        const a = make(uniqueName("a"))
        const b = make(uniqueName("b"))
        const one = yield* ResponseCache.getOrResolve(a, { x: 1, y: { p: [1, 2], q: "z" } })
        const same = yield* ResponseCache.getOrResolve(a, { y: { q: "z", p: [1, 2] }, x: 1 })
        const otherValue = yield* ResponseCache.getOrResolve(a, { x: 1, y: { p: [2, 1], q: "z" } })
        const otherName = yield* ResponseCache.getOrResolve(b, { x: 1, y: { p: [1, 2], q: "z" } })
        assert.deepStrictEqual([one, same, otherValue, otherName], [1, 1, 2, 3])
      })))

    // Struct queries are keyed from their field values without encoding them again (the hot path's memo): that
    // shortcut must give exactly the answers of encoding every query.
    test("a struct query is keyed by its encoded fields and its namespace of the moment, whatever object carries it", () =>
      withCache(Effect.gen(function*() {
        let version = 1
        let runs = 0
        const make = (query: Schema.Codec<any, any>): Cacheable.Cacheable<any, number> =>
          Cacheable.make({
            name: uniqueName("fields"),
            query,
            response: Schema.Number,
            namespace: (q) => `tenant:${q.tenant}:v${version}`,
            policy: CachePolicy.short,
            resolve: () => Effect.sync(() => ++runs)
          })
        const byFields = make(Schema.Struct({ tenant: Schema.String, n: Schema.Number, filter: Schema.Unknown }))
        const get = (query: object) => ResponseCache.getOrResolve(byFields, query)
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: null }), 1)
        assert.strictEqual(yield* get({ n: 1, tenant: "a", filter: null, extra: "dropped by the encode" }), 1)
        assert.strictEqual(yield* get({ tenant: "a", n: 2, filter: null }), 2)
        // Objects in a field are keyed by their content, not collapsed: the memo only takes primitives.
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: { since: 1 } }), 3)
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: { since: 2 } }), 4)
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: { since: 1 } }), 3)
        // The same fields in another namespace (the user's function moved on) are another entry.
        version = 2
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: null }), 5)
        yield* ResponseCache.invalidateNamespace("tenant:a:v2")
        assert.strictEqual(yield* get({ tenant: "a", n: 1, filter: null }), 6)

        // (The Effect 3 suite also checks a schema annotated `onExcessProperty: "error"` here: Schema 4 has no such
        // annotation, and this package keys every query by encoding it, with no field memo to get wrong.)
        // A value of the wrong type is no key either, even where an equal-looking one was keyed.
        const wrongType = yield* Effect.flip(
          ResponseCache.getOrResolve(byFields, { tenant: "a", n: "1", filter: null })
        )
        assert.strictEqual(wrongType._tag, "SerdeError")
      })))

    test("an entry lives for its ttl, shortened by jitter only", () => {
      const prefix = uniqueName("ttl")
      return withCache(
        Effect.gen(function*() {
          const ttlMs = 60_000
          for (const jitter of [0, 0.5]) {
            const { cacheable } = probe({ policy: CachePolicy.make({ ttl: ttlMs, jitter }) })
            yield* backend.expectLifetime({
              prefix,
              lookup: lookup(cacheable, { tenant: "a", n: 1 }),
              entryKey: yield* entryKeyOf(prefix, cacheable, { tenant: "a", n: 1 }),
              ttlMs,
              jitter
            })
          }
        }),
        { prefix }
      )
    })

    test("hundreds of concurrent callers share one resolve", () =>
      withCache(Effect.gen(function*() {
        const { gate, resolve, started } = yield* gated
        const { cacheable, state } = probe({ resolve })
        const callers = yield* Effect.forkChild(Effect.forEach(
          Array.from({ length: 300 }, () => ({ tenant: "a", n: 1 })),
          (query) => lookup(cacheable, query),
          { concurrency: "unbounded" }
        ))
        yield* Deferred.await(started)
        yield* callersWaiting(300)
        yield* Deferred.succeed(gate, void 0)
        const results = yield* Fiber.join(callers)
        assert.strictEqual(state.runs, 1)
        assert.isTrue(results.every((r) => r.value === 11))
        assert.deepStrictEqual(outcomes(results), { miss: 1, coalesced: 299 })
        // The bookkeeping is empty again.
        assert.deepStrictEqual(yield* Effect.flatMap(ResponseCache.ResponseCache, (c) => c.inFlight), {
          resolves: 0,
          callers: 0
        })
      })))

    test("interrupting the first caller leaves the resolve running for the others", () =>
      withCache(Effect.gen(function*() {
        const { gate, interrupted, resolve, started } = yield* gated
        const { cacheable, state } = probe({ resolve })
        const first = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        yield* Deferred.await(started)
        const second = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        const third = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        yield* callersWaiting(3)
        yield* Fiber.interrupt(first)
        yield* Deferred.succeed(gate, void 0)
        assert.deepStrictEqual(yield* Fiber.join(second), { value: 11, outcome: "coalesced" })
        assert.deepStrictEqual(yield* Fiber.join(third), { value: 11, outcome: "coalesced" })
        assert.isFalse(yield* Deferred.isDone(interrupted))
        assert.strictEqual(state.runs, 1)
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 11, outcome: "hit" })
      })))

    test("interrupting a waiter does not disturb the others; interrupting every caller stops the resolve", () =>
      withCache(Effect.gen(function*() {
        const { gate, interrupted, resolve, started } = yield* gated
        const { cacheable } = probe({ resolve })
        const first = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        yield* Deferred.await(started)
        const waiter = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        yield* callersWaiting(2)
        yield* Fiber.interrupt(waiter)
        assert.isFalse(yield* Deferred.isDone(interrupted))
        yield* Fiber.interrupt(first)
        yield* Deferred.await(interrupted)
        assert.deepStrictEqual(yield* Effect.flatMap(ResponseCache.ResponseCache, (c) => c.inFlight), {
          resolves: 0,
          callers: 0
        })
        // Nothing was stored: the next caller resolves afresh.
        yield* Deferred.succeed(gate, void 0)
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 12, outcome: "miss" })
      })))

    test("a resolve in flight during invalidateNamespace cannot store; later calls never see its value", () =>
      withCache(Effect.gen(function*() {
        const { gate, resolve, started } = yield* gated
        let gatedRuns = 0
        const { cacheable, state } = probe({
          resolve: (query, run) => ++gatedRuns === 1 ? resolve(query, run) : Effect.succeed(query.n * 10 + run)
        })
        const before = yield* Effect.forkChild(lookup(cacheable, { tenant: "a", n: 1 }))
        yield* Deferred.await(started)
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        // A call after the invalidation does not join the resolve that started before it.
        const after = yield* lookup(cacheable, { tenant: "a", n: 1 })
        assert.deepStrictEqual(after, { value: 12, outcome: "miss" })
        yield* Deferred.succeed(gate, void 0)
        // The caller that started first still gets what it resolved...
        assert.deepStrictEqual(yield* Fiber.join(before), { value: 11, outcome: "miss" })
        // ...but its value was refused by the store: the entry is the post-invalidation one.
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 12, outcome: "hit" })
        assert.strictEqual(state.runs, 2)
      })))

    test("after invalidateNamespace nothing written before is read; other namespaces keep their entries", () =>
      withCache(Effect.gen(function*() {
        const { cacheable, state } = probe()
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        yield* lookup(cacheable, { tenant: "b", n: 1 })
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        assert.deepStrictEqual(yield* ResponseCache.get(cacheable, { tenant: "a", n: 1 }), Option.none())
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 13, outcome: "miss" })
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "b", n: 1 }), { value: 12, outcome: "hit" })
        assert.strictEqual(state.runs, 3)
      })))

    test("invalidate removes one entry", () =>
      withCache(Effect.gen(function*() {
        const { cacheable } = probe()
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        yield* lookup(cacheable, { tenant: "a", n: 2 })
        yield* ResponseCache.invalidate(cacheable, { tenant: "a", n: 1 })
        assert.strictEqual((yield* lookup(cacheable, { tenant: "a", n: 1 })).outcome, "miss")
        assert.strictEqual((yield* lookup(cacheable, { tenant: "a", n: 2 })).outcome, "hit")
      })))

    test("set stores a value that getOrResolve then serves", () =>
      withCache(Effect.gen(function*() {
        const { cacheable, state } = probe()
        yield* ResponseCache.set(cacheable, { tenant: "a", n: 1 }, 99)
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 99, outcome: "hit" })
        assert.strictEqual(state.runs, 0)
      })))

    test("purge removes exactly its namespace, whatever characters the namespaces hold", () =>
      withCache(Effect.gen(function*() {
        const namespaces = ["a*", "a", "a?b", "a[b]", "[ab]", "{t}", "a}", "a:b", "a\\", "a\\*", "", "%2A", "ns é 🎉"]
        const c = Cacheable.make({
          name: uniqueName("purge"),
          query: Schema.Struct({ ns: Schema.String, n: Schema.Number }),
          response: Schema.Number,
          namespace: (query) => query.ns,
          policy: CachePolicy.short,
          resolve: (query) => Effect.succeed(query.n)
        })
        for (const ns of namespaces) {
          for (const n of [1, 2, 3]) yield* ResponseCache.getOrResolve(c, { ns, n })
        }
        for (const victim of namespaces) {
          const removed = yield* ResponseCache.purgeNamespace(victim)
          assert.strictEqual(removed, 3, `purge of ${JSON.stringify(victim)}`)
          for (const ns of namespaces) {
            const entry = yield* ResponseCache.get(c, { ns, n: 1 })
            assert.strictEqual(Option.isSome(entry), ns !== victim, `${JSON.stringify(ns)} after purging ${victim}`)
          }
          // Refill the victim for the next round.
          for (const n of [1, 2, 3]) yield* ResponseCache.getOrResolve(c, { ns: victim, n })
        }
      })))

    test("the sweep streams page counts and removes only dead entries", () =>
      withCache(Effect.gen(function*() {
        const { cacheable } = probe()
        yield* Effect.forEach([1, 2, 3, 4, 5], (n) => lookup(cacheable, { tenant: "a", n }))
        assert.strictEqual(yield* Stream.runSum(ResponseCache.sweepNamespace("tenant:a:v1")), 0)
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        assert.strictEqual(yield* Stream.runSum(ResponseCache.sweepNamespace("tenant:a:v1")), 4)
        assert.strictEqual((yield* lookup(cacheable, { tenant: "a", n: 1 })).outcome, "hit")
      })))

    for (const strict of [false, true]) {
      test(`a corrupt entry is ${strict ? "a SerdeError in strict mode" : "a miss that heals"}`, () =>
        withCache(
          Effect.gen(function*() {
            const name = uniqueName("shape")
            // The same name with another response schema: what a deploy that forgot to bump the name looks like.
            const old = probe({ name, response: Schema.Number })
            const renamed = Cacheable.make({
              ...old.cacheable,
              response: Schema.Struct({ balance: Schema.String }),
              resolve: () => Effect.succeed({ balance: "10.00" })
            })
            yield* lookup(old.cacheable, { tenant: "a", n: 1 })
            if (strict) {
              const error = yield* Effect.flip(lookup(renamed, { tenant: "a", n: 1 }))
              assert.strictEqual(error._tag === "SerdeError" && error.subject, "entry")
              assert.strictEqual(
                (yield* Effect.flip(ResponseCache.get(renamed, { tenant: "a", n: 1 })))._tag,
                "SerdeError"
              )
            } else {
              assert.deepStrictEqual(yield* ResponseCache.get(renamed, { tenant: "a", n: 1 }), Option.none())
              assert.deepStrictEqual(
                yield* Effect.zip(lookup(renamed, { tenant: "a", n: 1 }), lookup(renamed, { tenant: "a", n: 1 })),
                [
                  { value: { balance: "10.00" }, outcome: "miss" },
                  { value: { balance: "10.00" }, outcome: "hit" }
                ]
              )
            }
          }),
          { strict }
        ))
    }

    test("a response that does not encode fails with SerdeError and stores nothing", () =>
      withCache(Effect.gen(function*() {
        const { cacheable, state } = probe({
          response: Schema.Number.check(Schema.isGreaterThan(0)),
          resolve: (_, run) => Effect.succeed(run === 1 ? -1 : 5)
        })
        const error = yield* Effect.flip(lookup(cacheable, { tenant: "a", n: 1 }))
        assert.strictEqual(error._tag, "SerdeError")
        assert.strictEqual(error._tag === "SerdeError" && error.subject, "response")
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 5, outcome: "miss" })
        assert.strictEqual(state.runs, 2)
        const viaSet = yield* Effect.flip(ResponseCache.set(cacheable, { tenant: "a", n: 2 }, -3))
        assert.strictEqual(viaSet._tag, "SerdeError")
      })))

    test("a query that does not encode fails with SerdeError before anything runs", () =>
      withCache(Effect.gen(function*() {
        let runs = 0
        const c = Cacheable.make({
          name: uniqueName("q"),
          query: Schema.Struct({ id: Schema.String.check(Schema.isUUID()) }),
          response: Schema.Number,
          namespace: () => "ns",
          policy: CachePolicy.short,
          resolve: () => Effect.sync(() => ++runs)
        })
        const error = yield* Effect.flip(ResponseCache.getOrResolve(c, { id: "not-a-uuid" }))
        assert.strictEqual(error._tag, "SerdeError")
        assert.strictEqual(error._tag === "SerdeError" && error.subject, "query")
        assert.strictEqual(runs, 0)
        const nonJson = Cacheable.make({
          name: uniqueName("q"),
          query: Schema.Struct({ n: Schema.BigInt }),
          response: Schema.Number,
          namespace: () => "ns",
          policy: CachePolicy.short,
          resolve: () => Effect.succeed(1)
        })
        const bigint = yield* Effect.flip(ResponseCache.getOrResolve(nonJson, { n: 1n }))
        assert.strictEqual(bigint._tag, "SerdeError")
      })))

    test("an unusable policy fails with TimeError", () =>
      withCache(Effect.gen(function*() {
        const policies = [
          CachePolicy.make({ ttl: 0 }),
          CachePolicy.make({ ttl: 0.5 }),
          CachePolicy.make({ ttl: Infinity }),
          CachePolicy.make({ ttl: "5 parsecs" as never }),
          CachePolicy.make({ ttl: 1000, staleWhileRevalidate: Infinity }),
          CachePolicy.make({ ttl: 1000, staleIfError: "forever" as never }),
          CachePolicy.make({ ttl: 1000, jitter: NaN }),
          CachePolicy.make({ ttl: 1000, jitter: 1.5 }),
          CachePolicy.make({ ttl: 1000, jitter: -0.1 })
        ]
        for (const policy of policies) {
          const { cacheable, state } = probe({ policy })
          const error = yield* Effect.flip(lookup(cacheable, { tenant: "a", n: 1 }))
          assert.strictEqual(error._tag, "TimeError")
          assert.strictEqual(state.runs, 0)
          assert.strictEqual(
            (yield* Effect.flip(ResponseCache.set(cacheable, { tenant: "a", n: 1 }, 1)))._tag,
            "TimeError"
          )
        }
      })))

    test("resolver errors surface unchanged and are not cached", () =>
      withCache(Effect.gen(function*() {
        const failure = new LedgerUnavailable({ tenant: "a" })
        const { cacheable, state } = probe({
          resolve: (query, run) => run === 1 ? Effect.fail(failure) : Effect.succeed(query.n + run)
        })
        const error = yield* Effect.flip(lookup(cacheable, { tenant: "a", n: 1 }))
        // Effect itself wraps an error that fails inside a span (to carry the span); it is the same error otherwise.
        assert.isTrue(error instanceof LedgerUnavailable && error.tenant === "a" && Equal.equals(error, failure))
        assert.deepStrictEqual(yield* lookup(cacheable, { tenant: "a", n: 1 }), { value: 3, outcome: "miss" })
        assert.strictEqual(state.runs, 2)
      })))

    test("every getOrResolve is a span with the cache's name, namespace and outcome", () =>
      withCache(Effect.gen(function*() {
        const { spans, tracer } = yield* recordingTracer
        const failure = new LedgerUnavailable({ tenant: "b" })
        const { cacheable } = probe({
          resolve: (q, run) =>
            q.tenant === "b" ? Effect.fail(failure) : Effect.withSpan(Effect.succeed(run), "ledger.query")
        })
        yield* Effect.gen(function*() {
          yield* lookup(cacheable, { tenant: "a", n: 1 })
          yield* lookup(cacheable, { tenant: "a", n: 1 })
          yield* Effect.exit(lookup(cacheable, { tenant: "b", n: 1 }))
        }).pipe(Effect.withTracer(tracer))
        const calls = spans.filter((span) => span.name === "ResponseCache.getOrResolve")
        assert.deepStrictEqual(
          calls.map((span) => Object.fromEntries(span.attributes)),
          [
            { "cache.name": cacheable.name, "cache.namespace": "tenant:a:v1", "cache.outcome": "miss" },
            { "cache.name": cacheable.name, "cache.namespace": "tenant:a:v1", "cache.outcome": "hit" },
            { "cache.name": cacheable.name, "cache.namespace": "tenant:b:v1", "cache.outcome": "error" }
          ]
        )
        assert.isTrue(calls.every((span) => span.status._tag === "Ended"))
        // What the resolver traces is a child of the call that resolved.
        const query = spans.find((span) => span.name === "ledger.query")
        assert.strictEqual(query?.parent._tag === "Some" && query.parent.value.spanId, calls[0]!.spanId)
      })))

    // Checks sit mid-window. On Redis, whose clock is real time, a check must not drift out of its window while a
    // loaded machine stalls the test for a few hundred ms (CI shares its cores), so windows there are a second long.
    const ttl = backend.live ? 1_000 : 200
    const window = 2 * ttl
    const inFlight = Effect.flatMap(ResponseCache.ResponseCache, (cache) => cache.inFlight)
    const settled = inFlight.pipe(
      Effect.tap(() => Effect.yieldNow),
      Effect.repeat({ until: (state) => state.resolves === 0 })
    )

    test("stale-while-revalidate: a stale entry is served at once while one refresh runs", () =>
      withCache(Effect.gen(function*() {
        const { cacheable, state } = probe({ policy: CachePolicy.make({ ttl, staleWhileRevalidate: window }) })
        const query = { tenant: "a", n: 1 }
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 11, outcome: "miss" })
        yield* backend.advance(ttl + window / 4)
        const stale = yield* Effect.all(Array.from({ length: 10 }, () => lookup(cacheable, query)), {
          concurrency: "unbounded"
        })
        assert.isTrue(stale.every((r) => r.value === 11 && r.outcome === "stale"))
        yield* settled
        assert.strictEqual(state.runs, 2)
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 12, outcome: "hit" })
        // Past ttl + window nothing is served: the refreshed entry is stale now, the original long gone.
        yield* backend.advance(ttl + window + 50)
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 13, outcome: "miss" })
        assert.deepStrictEqual(yield* inFlight, { resolves: 0, callers: 0 })
      })))

    test("stale-while-revalidate: a failed refresh keeps the stale entry and leaves nothing in flight", () =>
      withCache(Effect.gen(function*() {
        const failure = new LedgerUnavailable({ tenant: "a" })
        const { cacheable, state } = probe({
          policy: CachePolicy.make({ ttl, staleWhileRevalidate: window }),
          resolve: (query, run) => run === 2 ? Effect.fail(failure) : Effect.succeed(query.n * 10 + run)
        })
        const query = { tenant: "a", n: 1 }
        yield* lookup(cacheable, query)
        yield* backend.advance(ttl + window / 4)
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 11, outcome: "stale" })
        yield* settled
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 11, outcome: "stale" })
        yield* settled
        assert.strictEqual(state.runs, 3)
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 13, outcome: "hit" })
      })))

    test("stale-if-error: a failing resolver is answered by the entry within the window, not after", () =>
      withCache(Effect.gen(function*() {
        const failure = new LedgerUnavailable({ tenant: "a" })
        const { cacheable, state } = probe({
          policy: CachePolicy.make({ ttl, staleIfError: window }),
          resolve: (query, run) => run === 1 ? Effect.succeed(query.n * 10 + run) : Effect.fail(failure)
        })
        const query = { tenant: "a", n: 1 }
        yield* lookup(cacheable, query)
        yield* backend.advance(ttl + window / 4)
        assert.deepStrictEqual(yield* lookup(cacheable, query), { value: 11, outcome: "stale" })
        yield* backend.advance(window)
        const error = yield* Effect.flip(lookup(cacheable, query))
        assert.strictEqual(error._tag, "LedgerUnavailable")
        assert.strictEqual(state.runs, 3)
        assert.deepStrictEqual(yield* inFlight, { resolves: 0, callers: 0 })
      })))

    test("stale windows never revive an invalidated entry", () =>
      withCache(Effect.gen(function*() {
        const failure = new LedgerUnavailable({ tenant: "a" })
        const { cacheable, state } = probe({
          policy: CachePolicy.make({ ttl, staleWhileRevalidate: window, staleIfError: window }),
          resolve: (query, run) => run === 1 ? Effect.succeed(query.n * 10 + run) : Effect.fail(failure)
        })
        const query = { tenant: "a", n: 1 }
        yield* lookup(cacheable, query)
        yield* ResponseCache.purgeNamespace("tenant:a:v1")
        yield* backend.advance(ttl + window / 4)
        // Inside both windows, yet the entry was invalidated: the resolver's error, not the old value.
        assert.strictEqual((yield* Effect.flip(lookup(cacheable, query)))._tag, "LedgerUnavailable")
        yield* ResponseCache.set(cacheable, query, 50)
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        assert.strictEqual((yield* Effect.flip(lookup(cacheable, query)))._tag, "LedgerUnavailable")
        assert.strictEqual(state.runs, 3)
      })))

    test("a stale-if-error answer respects an invalidation made while the resolver ran", () =>
      withCache(Effect.gen(function*() {
        const { gate, resolve, started } = yield* gated
        const failure = new LedgerUnavailable({ tenant: "a" })
        const { cacheable } = probe({
          policy: CachePolicy.make({ ttl, staleIfError: window }),
          resolve: (query, run) =>
            run === 1 ? Effect.succeed(query.n * 10 + run) : Effect.andThen(resolve(query, run), Effect.fail(failure))
        })
        const query = { tenant: "a", n: 1 }
        yield* lookup(cacheable, query)
        yield* backend.advance(ttl + window / 4)
        const call = yield* Effect.forkChild(lookup(cacheable, query))
        yield* Deferred.await(started)
        yield* ResponseCache.invalidateNamespace("tenant:a:v1")
        yield* Deferred.succeed(gate, void 0)
        assert.strictEqual((yield* Effect.flip(Fiber.join(call)))._tag, "LedgerUnavailable")
      })))

    test("lookups are counted by outcome and cache; resolve time is recorded", () =>
      withCache(Effect.gen(function*() {
        const { cacheable } = probe()
        const metrics = ResponseCacheMetrics.forCache(cacheable.name)
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        yield* lookup(cacheable, { tenant: "a", n: 1 })
        assert.strictEqual((yield* Metric.value(metrics.lookups.miss)).count, 1)
        assert.strictEqual((yield* Metric.value(metrics.lookups.hit)).count, 2)
        assert.strictEqual((yield* Metric.value(metrics.resolveDuration)).count, 1)
        const snapshot = yield* Metric.snapshot
        const counted = snapshot.filter((metric) =>
          metric.id === "response_cache_lookups_total" && metric.attributes?.["cache"] === cacheable.name
        )
        assert.sameMembers(counted.map((metric) => metric.attributes?.["outcome"]), ["hit", "miss"])
      })))

    test("a response over maxEntryBytes is returned but not stored, and counted", () =>
      withCache(
        Effect.gen(function*() {
          const state = { runs: 0 }
          const cacheable = Cacheable.make({
            name: uniqueName("size"),
            query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
            response: Schema.String,
            namespace: (query: { readonly tenant: string }) => `tenant:${query.tenant}:v1`,
            policy: CachePolicy.medium,
            // n "é": 2n + 2 bytes of JSON in UTF-8, n + 2 characters.
            resolve: (query: { readonly n: number }) => Effect.sync(() => (state.runs++, "é".repeat(query.n)))
          })
          const outcomes = (n: number) =>
            Effect.forEach([1, 2], () => Effect.map(lookup(cacheable, { tenant: "a", n }), (r) => r.outcome))
          // 98 + 2 bytes: at the bound, stored.
          assert.deepStrictEqual(yield* outcomes(49), ["miss", "hit"])
          // 100 + 2 bytes (52 characters): over it in bytes, never stored, resolved every time.
          assert.deepStrictEqual(yield* outcomes(50), ["miss", "miss"])
          assert.strictEqual(state.runs, 3)
          // `set` does not store it either.
          yield* ResponseCache.set(cacheable, { tenant: "a", n: 60 }, "é".repeat(60))
          assert.deepStrictEqual(yield* ResponseCache.get(cacheable, { tenant: "a", n: 60 }), Option.none())
          assert.strictEqual((yield* Metric.value(ResponseCacheMetrics.forCache(cacheable.name).oversize)).count, 3)
        }),
        { maxEntryBytes: 100 }
      ))

    test("a response version is part of the key: another version is a miss, never a SerdeError, even when strict", () =>
      withCache(
        Effect.gen(function*() {
          const name = uniqueName("version")
          const make = <A>(response: Schema.Codec<A, any>, value: A, responseVersion: string) =>
            Cacheable.make({
              name,
              query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
              response,
              namespace: (query: { readonly tenant: string }) => `tenant:${query.tenant}:v1`,
              policy: CachePolicy.medium,
              resolve: () => Effect.succeed(value),
              responseVersion
            })
          const v1 = make(Schema.Number, 1, "1")
          const v2 = make(Schema.Struct({ total: Schema.Number }), { total: 2 }, "2")
          const outcome = <A>(c: Cacheable.Cacheable<{ readonly tenant: string; readonly n: number }, A>) =>
            Effect.map(lookup(c, { tenant: "a", n: 1 }), (r) => r.outcome)
          assert.deepStrictEqual([yield* outcome(v1), yield* outcome(v1)], ["miss", "hit"])
          // The same name and query under another version: its own key, so neither reads the other's entry.
          assert.deepStrictEqual([yield* outcome(v2), yield* outcome(v2)], ["miss", "hit"])
          assert.strictEqual(yield* outcome(v1), "hit")
          // One namespace all the same: an invalidation covers every version.
          yield* ResponseCache.invalidateNamespace("tenant:a:v1")
          assert.deepStrictEqual([yield* outcome(v1), yield* outcome(v2)], ["miss", "miss"])
        }),
        { strict: true }
      ))
  })
}

/** Waits, yielding, until `callers` callers wait on resolves of this cache instance (a join is not otherwise visible). */
const callersWaiting = (callers: number) =>
  ResponseCache.ResponseCache.pipe(
    Effect.flatMap((cache) => Effect.tap(cache.inFlight, () => Effect.yieldNow)),
    Effect.repeat({ until: (inFlight) => inFlight.callers >= callers })
  )

const entryKeyOf = <Q, A, E, R>(prefix: string, cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
  Effect.map(
    CacheKey.make(CacheKey.namespaceKeys(prefix, cacheable.namespace(query)), cacheable, query),
    (key) => key.entry
  )
