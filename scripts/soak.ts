/**
 * `npm run soak` — a bounded load against a redis-server of the script's own, which it kills (SIGKILL) and
 * restarts on the same port while the load runs. The cache layer is built once and kept through the outages.
 *
 * Default: 50,000 getOrResolve calls, at most 100 in flight, over 1,000 keys (50 namespaces × 20 queries), paced
 * at 4,000 calls/s; before 1 call in 200 a random namespace is written (its version bumped, then invalidated). The
 * resolver takes 1–5 ms and answers the namespace's current version. Redis is killed at 25 % and 60 % of the
 * schedule and restarted after `--down-ms`.
 *
 * Prints requests, failed requests, stale reads (a read that started after an invalidation of its namespace had
 * returned, and answered a version from before it — see test/support/staleness.ts), p50/p99 latency and the
 * seconds from each restart to the first hit afterwards. Exits non-zero when a request failed, a read was stale, or
 * caching did not resume after a restart.
 *
 * Options: --requests N --concurrency N --namespaces N --queries N --invalidate-every N --rate N (calls/s, 0 =
 * as fast as possible) --restarts N --down-ms N --strict (surface Redis errors: failed requests are then expected)
 * --command-timeout-ms N --cooldown-ms N --near-cache (the in-process LRU in front of Redis).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { type RedisServer, startRedisServer } from "../test/support/redisServer.js"
import { Ledger } from "../test/support/staleness.js"

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "50000" },
    concurrency: { type: "string", default: "100" },
    namespaces: { type: "string", default: "50" },
    queries: { type: "string", default: "20" },
    "invalidate-every": { type: "string", default: "200" },
    rate: { type: "string", default: "4000" },
    restarts: { type: "string", default: "2" },
    "down-ms": { type: "string", default: "500" },
    "command-timeout-ms": { type: "string" },
    "cooldown-ms": { type: "string" },
    strict: { type: "boolean", default: false },
    "near-cache": { type: "boolean", default: false }
  }
})

const requests = Number(args.requests)
const concurrency = Number(args.concurrency)
const namespaceCount = Number(args.namespaces)
const queryCount = Number(args.queries)
const invalidateEvery = Number(args["invalidate-every"])
const rate = Number(args.rate)
const restarts = Number(args.restarts)
const downMs = Number(args["down-ms"])
const strict = args.strict

const namespaces = Array.from({ length: namespaceCount }, (_, i) => `tenant:${i}`)
const randomInt = (n: number) => Math.floor(Math.random() * n)

const ledger = new Ledger()

const snapshot = Cacheable.make({
  name: "soak.snapshot.v1",
  query: Schema.Struct({ ns: Schema.String, q: Schema.Number }),
  response: Schema.Struct({ ns: Schema.String, q: Schema.Number, version: Schema.Number }),
  namespace: (query) => query.ns,
  policy: CachePolicy.make({ ttl: "10 minutes", jitter: 0.1 }),
  resolve: (query) =>
    Effect.sync(() => ({ ...query, version: ledger.current(query.ns) })).pipe(
      Effect.zipLeft(Effect.sleep(1 + Math.random() * 4))
    )
})

const outcomeNames = ["failed", "hit", "miss", "coalesced", "stale", "bypass"] as const

/** What happened, filled in as the load runs. */
const stats = {
  completed: 0,
  failed: 0,
  errors: new Map<string, number>(),
  outcomes: {} as Record<string, number>,
  latencies: new Float64Array(requests),
  /** Index into `outcomeNames` per call, for latency by outcome; 0 = failed. */
  outcomeOf: new Uint8Array(requests),
  warnings: 0
}

interface Restart {
  readonly killedAtRequest: number
  killedAt: number
  restartedAt: number
  firstHitAt: number | undefined
  bypassedWhileDown: number
}
const restartLog: Array<Restart> = []

/** The cache warns once per call it answers from the resolver; count them instead of printing thousands. */
const countingLogger = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel }) => {
    if (logLevel._tag === "Warning") stats.warnings++
  })
)

