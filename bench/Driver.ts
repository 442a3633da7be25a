/**
 * Drives a contender with N calls in flight for a fixed time, timing every call. Promise contenders run N async
 * loops; Effect contenders run N fibers in their runtime, started by one `runPromise` for the whole round, so a
 * call costs what it costs inside an Effect program.
 */
import * as Effect from "effect/Effect"
import { performance } from "node:perf_hooks"
import type { Caller, Instance } from "./Contender.js"
import { Histogram, type LatencySummary } from "./Histogram.js"
import type { Snapshot } from "./Origin.js"

export interface LoopOptions {
  readonly concurrency: number
  readonly durationMs: number
  /** The next key's id; `namespaceOf` names its namespace. */
  readonly next: () => number
  readonly namespaceOf: (id: number) => string
  /** Stop after this many calls (a soak) instead of at the deadline. */
  readonly maxOps?: number | undefined
}

export interface LoopResult extends LatencySummary {
  readonly ops: number
  readonly errors: number
  readonly elapsedMs: number
  readonly opsPerSec: number
  /** Client CPU (user + system, this process) per call; Redis runs in its own process and is not counted. */
  readonly cpuUsPerOp: number
}

export const runLoop = async (caller: Caller, options: LoopOptions): Promise<LoopResult> => {
  const { concurrency, namespaceOf, next } = options
  const histogram = new Histogram()
  let errors = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deadline = t0 + options.durationMs
  const maxOps = options.maxOps ?? Infinity
  let issued = 0
  if (caller._tag === "promise") {
    const get = caller.get
    const worker = async () => {
      while (true) {
        const start = performance.now()
        if (start >= deadline || issued++ >= maxOps) return
        const id = next()
        try {
          await get(namespaceOf(id), id)
          histogram.record(performance.now() - start)
        } catch {
          errors++
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  } else {
    const get = caller.get
    // One continuation per call, which records and loops, and no closure made per call (the bench runs under
    // tsx, whose transform names every closure as it is made): the harness adds as little as the Promise loop.
    const worker = (): Effect.Effect<void, never, any> => {
      let start = 0
      const handlers = {
        onFailure: () => {
          errors++
          return loop()
        },
        onSuccess: () => {
          histogram.record(performance.now() - start)
          return loop()
        }
      }
      const loop = (): Effect.Effect<void, never, any> => {
        start = performance.now()
        if (start >= deadline || issued++ >= maxOps) return Effect.void
        const id = next()
        return Effect.matchCauseEffect(get(namespaceOf(id), id), handlers)
      }
      return Effect.suspend(loop)
    }
    await caller.run(
      Effect.forEach(Array.from({ length: concurrency }), worker, { concurrency: "unbounded", discard: true })
    )
  }
  const elapsedMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const ops = histogram.count
  return {
    ...histogram.summary(),
    ops,
    errors,
    elapsedMs,
    opsPerSec: ops / (elapsedMs / 1000),
    cpuUsPerOp: ops === 0 ? NaN : (cpu.user + cpu.system) / ops
  }
}

/** Runs `count` calls at once (a stampede), resolving when every one has answered. */
export const runBurst = async (
  caller: Caller,
  count: number,
  ns: string,
  id: number
): Promise<{ readonly wallMs: number; readonly errors: number }> => {
  let errors = 0
  const t0 = performance.now()
  if (caller._tag === "promise") {
    await Promise.all(Array.from({ length: count }, () => caller.get(ns, id).catch(() => errors++)))
  } else {
    await caller.run(
      Effect.forEach(
        Array.from({ length: count }),
        () => Effect.catchAllCause(caller.get(ns, id), () => Effect.sync(() => errors++)),
        { concurrency: "unbounded", discard: true }
      )
    )
  }
  return { wallMs: performance.now() - t0, errors }
}

/** Calls `get` for every id with `concurrency` in flight (filling a namespace, reading it back). */
export const runAll = async (
  caller: Caller,
  ids: ReadonlyArray<number>,
  namespaceOf: (id: number) => string,
  concurrency: number
): Promise<void> => {
  if (caller._tag === "promise") {
    let i = 0
    const worker = async () => {
      while (i < ids.length) {
        const id = ids[i++]!
        await caller.get(namespaceOf(id), id)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  } else {
    await caller.run(
      Effect.forEach(ids, (id) => caller.get(namespaceOf(id), id), { concurrency, discard: true })
    )
  }
}

/** Fills a namespace with the origin's current answers: through the contender's `fill`, or through misses. */
export const fill = (instance: Instance, ns: string, ids: ReadonlyArray<number>, concurrency: number) =>
  instance.fill !== undefined ? instance.fill(ns, ids) : runAll(instance.caller, ids, () => ns, concurrency)

/** Runs `f` over `items` with `concurrency` promises in flight. */
export const eachLimited = async <A>(
  items: ReadonlyArray<A>,
  concurrency: number,
  f: (item: A) => Promise<unknown>
): Promise<void> => {
  let i = 0
  const worker = async () => {
    while (i < items.length) await f(items[i++]!)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/** One call, from outside any runtime (probes). */
export const callOnce = (caller: Caller, ns: string, id: number): Promise<Snapshot> =>
  caller._tag === "promise" ? caller.get(ns, id) : caller.run(caller.get(ns, id))
