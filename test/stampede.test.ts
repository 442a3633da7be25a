import { assert, describe, inject, it } from "@effect/vitest"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { uniqueName } from "./conformance.js"

const url = inject("redisUrl")
const worker = new URL("./support/stampedeWorker.ts", import.meta.url).pathname

/** Runs `processes` workers × `callers` callers on one cold key, all released together; returns resolver runs. */
const stampede = async (options: { readonly processes: number; readonly callers: number; readonly lock: string }) => {
  const prefix = uniqueName("stampede")
  const counterKey = `${prefix}:runs`
  const children = Array.from(
    { length: options.processes },
    () =>
      spawn(process.execPath, [
        "--import",
        "tsx",
        worker,
        url,
        prefix,
        counterKey,
        options.lock,
        String(options.callers)
      ], {
        stdio: ["pipe", "pipe", "inherit"]
      })
  )
  const lines = children.map((child) => createInterface({ input: child.stdout! })[Symbol.asyncIterator]())
  for (const next of lines) assert.strictEqual((await next.next()).value, "ready")
  for (const child of children) child.stdin!.end("go\n")
  const results = await Promise.all(
    lines.map(async (next) => JSON.parse((await next.next()).value) as Array<[number, string]>)
  )
  await Promise.all(
    children.map((child) =>
      new Promise((resolve) => child.exitCode !== null ? resolve(null) : child.once("exit", resolve))
    )
  )
  const client = new Redis(url)
  const runs = Number(await client.get(counterKey))
  await client.quit()
  return { runs, results: results.flat() }
}

describe("cross-process stampede", () => {
  it("with a lock, 4 processes × 250 callers on one cold key resolve once in total", async () => {
    const { results, runs } = await stampede({ processes: 4, callers: 250, lock: "5 seconds" })
    assert.strictEqual(runs, 1)
    assert.strictEqual(results.length, 1000)
    assert.isTrue(results.every(([total]) => total === 42))
    // One miss; everyone else waited for it, in process (single flight) or across processes (the lock).
    assert.strictEqual(results.filter(([, outcome]) => outcome === "miss").length, 1)
  }, 60_000)

  it("without one, each process resolves on its own (what the lock prevents)", async () => {
    const { results, runs } = await stampede({ processes: 4, callers: 50, lock: "none" })
    assert.isAbove(runs, 1)
    assert.isTrue(results.every(([total]) => total === 42))
  }, 60_000)
})
