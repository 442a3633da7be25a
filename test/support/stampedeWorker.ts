/**
 * One process of the cross-process stampede test: builds a Redis layer, says "ready", waits for "go" on stdin,
 * then runs its callers at once on one cold key and prints what they got as JSON. The resolver counts its runs
 * in Redis, so the parent can add them up over every process.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { createInterface } from "node:readline"
import { Cacheable, CachePolicy, ResponseCache } from "../../src/index.js"

const [url, prefix, counterKey, lock, callers] = process.argv.slice(2) as [string, string, string, string, string]

const counter = new Redis(url)
const report = Cacheable.make({
  name: "stampede-report",
  query: Schema.Struct({ id: Schema.Number }),
  response: Schema.Struct({ total: Schema.Number }),
  namespace: () => "reports",
  policy: CachePolicy.make({ ttl: "1 minute", lock: lock === "none" ? undefined : (lock as Duration.DurationInput) }),
  resolve: () =>
    Effect.promise(() => counter.incr(counterKey)).pipe(
      Effect.zipRight(Effect.sleep("200 millis")),
      Effect.as({ total: 42 })
    )
})

const runtime = ManagedRuntime.make(ResponseCache.layerRedis({ url, prefix, commandTimeout: 2000 }))
await runtime.runPromise(ResponseCache.ResponseCache)
process.stdout.write("ready\n")
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "go") break
}
process.stdin.destroy()
const results = await runtime.runPromise(Effect.all(
  Array.from({ length: Number(callers) }, () => ResponseCache.getOrResolveWithOutcome(report, { id: 1 })),
  { concurrency: "unbounded" }
))
process.stdout.write(JSON.stringify(results.map((r) => [r.value.total, r.outcome])) + "\n")
await runtime.dispose()
counter.disconnect()
