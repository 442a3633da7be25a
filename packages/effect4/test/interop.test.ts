/**
 * One process on each package — `@ledgerlink/response-cache` (Effect 3) and this one (Effect 4, over NodeRedis) —
 * against one redis-server, on one prefix, describing the same cacheable: they share entries, generations, locks
 * and invalidations, because both speak the wire package's protocol.
 */
import { assert, inject, layer } from "@effect/vitest"
import { Keys } from "@ledgerlink/response-cache-wire"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { uniqueName } from "./conformance.js"

const url = inject("redisUrl")
const repository = fileURLToPath(new URL("../../../", import.meta.url))
const effect4Package = fileURLToPath(new URL("../", import.meta.url))

interface Lookup {
  readonly by: "effect3" | "effect4"
  readonly outcome: string
}

interface Worker {
  readonly send: <A>(
    command: { readonly op: string; readonly tenant: string; readonly n?: number; readonly callers?: number }
  ) => Effect.Effect<A>
}

/**
 * Starts a worker (run by tsx from its package's directory, so each resolves its own `effect`), waits for its
 * "ready", and kills it, by its pid, when the scope ends.
 */
const startWorker = (script: string, cwd: string, prefix: string) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", script, url, prefix], { cwd, stdio: ["pipe", "pipe", "inherit"] })
      ),
      (child: ChildProcess) => Effect.sync(() => child.kill("SIGKILL"))
    )
    const pending = new Map<number, (reply: { result?: unknown; error?: string }) => void>()
    let nextId = 0
    const ready = new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`${script} exited (${code}) before it was ready`)))
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line === "ready") return resolve()
        // Replies only: the workers' logs (a warning of an oversize response, say) go to stdout too.
        if (!line.startsWith("{\"id\":")) return
        const reply = JSON.parse(line) as { id: number; result?: unknown; error?: string }
        pending.get(reply.id)?.(reply)
        pending.delete(reply.id)
      })
    })
    yield* Effect.promise(() => ready)
    const worker: Worker = {
      send: <A>(command: { readonly op: string; readonly tenant: string; readonly n?: number }) =>
        Effect.promise(() =>
          new Promise<A>((resolve, reject) => {
            const id = nextId++
            pending.set(
              id,
              (reply) => reply.error === undefined ? resolve(reply.result as A) : reject(new Error(reply.error))
            )
            child.stdin!.write(JSON.stringify({ id, n: 0, ...command }) + "\n")
          })
        )
    }
    return worker
  })

/** The two processes, started once for every test here; each test works in a tenant of its own. */
class Workers extends Context.Service<Workers, {
  readonly effect3: Worker
  readonly effect4: Worker
  /** How many times either process ran the resolver for the tenant. */
  readonly resolves: (tenant: string) => Effect.Effect<number>
  readonly generation: (tenant: string) => Effect.Effect<string | null>
}>()("test/Workers") {}

const WorkersLive = Layer.effect(
  Workers,
  Effect.gen(function*() {
    const prefix = uniqueName("interop")
    const [effect3, effect4] = yield* Effect.all([
      startWorker(`${repository}test/support/interopWorker.ts`, repository, prefix),
      startWorker(`${effect4Package}test/support/interopWorker.ts`, effect4Package, prefix)
    ], { concurrency: 2 })
    const counter = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(url)),
      (client) => Effect.promise(() => client.quit())
    )
    return {
      effect3,
      effect4,
      resolves: (tenant: string) =>
        Effect.promise(() => counter.get(`${prefix}:resolves:${tenant}`).then((n) => Number(n ?? 0))),
      generation: (tenant: string) =>
        Effect.promise(() => counter.get(Keys.namespaceKeys(prefix, `tenant:${tenant}:v1`).generation))
    }
  })
)

/** A test in a tenant of its own, with both workers. */
const inTenant = <A>(
  f: (workers: {
    readonly effect3: {
      readonly send: <B>(
        command: { readonly op: string; readonly n?: number; readonly callers?: number }
      ) => Effect.Effect<B>
    }
    readonly effect4: {
      readonly send: <B>(
        command: { readonly op: string; readonly n?: number; readonly callers?: number }
      ) => Effect.Effect<B>
    }
    readonly resolves: Effect.Effect<number>
    /** The tenant's generation token, as Redis has it (null: none). */
    readonly generation: Effect.Effect<string | null>
  }) => Effect.Effect<A>
) =>
  Workers.use((workers) => {
    const tenant = uniqueName("t")
    const inIt = (worker: Worker) => ({
      send: <B>(command: { readonly op: string; readonly n?: number; readonly callers?: number }) =>
        worker.send<B>({ ...command, tenant })
    })
    return f({
      effect3: inIt(workers.effect3),
      effect4: inIt(workers.effect4),
      resolves: workers.resolves(tenant),
      generation: workers.generation(tenant)
    })
  })

