/**
 * `@ledgerlink/response-cache-effect4` (packages/effect4) beside the Effect 3 rows: its memory layer, and its Redis
 * layer over Effect's `Redis` service provided by NodeRedis (node-redis) and by its own IoRedis layer. It runs in
 * an Effect 4 runtime of its own, called through a Promise per call (see packages/effect4/bench/contender.ts).
 */
import { type Backend, start } from "../../packages/effect4/bench/contender.js"
import type { Contender, Env, Instance } from "../Contender.js"
import type { Snapshot } from "../Origin.js"

const startOn = (backend: Backend) => async (env: Env): Promise<Instance> => {
  const instance = await start(env, backend)
  return {
    caller: { _tag: "promise", get: (ns, id) => instance.get(ns, id) as Promise<Snapshot> },
    invalidateNamespace: instance.invalidateNamespace,
    purgeNamespace: instance.purgeNamespace,
    inFlight: instance.inFlight,
    capacity: backend === "memory" ? 10_000 : undefined,
    close: instance.close
  }
}

export const effect4: ReadonlyArray<Contender> = [
  {
    id: "effect4-memory",
    label: "response-cache-effect4, memory layer (runPromise per call)",
    family: "ours",
    tier: "memory",
    only: ["hot", "miss"],
    shared: false,
    start: startOn("memory")
  },
  {
    id: "effect4-noderedis",
    label: "response-cache-effect4, Redis via NodeRedis (runPromise per call)",
    family: "ours",
    tier: "redis",
    only: ["hot", "miss"],
    shared: false,
    start: startOn("noderedis")
  },
  {
    id: "effect4-ioredis",
    label: "response-cache-effect4, Redis via ioredis (runPromise per call)",
    family: "ours",
    tier: "redis",
    only: ["hot", "miss"],
    shared: false,
    start: startOn("ioredis")
  }
]
