/**
 * Entry keys are what every deployed process, of either package and of every earlier version, reads and writes: a
 * digest that changed would orphan every entry in Redis at the next deploy. These are BLAKE3 digests of the inputs
 * as first defined, computed with `@noble/hashes` directly.
 */
import { assert, describe, it } from "@effect/vitest"
import { canonicalJson, digest } from "../src/Keys.js"

describe("Keys.digest", () => {
  it("is the BLAKE3 of the name, the fingerprint and the canonical query, for any text and any length", () => {
    const snapshot = canonicalJson({ tenantId: "7f3e2a1c-0000-4000-8000-000000000001", asOf: "2026-01-01" })
    const unicode = canonicalJson({ name: "Zoë ✓ 🧾" })
    // Over the reused encoding buffer's size: encoded on its own.
    const long = canonicalJson({ text: "é".repeat(6000) })
    for (let round = 0; round < 2; round++) {
      assert.strictEqual(
        digest("ledger.snapshot", snapshot),
        "43f632473adbcbc3975366a190b76b93339fd485b82bc00ef74883450a6df75b"
      )
      assert.strictEqual(
        digest("ledger.snapshot", unicode, "s1:0123456789abcdef0123456789abcdef"),
        "db3d5889f9a464a08ae35b2a9be34eeb4d9fe0fd3cba2781f840526619c0c770"
      )
      assert.strictEqual(digest("big", long), "6fd3444424b701583028e538bac847f9d7d8a1f075ba6dd60cc480d26cc550c0")
    }
  })
})
