import { fileURLToPath } from "node:url"
import { defineProject } from "vitest/config"

export default defineProject({
  resolve: {
    // The library from its source, as tsconfig.json's `paths` says, so the tests need no build.
    alias: {
      "@ledgerlink/response-cache-wire": fileURLToPath(new URL("../../packages/wire/src/index.ts", import.meta.url)),
      "@ledgerlink/response-cache": fileURLToPath(new URL("../../src/index.ts", import.meta.url))
    }
  },
  test: {
    name: "ledger-service",
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