layer(WorkersLive, { timeout: 60_000 })("interop: an Effect 3 process and an Effect 4 process on one Redis", (it) => {
  it.effect("a value resolved by one is a hit in the other, both ways", () =>
    inTenant(({ effect3, effect4, resolves }) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 1 }), { by: "effect3", outcome: "miss" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 1 }), { by: "effect3", outcome: "hit" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 2 }), { by: "effect4", outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 2 }), { by: "effect4", outcome: "hit" })
        assert.strictEqual(yield* resolves, 2)
      })
    ))

  it.effect("an invalidation by either is seen by both as soon as it returns", () =>
    inTenant(({ effect3, effect4, resolves }) =>
      Effect.gen(function*() {
        yield* effect3.send({ op: "get", n: 1 })
        yield* effect4.send({ op: "get", n: 2 })
        // Invalidated by the Effect 3 process: neither serves what was written before.
        yield* effect3.send({ op: "invalidate" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 1 }), { by: "effect4", outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 2 }), { by: "effect3", outcome: "miss" })
        // And the other way round.
        yield* effect4.send({ op: "invalidate" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 1 }), { by: "effect3", outcome: "miss" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 2 }), { by: "effect4", outcome: "miss" })
        // The entries written after the invalidation are shared again.
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 1 }), { by: "effect3", outcome: "hit" })
        assert.strictEqual(yield* resolves, 6)
      })
    ))

  it.effect("an invalidation by either deletes the namespace's generation, and the next read of either makes a new one", () =>
    inTenant(({ effect3, effect4, generation }) =>
      Effect.gen(function*() {
        yield* effect3.send({ op: "get", n: 1 })
        const first = yield* generation
        assert.isString(first)
        // The wire package's invalidation, whichever package sends it: a DEL of the generation key.
        yield* effect4.send({ op: "invalidate" })
        assert.isNull(yield* generation)
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 1 }), { by: "effect3", outcome: "miss" })
        const second = yield* generation
        assert.isString(second)
        assert.notStrictEqual(second, first)
        yield* effect3.send({ op: "invalidate" })
        assert.isNull(yield* generation)
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 1 }), { by: "effect4", outcome: "miss" })
        assert.notStrictEqual(yield* generation, second)
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 1 }), { by: "effect4", outcome: "hit" })
      })
    ))

  it.effect("a response version or fingerprint splits entries the same way in both: shared with the same one, apart from none", () =>
    inTenant(({ effect3, effect4 }) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "versioned", n: 1 }), {
          by: "effect3",
          outcome: "miss"
        })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "versioned", n: 1 }), {
          by: "effect3",
          outcome: "hit"
        })
        // The same name without a version has other keys, in both packages.
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "get", n: 1 }), { by: "effect4", outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "get", n: 1 }), { by: "effect4", outcome: "hit" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "versioned", n: 1 }), {
          by: "effect3",
          outcome: "hit"
        })
        // `responseVersion: true`: Schema 3 and Schema 4 declarations of one shape, one fingerprint, shared entries.
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "fingerprinted", n: 1 }), {
          by: "effect4",
          outcome: "miss"
        })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "fingerprinted", n: 1 }), {
          by: "effect4",
          outcome: "hit"
        })
      })
    ))

  it.effect("both measure maxEntryBytes alike: what one stores the other reads; what is over it neither stores", () =>
    inTenant(({ effect3, effect4, resolves }) =>
      Effect.gen(function*() {
        // 99 × "é" is 198 + 2 bytes of JSON: at the bound (200), stored by either and shared.
        assert.deepStrictEqual(yield* effect4.send({ op: "big", n: 99 }), { length: 99, outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send({ op: "big", n: 99 }), { length: 99, outcome: "hit" })
        // 100 × "é" is 202 bytes (100 characters of JSON text, under the bound counted in characters): stored by
        // neither, so every read resolves again.
        for (const worker of [effect3, effect4, effect3, effect4]) {
          assert.deepStrictEqual(yield* worker.send({ op: "big", n: 100 }), { length: 100, outcome: "miss" })
        }
        assert.strictEqual(yield* resolves, 5)
      })
    ))

  it.effect("a near-cache in either package drops what an invalidation by the other changed", () =>
    inTenant(({ effect3, effect4 }) =>
      Effect.gen(function*() {
        /** Reads through the worker's near-cached cache until it misses (its near entry dropped); the reads it took. */
        const untilMiss = (worker: typeof effect3) =>
          worker.send<Lookup>({ op: "nearGet", n: 1 }).pipe(
            Effect.repeat({ until: (lookup) => lookup.outcome === "miss", times: 200 }),
            Effect.timeout("2 seconds"),
            Effect.orDie
          )
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect3", outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect3", outcome: "hit" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect3", outcome: "hit" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect3", outcome: "hit" })
        // Invalidated by the Effect 3 process's near-cached cache, which publishes what it changed on the wire's
        // channel (a cache without a near-cache publishes nothing): the Effect 4 near-cache drops it.
        yield* effect3.send({ op: "nearInvalidate" })
        assert.deepStrictEqual(yield* untilMiss(effect4), { by: "effect4", outcome: "miss" })
        assert.deepStrictEqual(yield* effect3.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect4", outcome: "hit" })
        // And the other way round.
        yield* effect4.send({ op: "nearInvalidate" })
        assert.deepStrictEqual(yield* untilMiss(effect3), { by: "effect3", outcome: "miss" })
        assert.deepStrictEqual(yield* effect4.send<Lookup>({ op: "nearGet", n: 1 }), { by: "effect3", outcome: "hit" })
      })
    ))

  it.effect("a lock stampede across both processes resolves once", () =>
    inTenant(({ effect3, effect4, resolves }) =>
      Effect.gen(function*() {
        const [three, four] = yield* Effect.all([
          effect3.send<ReadonlyArray<Lookup>>({ op: "stampede", n: 7, callers: 20 }),
          effect4.send<ReadonlyArray<Lookup>>({ op: "stampede", n: 7, callers: 20 })
        ], { concurrency: 2 })
        assert.strictEqual(yield* resolves, 1)
        const all = [...three, ...four]
        assert.strictEqual(all.length, 40)
        // One value, whoever resolved it; every other caller waited for it.
        assert.strictEqual(new Set(all.map((lookup) => lookup.by)).size, 1)
        assert.strictEqual(all.filter((lookup) => lookup.outcome === "miss").length, 1)
      })
    ))
})
