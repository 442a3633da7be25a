/**
 * One process of the cross-process stampede. Starts the contenders named on its command line against the
 * benchmark's Redis (same prefixes as the parent, so all processes share keys), prints "ready", then for each
 * JSON command on stdin runs its callers on one key and prints what happened. Its resolver counts every run
 * with INCR on the command's counter key, so the parent can add up the runs of every process.
 */
import { Redis } from "ioredis"
import { createInterface } from "node:readline"
import { type Instance, prefixOf } from "./Contender.js"
import { contenders } from "./contenders/index.js"
import { runBurst } from "./Driver.js"
import { Origin } from "./Origin.js"
import type { Command } from "./workloads/processes.js"

const [url, host, port, ids, ttlMs] = process.argv.slice(2) as [string, string, string, string, string]
const origin = new Origin()
const counter = new Redis(url)
const instances = new Map<string, Instance>()
for (const id of ids.split(",")) {
  const contender = contenders.find((c) => c.id === id)
  if (contender === undefined) throw new Error(`unknown contender ${id}`)
  const instance = await contender.start({
    url,
    host,
    port: Number(port),
    prefix: prefixOf(id),
    origin,
    ttlMs: Number(ttlMs)
  })
  if (instance !== undefined) instances.set(id, instance)
}
process.stdout.write("ready\n")

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") break
  const command = JSON.parse(line) as Command
  const instance = instances.get(command.contender)
  if (instance === undefined) {
    process.stdout.write(JSON.stringify({ error: `not started: ${command.contender}` }) + "\n")
    continue
  }
  origin.reset(command.resolverMs)
  const counted: Array<Promise<unknown>> = []
  origin.onRun = () => counted.push(counter.incr(command.counterKey))
  const { errors, wallMs } = await runBurst(instance.caller, command.callers, command.ns, command.id)
  await Promise.all(counted)
  const runs = origin.runs
  origin.reset()
  process.stdout.write(JSON.stringify({ wallMs, errors, runs }) + "\n")
}
for (const instance of instances.values()) await instance.close()
await counter.quit()
process.exit(0)
