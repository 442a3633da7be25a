/**
 * The memo tables of the hot path (digests, decoded payloads, namespace keys) must stay bounded however many keys
 * pass through, and keep what is in use.
 */
import { assert, describe, it } from "@effect/vitest"
import { BoundedMap } from "../src/BoundedMap.js"

describe("BoundedMap", () => {
  it("forgets what is not used once its capacity has streamed past, and keeps an entry that is read", () => {
    const map = new BoundedMap<number, number>(100)
    map.set(-1, -1)
    for (let n = 0; n < 10_000; n++) {
      map.set(n, n)
      assert.strictEqual(map.get(-1), -1, `the hot entry is still there after ${n} others`)
    }
    assert.strictEqual(map.get(9_999), 9_999)
    // Nothing that was never read again outlives `capacity` newer entries.
    for (let n = 0; n < 10_000 - 100; n++) assert.isUndefined(map.get(n), `entry ${n}`)
  })
})
