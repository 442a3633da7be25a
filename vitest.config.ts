import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// The wire package from its source, as tsconfig.json's `paths` says, so the tests need no build.
const alias = {
  "@ledgerlink/response-cache-wire": fileURLToPath(new URL("./packages/wire/src/index.ts", import.meta.url))
}

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "library",
          include: ["test/**/*.test.ts", "packages/wire/test/**/*.test.ts"],
          globalSetup: ["test/globalSetup.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000
        }
      },
      "examples/ledger-service"
    ]
  }
})
