/**
 * Another application's Redis client, in a process of its own (as another application would be, so the purge's
 * own process does not slow it down): GETs one key, one at a time, timing each. Commands on stdin: "measure"
 * starts a new measurement (answered "measuring"), "report" ends it and prints its latency summary as JSON,
 * "exit" quits.
 */
import { Redis } from "ioredis"
import { performance } from "node:perf_hooks"
import { createInterface } from "node:readline"
import { Histogram } from "./Histogram.js"

const [url, key] = process.argv.slice(2) as [string, string]
const client = new Redis(url)
await client.ping()
process.stdout.write("ready\n")

let measuring: { histogram: Histogram; stop: boolean; done: Promise<void> } | undefined

const measure = () => {
  const run = { histogram: new Histogram(), stop: false, done: Promise.resolve() }
  run.done = (async () => {
    while (!run.stop) {
      const start = performance.now()
      await client.get(key)
      run.histogram.record(performance.now() - start)
    }
  })()
  return run
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") break
  if (line === "measure") {
    measuring = measure()
    process.stdout.write("measuring\n")
  } else if (line === "report" && measuring !== undefined) {
    measuring.stop = true
    await measuring.done
    process.stdout.write(JSON.stringify(measuring.histogram.summary()) + "\n")
    measuring = undefined
  }
}
client.disconnect()
process.exit(0)
