/**
 * The Effect 4 side of the cross-package interop test: one process on `@ledgerlink/response-cache-effect4`, over
 * `NodeRedis.layer` (Effect's own Redis service), serving the commands of `test/support/interopWorker.ts` at the
 * repository root (its Effect 3 twin) for the same cacheable.
 */
import { NodeRedis } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { createInterface } from "node:readline"
import { Cacheable, CachePolicy, IoRedis, ResponseCache } from "../../src/index.js"

const [url, prefix] = process.argv.slice(2) as [string, string]
const counter = new Redis(url)

const balanceOf = (responseVersion?: string | true) =>
  Cacheable.make({
    name: "interop.balance.v1",
    query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
    response: Schema.Struct({ by: Schema.String, n: Schema.Number }),
    namespace: (query) => `tenant:${query.tenant}:v1`,
    policy: CachePolicy.make({ ttl: "1 minute", lock: "5 seconds" }),
    resolve: (query) =>
      Effect.promise(() => counter.incr(`${prefix}:resolves:${query.tenant}`)).pipe(
        Effect.andThen(Effect.sleep("200 millis")),
        Effect.as({ by: "effect4", n: query.n })
      ),
    ...(responseVersion === undefined ? {} : { responseVersion })
  })
const balance = balanceOf()

// The same cacheable with an explicit response version: its entries have keys of their own, shared by both packages.
const versioned = balanceOf("2")
// And with the fingerprint of its response schema (Schema 3 here, Schema 4 there): the same in both.
const fingerprinted = balanceOf(true)

// Responses of n "é" (2n + 2 bytes of JSON): over the workers' maxEntryBytes (200) from n = 100 on.
const big = Cacheable.make({
  name: "interop.big.v1",
  query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
  response: Schema.String,
  namespace: (query) => `tenant:${query.tenant}:v1`,
  policy: CachePolicy.make({ ttl: "1 minute" }),
  resolve: (query) =>
    Effect.promise(() => counter.incr(`${prefix}:resolves:${query.tenant}`)).pipe(
      Effect.as("é".repeat(query.n))
    )
})

interface Command {
  readonly id: number
  readonly op: "get" | "nearGet" | "versioned" | "fingerprinted" | "big" | "invalidate" | "nearInvalidate" | "stampede"
  readonly tenant: string
  readonly n: number
  readonly callers?: number
}

const run = (command: Command): Effect.Effect<unknown, unknown, ResponseCache.ResponseCache> => {
  const lookup = Effect.map(
    ResponseCache.getOrResolveWithOutcome(balance, { tenant: command.tenant, n: command.n }),
    ({ outcome, value }) => ({ by: value.by, outcome })
  )
  switch (command.op) {
    case "get":
    case "nearGet":
      return lookup
    case "versioned":
    case "fingerprinted":
      return Effect.map(
        ResponseCache.getOrResolveWithOutcome(command.op === "versioned" ? versioned : fingerprinted, {
          tenant: command.tenant,
          n: command.n
        }),
        ({ outcome, value }) => ({ by: value.by, outcome })
      )
    case "big":
      return Effect.map(
        ResponseCache.getOrResolveWithOutcome(big, { tenant: command.tenant, n: command.n }),
        ({ outcome, value }) => ({ length: value.length, outcome })
      )
    case "invalidate":
    case "nearInvalidate":
      return ResponseCache.invalidateNamespace(`tenant:${command.tenant}:v1`)
    case "stampede":
      return Effect.all(Array.from({ length: command.callers ?? 1 }, () => lookup), { concurrency: "unbounded" })
  }
}

const runtime = ManagedRuntime.make(
  ResponseCache.layerRedis({ prefix, commandTimeout: 2000, maxEntryBytes: 200 }).pipe(
    Layer.provide(Layer.orDie(NodeRedis.layer({ url })))
  )
)
// A second cache of this process with a near-cache in front ("nearGet"), kept coherent over the wire's channel: over
// the IoRedis layer, which gives it the connection events it needs.
const nearRuntime = ManagedRuntime.make(
  ResponseCache.layerRedis({ prefix, commandTimeout: 2000, nearCache: { capacity: 100, ttl: "1 minute" } }).pipe(
    Layer.provide(IoRedis.layer({ url, commandTimeout: 2000 }))
  )
)
await runtime.runPromise(ResponseCache.ResponseCache.useSync(() => undefined))
await nearRuntime.runPromise(ResponseCache.ResponseCache.useSync(() => undefined))
process.stdout.write("ready\n")
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as Command
  ;(command.op.startsWith("near") ? nearRuntime : runtime).runPromise(run(command)).then(
    (result) => process.stdout.write(JSON.stringify({ id: command.id, result }) + "\n"),
    (error) => process.stdout.write(JSON.stringify({ id: command.id, error: String(error) }) + "\n")
  )
}
await runtime.dispose()
await nearRuntime.dispose()
counter.disconnect()
