/**
 * The benchmark runs end to end at tiny sizes: every workload produces its table, every contender that started
 * answers without errors. It asserts nothing about time.
 */
import { assert, describe, it } from "@effect/vitest"
import { run } from "../bench/Benchmark.js"

describe("npm run bench", () => {
  it("runs every workload end to end at tiny sizes", { timeout: 180_000 }, async () => {
    const results = await run({ sizes: "tiny" })
    const ids = results.tables.map((t) => t.id)
    for (
      const id of ["hot-64", "hot-1", "miss", "stampede", "stampede-processes", "invalidation-100", "sweep", "soak"]
    ) {
      assert.include(ids, id)
    }
    for (const table of results.tables) {
      assert.isAbove(table.rows.length, 0, `${table.id} has rows`)
      for (const row of table.rows) {
        assert.strictEqual(row.values.errors ?? 0, 0, `${table.id}: ${row.contender} answered without errors`)
      }
    }
    const hot = results.tables.find((t) => t.id === "hot-64")!
    for (
      const contender of [
        "raw",
        "ours-redis",
        "ours-memory",
        "bentocache",
        "cachified",
        "cache-manager",
        "async-cache-dedupe"
      ]
    ) {
      const row = hot.rows.find((r) => r.contender === contender)
      assert.isDefined(row, `${contender} ran`)
      assert.isAbove(row!.values.opsPerSec as number, 0)
    }
  })
})
