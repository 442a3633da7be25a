import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// Vitest 5 asks for Node 22.12+, whose `Map.groupBy` its reporter uses when it prints failures; on Node 20 (the
// repository's floor) everything else runs. Supply it there, so a failure is reported rather than crashing.
if (typeof (Map as { groupBy?: unknown }).groupBy !== "function") {
  Object.defineProperty(Map, "groupBy", {
    value: <K, V>(items: Iterable<V>, key: (item: V, index: number) => K): Map<K, Array<V>> => {
      const groups = new Map<K, Array<V>>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        const group = groups.get(k)
        if (group === undefined) groups.set(k, [item])
        else group.push(item)
      }
      return groups
    }
  })
}

// The wire package from its source, as tsconfig.json's `paths` says, so the tests need no build.
const alias = {
  "@ledgerlink/response-cache-wire": fileURLToPath(new URL("../wire/src/index.ts", import.meta.url)),
  "@ledgerlink/response-cache-effect4": fileURLToPath(new URL("./src/index.ts", import.meta.url))
}

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