const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const program = Effect.gen(function*() {
  const holder: { server: RedisServer } = { server: yield* Effect.promise(() => startRedisServer()) }
  yield* Effect.addFinalizer(() => Effect.promise(() => holder.server.stop()))
  const { port, url } = holder.server
  const cache = yield* Effect.map(
    Layer.build(ResponseCache.layerRedis({
      url,
      prefix: "soak",
      strict,
      ...(args["command-timeout-ms"] ? { commandTimeout: Number(args["command-timeout-ms"]) } : {}),
      ...(args["cooldown-ms"] ? { circuitBreaker: { cooldown: Number(args["cooldown-ms"]) } } : {}),
      ...(args["near-cache"] ? { nearCache: { capacity: 10_000, ttl: "30 seconds" } } : {})
    })),
    (context) => Context.get(context, ResponseCache.ResponseCache)
  )

  console.log(
    `soak: ${requests} getOrResolve calls, concurrency ${concurrency}, ${namespaceCount * queryCount} keys ` +
      `(${namespaceCount} namespaces × ${queryCount} queries), 1 write+invalidation per ${invalidateEvery} calls, ` +
      `${rate > 0 ? `${rate} calls/s` : "unpaced"}, ${restarts} SIGKILL+restart of redis-server :${port} ` +
      `(down ${downMs} ms), ${strict ? "strict" : "default (fail-open)"} mode` +
      (args["near-cache"] ? ", near-cache on" : "")
  )

  const started = performance.now()
  let next = 0

  const worker = Effect.gen(function*() {
    while (true) {
      const i = next++
      if (i >= requests) return
      if (rate > 0) {
        const wait = started + (i * 1000) / rate - performance.now()
        if (wait >= 1) yield* Effect.sleep(wait)
      }
      if (randomInt(invalidateEvery) === 0) {
        const ns = namespaces[randomInt(namespaceCount)]!
        yield* ledger.write(ns, Effect.timeout(cache.invalidateNamespace(ns), "5 seconds"))
      }
      const ns = namespaces[randomInt(namespaceCount)]!
      const callStarted = performance.now()
      const exit = yield* Effect.exit(
        ledger.read(
          ns,
          Effect.timeout(cache.getOrResolveWithOutcome(snapshot, { ns, q: randomInt(queryCount) }), "5 seconds"),
          (result) => ({ version: result.value.version, outcome: result.outcome })
        )
      )
      const ended = performance.now()
      stats.latencies[i] = ended - callStarted
      stats.completed++
      if (Exit.isSuccess(exit)) {
        const outcome = exit.value.outcome
        stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1
        stats.outcomeOf[i] = outcomeNames.indexOf(outcome)
        const current = restartLog[restartLog.length - 1]
        if (current !== undefined) {
          if (current.restartedAt === 0 && outcome === "bypass") current.bypassedWhileDown++
          if (
            outcome === "hit" && current.restartedAt > 0 && current.firstHitAt === undefined &&
            callStarted >= current.restartedAt
          ) current.firstHitAt = ended
        }
      } else {
        stats.failed++
        const error = exit.cause.toString().split("\n")[0]!.slice(0, 160)
        stats.errors.set(error, (stats.errors.get(error) ?? 0) + 1)
      }
    }
  })

  /** Kills Redis at evenly spread points of the schedule, once caching has resumed after the previous restart. */
  const chaos = Effect.gen(function*() {
    const points = [0.25, 0.6, 0.8, 0.9].slice(0, restarts)
    for (const point of points) {
      while (next < requests * point || (restartLog.length > 0 && restartLog.at(-1)!.firstHitAt === undefined)) {
        if (next >= requests) return
        yield* Effect.sleep("5 millis")
      }
      const restart: Restart = {
        killedAtRequest: next,
        killedAt: 0,
        restartedAt: 0,
        firstHitAt: undefined,
        bypassedWhileDown: 0
      }
      restartLog.push(restart)
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => {
          const child = holder.server.process
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
      )
      restart.killedAt = performance.now()
      yield* Effect.sleep(downMs)
      yield* Effect.promise(async () => {
        await holder.server.stop()
        holder.server = await startRedisServer({ port })
      })
      restart.restartedAt = performance.now()
    }
  })

  const chaosFiber = yield* Effect.fork(chaos)
  yield* Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true })
  yield* chaosFiber.await
  const seconds = (performance.now() - started) / 1000
  const inFlight = yield* cache.inFlight

  const sorted = stats.latencies.slice(0, stats.completed).sort()
  const ms = (x: number) => `${x.toFixed(2)} ms`
  console.log(
    `\nrequests         ${stats.completed} in ${seconds.toFixed(1)} s (${Math.round(stats.completed / seconds)}/s)`
  )
  console.log(`failed requests  ${stats.failed}`)
  for (const [error, count] of stats.errors) console.log(`                 ${count} × ${error}`)
  console.log(
    `stale reads      ${ledger.stale.length} (of ${ledger.reads} checked, ${ledger.readsAfterInvalidation} after an invalidation)`
  )
  for (const stale of ledger.stale.slice(0, 5)) console.log(`                 ${JSON.stringify(stale)}`)
  console.log(
    `latency          p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, p99.9 ${
      ms(percentile(sorted, 99.9))
    }, max ${ms(sorted[sorted.length - 1] ?? NaN)}`
  )
  console.log(`outcomes         ${Object.entries(stats.outcomes).map(([k, v]) => `${k} ${v}`).join(", ")}`)
  outcomeNames.forEach((name, index) => {
    const these = Float64Array.from(
      Array.from({ length: stats.completed }, (_, i) => i).filter((i) => stats.outcomeOf[i] === index),
      (i) => stats.latencies[i]!
    ).sort()
    if (these.length > 0) {
      console.log(`  ${name.padEnd(15)}p50 ${ms(percentile(these, 50))}, p99 ${ms(percentile(these, 99))}`)
    }
  })
  console.log(`invalidations    ${ledger.invalidations} (${ledger.invalidationsFailed} failed: Redis down)`)
  console.log(`warnings logged  ${stats.warnings} (one per call answered from the resolver)`)
  console.log(`in flight after  ${JSON.stringify(inFlight)}`)
  restartLog.forEach((restart, n) => {
    const toHit = restart.firstHitAt === undefined
      ? "NO HIT before the run ended"
      : `${((restart.firstHitAt - restart.restartedAt) / 1000).toFixed(2)} s`
    console.log(
      `restart ${n + 1}        killed at call ${restart.killedAt > 0 ? restart.killedAtRequest : "?"}, down ` +
        `${
          ((restart.restartedAt - restart.killedAt) / 1000).toFixed(2)
        } s (${restart.bypassedWhileDown} calls answered by the ` +
        `resolver meanwhile); restart → first hit: ${toHit}`
    )
  })

  const resumed = restartLog.length === restarts && restartLog.every((restart) => restart.firstHitAt !== undefined)
  if (!resumed) console.log("FAIL: caching did not resume after every restart")
  const ok = resumed && ledger.stale.length === 0 && (strict || stats.failed === 0) &&
    inFlight.resolves === 0 && inFlight.callers === 0
  console.log(ok ? "OK" : "FAIL")
  return ok
})

const ok = await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(countingLogger)))
process.exit(ok ? 0 : 1)
