/**
 * One process on each package — `@ledgerlink/response-cache` (Effect 3) and this one (Effect 4, over NodeRedis) —
 * against one redis-server, on one prefix, describing the same cacheable: they share entries, generations, locks
 * and invalidations, because both speak the wire package's protocol.
 */
import { assert, inject, layer } from "@effect/vitest"
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
        Effect.promise(() => counter.get(`${prefix}:resolves:${tenant}`).then((n) => Number(n ?? 0)))
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
  }) => Effect.Effect<A>
) =>
  Workers.use((workers) => {
    const tenant = uniqueName("t")
    const inIt = (worker: Worker) => ({
      send: <B>(command: { readonly op: string; readonly n?: number; readonly callers?: number }) =>
        worker.send<B>({ ...command, tenant })
    })
    return f({ effect3: inIt(workers.effect3), effect4: inIt(workers.effect4), resolves: workers.resolves(tenant) })
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
