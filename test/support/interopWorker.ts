/**
 * The Effect 3 side of the cross-package interop test (`packages/effect4/test/interop.test.ts`): one process on
 * `@ledgerlink/response-cache` serving commands, one JSON line each on stdin, answered on stdout. Its twin on the
 * Effect 4 package is `packages/effect4/test/support/interopWorker.ts`; both describe the same cacheable.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { createInterface } from "node:readline"
import { Cacheable, CachePolicy, ResponseCache } from "../../src/index.js"

const [url, prefix] = process.argv.slice(2) as [string, string]
const counter = new Redis(url)

const balanceOf = (responseVersion?: string | true) =>
  Cacheable.make({
    name: "interop.balance.v1",
    query: Schema.Struct({ tenant: Schema.String, n: Schema.Number }),
    response: Schema.Struct({ by: Schema.String, n: Schema.Number }),
    namespace: (query) => `tenant:${query.tenant}:v1`,
    policy: CachePolicy.make({ ttl: "1 minute", lock: "5 seconds" }),
    // Counts its runs in Redis, so the test can add them up over both processes; slow enough to stampede.
    resolve: (query) =>
      Effect.promise(() => counter.incr(`${prefix}:resolves:${query.tenant}`)).pipe(
        Effect.zipRight(Effect.sleep("200 millis")),
        Effect.as({ by: "effect3", n: query.n })
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

const runtime = ManagedRuntime.make(ResponseCache.layerRedis({ url, prefix, commandTimeout: 2000, maxEntryBytes: 200 }))
// A second cache of this process with a near-cache in front ("nearGet"), kept coherent over the wire's channel.
const nearRuntime = ManagedRuntime.make(
  ResponseCache.layerRedis({ url, prefix, commandTimeout: 2000, nearCache: { capacity: 100, ttl: "1 minute" } })
)
await runtime.runPromise(ResponseCache.ResponseCache)
await nearRuntime.runPromise(ResponseCache.ResponseCache)
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
