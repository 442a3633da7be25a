/**
 * The harness's floor for the stampede: the same fibers, started the same way, sharing one in-process Promise per
 * key — no store, no schema, no Redis. What any Effect cache's stampede costs at the least on this machine: forking
 * and resuming a thousand fibers is not free, and it is not the cache's.
 */
import * as Effect from "effect/Effect"
import type { Contender } from "../Contender.js"
import type { Snapshot } from "../Origin.js"

export const floor: ReadonlyArray<Contender> = [
  {
    id: "effect-floor",
    only: ["stampede"],
    label: "floor: Effect fibers sharing one Promise per key (no cache)",
    family: "raw",
    tier: "memory",
    shared: false,
    start: async (env) => {
      const inFlight = new Map<string, Promise<Snapshot>>()
      const shared = (ns: string, id: number) => {
        const key = `${ns}:${id}`
        let answer = inFlight.get(key)
        if (answer === undefined) {
          answer = Promise.resolve(env.origin.resolve(ns, id)).finally(() => inFlight.delete(key))
          inFlight.set(key, answer)
        }
        return answer
      }
      return {
        caller: {
          _tag: "effect",
          run: (effect) => Effect.runPromise(effect as Effect.Effect<any, unknown>),
          get: (ns, id) => Effect.promise(() => shared(ns, id))
        },
        close: async () => {}
      }
    }
  }
]
