/**
 * How big each workload is. `full` is the published run (about five minutes on 2 cores); `tiny` only proves that
 * everything runs end to end (the test suite's check).
 */
export interface Sizes {
  readonly name: "tiny" | "full"
  /** Keys warmed for the hot-hit workloads. */
  readonly warmKeys: number
  readonly namespaces: number
  readonly hot: {
    readonly concurrency: ReadonlyArray<number>
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
  }
  readonly miss: { readonly concurrency: number; readonly rounds: number; readonly roundMs: number }
  readonly stampede: { readonly rounds: number; readonly callers: number; readonly resolverMs: number }
  readonly processes: {
    readonly rounds: number
    readonly processes: number
    readonly callersEach: number
    readonly resolverMs: number
  }
  readonly invalidation: { readonly namespaceSizes: ReadonlyArray<number>; readonly rounds: number }
  readonly sweep: { readonly doomed: number; readonly survivors: number; readonly fillConcurrency: number }
  readonly soak: { readonly keys: number; readonly redisKeys: number; readonly concurrency: number }
}

export const full: Sizes = {
  name: "full",
  warmKeys: 1000,
  namespaces: 10,
  hot: { concurrency: [64, 1], rounds: 6, roundMs: 400, warmupMs: 300 },
  miss: { concurrency: 64, rounds: 3, roundMs: 400 },
  stampede: { rounds: 3, callers: 1000, resolverMs: 50 },
  processes: { rounds: 3, processes: 4, callersEach: 250, resolverMs: 50 },
  invalidation: { namespaceSizes: [1000, 50_000], rounds: 1 },
  sweep: { doomed: 200_000, survivors: 50_000, fillConcurrency: 256 },
  // The 1,000,000-key soak of item 4 takes minutes per layer on 2 cores: `--soak-keys 1000000` runs it.
  soak: { keys: 100_000, redisKeys: 100_000, concurrency: 64 }
}

export const tiny: Sizes = {
  name: "tiny",
  warmKeys: 50,
  namespaces: 5,
  hot: { concurrency: [64, 1], rounds: 1, roundMs: 40, warmupMs: 20 },
  miss: { concurrency: 16, rounds: 1, roundMs: 40 },
  stampede: { rounds: 1, callers: 50, resolverMs: 20 },
  processes: { rounds: 1, processes: 2, callersEach: 10, resolverMs: 50 },
  invalidation: { namespaceSizes: [100], rounds: 1 },
  sweep: { doomed: 400, survivors: 100, fillConcurrency: 64 },
  soak: { keys: 3000, redisKeys: 1000, concurrency: 16 }
}

export const sizesNamed = (name: string, soakKeys?: number | undefined): Sizes => {
  const sizes = name === "tiny" ? tiny : name === "full" ? full : undefined
  if (sizes === undefined) throw new Error(`unknown sizes "${name}": use tiny or full`)
  if (soakKeys === undefined) return sizes
  return { ...sizes, soak: { ...sizes.soak, keys: soakKeys, redisKeys: soakKeys } }
}
