/**
 * Chaos against real processes: each test starts its OWN redis-server (never the suite's shared one), freezes it,
 * kills it, restarts it or starves it of memory, and checks what getOrResolve answers meanwhile. The cache layer is
 * built once per test and kept across the outage: "caching resumes by itself, with no restart of the service" is
 * the point.
 *
 * Waiting on a Redis that comes back is the one place these tests poll (short sleeps in a bounded loop); everything
 * else synchronises on handles.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Redis } from "ioredis"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { uniqueName } from "./conformance.js"
import { type RedisServer, startRedisServer } from "./support/redisServer.js"
import { Ledger } from "./support/staleness.js"

// --- Harness -------------------------------------------------------------------------------------------------

/** A redis-server of this test's own, stopped (whatever process holds the port by then) when the scope ends. */
const ownRedis = (args: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const holder: { server: RedisServer | undefined } = { server: undefined }
    yield* Effect.addFinalizer(() => Effect.promise(() => holder.server?.stop() ?? Promise.resolve()))
    holder.server = yield* Effect.promise(() => startRedisServer({ args }))
    const { port, url } = holder.server
    const current = () => holder.server!
    return {
      port,
      url,
      signal: (signal: "SIGSTOP" | "SIGCONT") => Effect.sync(() => current().process.kill(signal)),
      /** SIGKILL, and wait until the process is gone. */
      kill: Effect.promise(() =>
        new Promise<void>((resolve) => {
          const child = current().process
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
      ),
      /** A new, empty server on the same port (where the cache's client keeps reconnecting). */
      restart: Effect.promise(async () => {
        await current().stop()
        holder.server = await startRedisServer({ port, args })
      })
    }
  })

/** The Redis layer, built once in the test's scope: the same instance (the "service") lives through the outage. */
const buildCache = (options: ResponseCache.RedisOptions) =>
  Effect.map(
    Layer.build(ResponseCache.layerRedis(options)),
    (context) => Context.get(context, ResponseCache.ResponseCache)
  )

/** Captures the logs (the cache warns once per bypassed call) instead of printing them. */
/**
 * Every log line, debug included: a bypass is warned of once per distinct cause per minute, and logged at debug
 * level for each call (`count` counts those by their cause).
 */
const captureLogs = () => {
  const entries: Array<{ readonly level: string; readonly message: string; readonly cause: string }> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    entries.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.join(" ") : String(message),
      cause: String(Option.getOrElse(HashMap.get(annotations, "cause"), () => ""))
    })
  })
  return {
    entries,
    count: (pattern: RegExp) =>
      entries.filter((entry) => entry.level === "DEBUG" && /bypass/.test(entry.message) && pattern.test(entry.cause))
        .length,
    warnings: () => entries.filter((entry) => entry.level === "WARN"),
    layer: Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug))
  }
}

class Unbounded extends Data.TaggedError("Unbounded")<{ readonly what: string }> {}

/** The boundedness check: a call that takes longer than this is a failure (a generous bound, not a speed test). */
const bounded = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: "3 seconds", onTimeout: () => new Unbounded({ what }) })

/** Repeats `effect`, with short sleeps, until `done` holds of its result; fails the test after `seconds`. */
const pollUntil = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean, seconds = 10) =>
  Effect.gen(function*() {
    const deadline = Date.now() + seconds * 1000
    while (true) {
      const a = yield* effect
      if (done(a)) return a
      if (Date.now() > deadline) return yield* new Unbounded({ what: `waiting ${seconds} s for Redis` })
      yield* Effect.sleep("25 millis")
    }
  })

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const Query = Schema.Struct({ ns: Schema.String, q: Schema.Number })
const Answer = Schema.Struct({ version: Schema.Number, run: Schema.Number, pad: Schema.String })

/**
 * A query over the ledger: the resolver answers the namespace's version as it is when the resolve starts (and
 * counts its runs, so a fresh resolve is visible), padded to `padBytes`.
 */
const ledgerCacheable = (ledger: Ledger, options: { readonly padBytes?: number; readonly delayMs?: number } = {}) => {
  const state = { runs: 0 }
  const pad = "x".repeat(options.padBytes ?? 0)
  const cacheable = Cacheable.make({
    name: uniqueName("chaos"),
    query: Query,
    response: Answer,
    namespace: (query) => query.ns,
    policy: CachePolicy.make({ ttl: "1 minute" }),
    resolve: (query) =>
      Effect.sync(() => ({ version: ledger.current(query.ns), run: ++state.runs, pad })).pipe(
        Effect.zipLeft(options.delayMs ? Effect.sleep(options.delayMs) : Effect.void)
      )
  })
  return { cacheable, state }
}

