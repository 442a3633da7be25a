import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "library",
          include: ["test/**/*.test.ts"],
          globalSetup: ["test/globalSetup.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000
        }
      },
      "examples/ledger-service"
    ]
  }
})