type Cache = ResponseCache.ResponseCache.Service

/** A checked read: its floor taken when it starts, its answer's version checked against it. */
const checkedRead =
  (cache: Cache, ledger: Ledger, cacheable: ReturnType<typeof ledgerCacheable>["cacheable"]) =>
  (ns: string, q: number) =>
    ledger.read(
      ns,
      bounded(`read ${ns}/${q}`, cache.getOrResolveWithOutcome(cacheable, { ns, q })),
      (result) => ({ version: result.value.version, outcome: result.outcome })
    )

const settledInFlight = (cache: Cache) =>
  cache.inFlight.pipe(
    Effect.zipLeft(Effect.yieldNow()),
    Effect.repeat({ until: (inFlight) => inFlight.resolves === 0 && inFlight.callers === 0, times: 1000 })
  )

/** Waits, yielding, until `callers` callers wait on this instance's resolves. */
const callersWaiting = (cache: Cache, callers: number) =>
  cache.inFlight.pipe(
    Effect.zipLeft(Effect.yieldNow()),
    Effect.repeat({ until: (inFlight) => inFlight.callers >= callers })
  )

// --- Tests ---------------------------------------------------------------------------------------------------

describe("chaos: the cache's own redis-server frozen, killed, restarted and starved", () => {
  it.scopedLive(
    "SIGSTOP during load: calls stay bounded, the breaker opens, answers keep coming; SIGCONT: caching resumes",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const redis = yield* ownRedis()
        const cache = yield* buildCache({
          url: redis.url,
          prefix: uniqueName("stop"),
          commandTimeout: 100,
          circuitBreaker: { failures: 3, cooldown: 300 }
        })
        const ledger = new Ledger()
        const { cacheable, state } = ledgerCacheable(ledger, { delayMs: 2 })
        const call = (q: number) => bounded(`call ${q}`, cache.getOrResolveWithOutcome(cacheable, { ns: "stop", q }))
        const summary = (r: ResponseCache.WithOutcome<typeof Answer.Type>) => [r.value.run, r.outcome]

        assert.deepStrictEqual(summary(yield* call(0)), [1, "miss"])
        assert.deepStrictEqual(summary(yield* call(0)), [1, "hit"])

        yield* redis.signal("SIGSTOP")
        // 200 calls at concurrency 20 while Redis is frozen: every one answers, from a resolve of its own.
        const load = yield* Effect.forEach(range(200), (i) => call(i % 10), { concurrency: 20 })
        assert.isTrue(load.every((r) => r.outcome === "bypass"))
        assert.strictEqual(new Set(load.map((r) => r.value.run)).size, 200)
        assert.strictEqual(state.runs, 201)
        // One warning (one cause), and a debug line per call: only the first calls waited out the command
        // timeout, before the breaker opened — the rest were turned away at once without reaching Redis.
        const timedOut = logs.count(/^Redis \w+ failed: Command timed out/)
        const turnedAway = logs.count(/^Redis \w+ failed: circuit open/)
        assert.strictEqual(timedOut + turnedAway, 200)
        assert.isAtLeast(timedOut, 3)
        assert.isAtLeast(turnedAway, 150)
        const warned = logs.warnings()
        assert.strictEqual(warned.length, 1, JSON.stringify(warned))
        assert.match(warned[0]!.message, /Command timed out/)

        // After the cool-down, the breaker probes again — exactly one call reaches the frozen Redis — and re-opens.
        yield* Effect.sleep("400 millis")
        logs.entries.length = 0
        const probe = yield* Effect.all(range(20).map((i) => call(i % 10)), { concurrency: "unbounded" })
        assert.isTrue(probe.every((r) => r.outcome === "bypass"))
        assert.strictEqual(logs.count(/^Redis \w+ failed: Command timed out/), 1)
        assert.strictEqual(logs.count(/^Redis \w+ failed: circuit open/), 19)
        // The same cause within the minute: counted, not warned of again.
        assert.deepStrictEqual(logs.warnings(), [])

        // Another instance built while Redis is frozen builds (it does not wait for a hung Redis), and every other
        // operation on it fails with RedisError within the bound instead of hanging.
        const other = yield* bounded(
          "build while frozen",
          buildCache({ url: redis.url, prefix: uniqueName("stop"), commandTimeout: 100 })
        )
        const operations: Array<Effect.Effect<unknown, unknown>> = [
          other.get(cacheable, { ns: "stop", q: 0 }),
          other.set(cacheable, { ns: "stop", q: 0 }, { version: 1, run: 0, pad: "" }),
          other.invalidate(cacheable, { ns: "stop", q: 0 }),
          other.invalidateNamespace("stop"),
          other.purgeNamespace("stop"),
          Stream.runDrain(other.sweepNamespace("stop"))
        ]
        for (const operation of operations) {
          const error = yield* Effect.flip(bounded("an operation while frozen", operation))
          assert.strictEqual((error as { _tag?: string })._tag, "RedisError")
        }

        yield* redis.signal("SIGCONT")
        // The same layer instance: the next probe succeeds and the warm entry is served again.
        const resumed = yield* pollUntil(call(0), (r) => r.outcome === "hit")
        assert.deepStrictEqual(summary(resumed), [1, "hit"])
        // And new entries are written and read again.
        const runs = state.runs
        assert.deepStrictEqual(summary(yield* call(42)), [runs + 1, "miss"])
        assert.deepStrictEqual(summary(yield* call(42)), [runs + 1, "hit"])
        assert.deepStrictEqual(yield* settledInFlight(cache), { resolves: 0, callers: 0 })
      }).pipe(Effect.provide(logs.layer))
    },
    20_000
  )

  for (const near of [false, true]) {
    it.scopedLive(
      `SIGKILL and a restart on the same port${
        near ? " (near-cache on)" : ""
      }: caching resumes, and no answer is older than its floor`,
      () => {
        const logs = captureLogs()
        return Effect.gen(function*() {
          const redis = yield* ownRedis()
          const cache = yield* buildCache({
            url: redis.url,
            prefix: uniqueName("kill"),
            commandTimeout: 200,
            circuitBreaker: { failures: 3, cooldown: 200 },
            ...(near ? { nearCache: { capacity: 1000, ttl: "30 seconds" } } : {})
          })
          const ledger = new Ledger()
          const { cacheable } = ledgerCacheable(ledger, { delayMs: 2 })
          const ns = uniqueName("ledger")
          const read = checkedRead(cache, ledger, cacheable)
          const summary = (r: ResponseCache.WithOutcome<typeof Answer.Type>) => [r.value.version, r.outcome]

          assert.deepStrictEqual(summary(yield* read(ns, 0)), [1, "miss"])
          assert.deepStrictEqual(summary(yield* read(ns, 0)), [1, "hit"])
          assert.isTrue(yield* ledger.write(ns, cache.invalidateNamespace(ns)))
          assert.deepStrictEqual(summary(yield* read(ns, 0)), [2, "miss"])
          assert.deepStrictEqual(summary(yield* read(ns, 0)), [2, "hit"])

          // Readers and a writer keep going through the outage: the writer's invalidations fail while Redis is gone
          // (and promise nothing), and succeed again once it is back.
          let running = true
          const outcomes: Record<string, number> = {}
          const reader = Effect.gen(function*() {
            while (running) {
              const result = yield* read(ns, Math.floor(Math.random() * 5))
              outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1
              yield* Effect.sleep("2 millis")
            }
          })
          const writer = Effect.gen(function*() {
            while (running) {
              yield* ledger.write(ns, bounded("invalidate", cache.invalidateNamespace(ns)))
              yield* Effect.sleep("40 millis")
            }
          })
          const background = yield* Effect.fork(
            Effect.all([...range(8).map(() => reader), writer], { concurrency: "unbounded" })
          )

          yield* Effect.sleep("150 millis")
          yield* redis.kill
          yield* Effect.sleep("300 millis")
          const failedWhileDown = ledger.invalidationsFailed
          yield* redis.restart
          const restartedAt = Date.now()
          // No restart of the cache: the client reconnects, the breaker probes, and entries are written and hit again.
          yield* pollUntil(read(ns, 0), (r) => r.outcome === "hit")
          const secondsToHit = (Date.now() - restartedAt) / 1000
          yield* Effect.sleep("200 millis")
          running = false
          yield* Fiber.join(background)

          assert.deepStrictEqual(ledger.stale, [])
          assert.isAtLeast(failedWhileDown, 1)
          assert.isAbove(ledger.invalidations - ledger.invalidationsFailed, 3)
          assert.isAbove(ledger.readsAfterInvalidation, 100)
          assert.isAbove(outcomes.bypass ?? 0, 0)
          assert.isAbove(outcomes.hit ?? 0, 0)
          assert.isBelow(secondsToHit, 10)
          // A last write after everything: read at once, it is never the value from before.
          assert.isTrue(yield* ledger.write(ns, cache.invalidateNamespace(ns)))
          assert.strictEqual((yield* read(ns, 0)).value.version, ledger.current(ns))
          assert.deepStrictEqual(ledger.stale, [])
          assert.deepStrictEqual(yield* settledInFlight(cache), { resolves: 0, callers: 0 })
        }).pipe(Effect.provide(logs.layer))
      },
      20_000
    )
  }

  it.scopedLive("tiny maxmemory with allkeys-lru under write pressure and invalidations: never a stale read", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const redis = yield* ownRedis([
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        "allkeys-lru",
        "--notify-keyspace-events",
        "Ee"
      ])
      const prefix = uniqueName("lru")
      // Watches evictions: how many, and whether generation keys were among them.
      const evicted = { keys: 0, generations: 0 }
      yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Redis(redis.url)
          client.on("error", () => {})
          client.on("message", (_channel: string, key: string) => {
            evicted.keys++
            if (key.startsWith(`${prefix}:`) && key.endsWith(":g")) evicted.generations++
          })
          await client.subscribe("__keyevent@0__:evicted")
          return client
        }),
        (client) => Effect.sync(() => client.disconnect())
      )
      const cache = yield* buildCache({ url: redis.url, prefix, commandTimeout: 2000 })
      const ledger = new Ledger()
      const { cacheable } = ledgerCacheable(ledger, { padBytes: 1024 })
      const read = checkedRead(cache, ledger, cacheable)
      const namespaces = range(200).map((i) => `lru${i}`)
      const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(Math.random() * items.length)]!
      const randomQ = () => Math.floor(Math.random() * 20)
      const outcomes: Record<string, number> = {}

      // Rounds: every namespace is filled (≈ 4 MB of entries into 2 MB: old entries and generations are evicted),
      // then read again at random — half the time in a hot set that mostly stays in memory, so reads hit — with
      // invalidations interleaved, so reads land on namespaces whose generation may be gone while their entries
      // are still there.
      const hot = namespaces.slice(0, 20)
      const somewhere = () => Math.random() < 0.5 ? pick(hot) : pick(namespaces)
      for (let round = 0; round < 2; round++) {
        yield* Effect.forEach(range(4000), (i) => {
          if (i % 20 === 0) {
            const victim = somewhere()
            return Effect.asVoid(ledger.write(victim, cache.invalidateNamespace(victim)))
          }
          const [ns, q] = i < 2000 ? [namespaces[i % 200]!, Math.floor(i / 200) * 2 % 20] : [somewhere(), randomQ()]
          return Effect.map(read(ns, q), (r) => {
            outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1
          })
        }, { concurrency: 50, discard: true })
      }
      const stats = yield* Effect.acquireUseRelease(
        Effect.sync(() => new Redis(redis.url)),
        (client) => Effect.promise(() => client.info("stats")),
        (client) => Effect.promise(() => client.quit())
      )
      const evictedKeys = Number(/evicted_keys:(\d+)/.exec(stats)?.[1] ?? 0)

      assert.deepStrictEqual(ledger.stale, [])
      assert.isAbove(evictedKeys, 1000, "evictions really happened")
      assert.isAbove(ledger.readsAfterInvalidation, 1000)
      assert.isAbove(outcomes.hit ?? 0, 100, "reads were served from the cache, not only resolved")
      // Generation keys were evicted too (their entries outliving them): observed through keyspace notifications.
      assert.isAbove(evicted.generations, 0, "a generation key was evicted")
      yield* Effect.logDebug(
        `evicted ${evictedKeys} keys (${evicted.generations} generations); outcomes ${JSON.stringify(outcomes)}`
      )
      assert.deepStrictEqual(yield* settledInFlight(cache), { resolves: 0, callers: 0 })
    }).pipe(Effect.provide(logs.layer))
  }, 30_000)

  it.scopedLive(
    "in-flight bookkeeping is empty again after load, resolver failures, interruptions and an outage mid-resolve",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const redis = yield* ownRedis()
        const cache = yield* buildCache({ url: redis.url, prefix: uniqueName("flight"), commandTimeout: 100 })
        const empty = { resolves: 0, callers: 0 }

        // Load: many callers over few keys (misses, coalesced callers and hits).
        const ledger = new Ledger()
        const { cacheable } = ledgerCacheable(ledger, { delayMs: 3 })
        const loaded = yield* Effect.forEach(
          range(1000),
          (i) => bounded("load", cache.getOrResolveWithOutcome(cacheable, { ns: "flight", q: i % 20 })),
          { concurrency: 100 }
        )
        assert.isTrue(loaded.some((r) => r.outcome === "coalesced"))
        assert.deepStrictEqual(yield* settledInFlight(cache), empty)

        // Resolver failures, shared by coalesced callers.
        class Refused extends Data.TaggedError("Refused")<{}> {}
        const failing = Cacheable.make({
          name: uniqueName("failing"),
          query: Query,
          response: Schema.Number,
          namespace: (query) => query.ns,
          policy: CachePolicy.short,
          resolve: () => Effect.sleep("3 millis").pipe(Effect.zipRight(Effect.fail(new Refused())))
        })
        const failures = yield* Effect.forEach(
          range(200),
          (i) => Effect.flip(bounded("failing", cache.getOrResolve(failing, { ns: "flight", q: i % 5 }))),
          {
            concurrency: 100
          }
        )
        assert.isTrue(failures.every((error) => error._tag === "Refused"))
        assert.deepStrictEqual(yield* settledInFlight(cache), empty)

        // Interruptions: every caller of one key (its resolve is stopped), half the callers of another (it goes on).
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        let gatedRuns = 0
        const gated = Cacheable.make({
          name: uniqueName("gated"),
          query: Query,
          response: Schema.Number,
          namespace: (query) => query.ns,
          policy: CachePolicy.short,
          resolve: (query) =>
            Effect.sync(() => ++gatedRuns).pipe(
              Effect.zipLeft(Deferred.succeed(started, void 0)),
              Effect.zipLeft(Deferred.await(gate)),
              Effect.as(query.q)
            )
        })
        const a = yield* Effect.forEach(
          range(50),
          () => Effect.fork(cache.getOrResolveWithOutcome(gated, { ns: "flight", q: 1 }))
        )
        const b = yield* Effect.forEach(
          range(50),
          () => Effect.fork(cache.getOrResolveWithOutcome(gated, { ns: "flight", q: 2 }))
        )
        yield* Deferred.await(started)
        yield* callersWaiting(cache, 100)
        assert.deepStrictEqual(yield* cache.inFlight, { resolves: 2, callers: 100 })
        yield* Fiber.interruptAll(a)
        yield* Fiber.interruptAll(b.slice(0, 25))
        assert.deepStrictEqual(yield* cache.inFlight, { resolves: 1, callers: 25 })
        yield* Deferred.succeed(gate, void 0)
        const survivors = yield* Effect.forEach(b.slice(25), Fiber.join)
        assert.isTrue(survivors.every((r) => r.value === 2))
        assert.deepStrictEqual(yield* settledInFlight(cache), empty)

        // An outage in the middle of a shared resolve: the write times out, every caller still gets the value.
        const midStarted = yield* Deferred.make<void>()
        const midGate = yield* Deferred.make<void>()
        const mid = Cacheable.make({
          name: uniqueName("mid"),
          query: Query,
          response: Schema.Number,
          namespace: (query) => query.ns,
          policy: CachePolicy.short,
          resolve: (query) =>
            Deferred.succeed(midStarted, void 0).pipe(Effect.zipRight(Deferred.await(midGate)), Effect.as(query.q))
        })
        const callers = yield* Effect.forEach(
          range(20),
          () => Effect.fork(bounded("mid", cache.getOrResolveWithOutcome(mid, { ns: "flight", q: 7 })))
        )
        yield* Deferred.await(midStarted)
        yield* callersWaiting(cache, 20)
        yield* redis.signal("SIGSTOP")
        yield* Deferred.succeed(midGate, void 0)
        const answers = yield* Effect.forEach(callers, Fiber.join)
        yield* redis.signal("SIGCONT")
        assert.isTrue(answers.every((r) => r.value === 7))
        assert.deepStrictEqual(answers.map((r) => r.outcome).sort(), ["bypass", ...range(19).map(() => "coalesced")])
        assert.deepStrictEqual(yield* settledInFlight(cache), empty)
      }).pipe(Effect.provide(logs.layer))
    },
    20_000
  )
})
