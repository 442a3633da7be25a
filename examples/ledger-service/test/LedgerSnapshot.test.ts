import { assert, describe, inject, it } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import * as BigDecimal from "effect/BigDecimal"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { uniqueName } from "../../../test/conformance.js"
import * as LedgerSnapshot from "../src/LedgerSnapshot.js"

const url = inject("redisUrl")

describe("LedgerSnapshot example", () => {
  // The seed's cache_roundtrip: a miss that populates, then a hit with the same balance.
  it.live("cache_roundtrip", () =>
    Effect.gen(function*() {
      const query = { tenantId: crypto.randomUUID(), asOf: LedgerSnapshot.IsoDate.make("2024-01-30") }
      const first = yield* ResponseCache.getOrResolveWithOutcome(LedgerSnapshot.demo, query)
      const second = yield* ResponseCache.getOrResolveWithOutcome(LedgerSnapshot.demo, query)
      assert.strictEqual(first.outcome, "miss")
      assert.strictEqual(second.outcome, "hit")
      assert.isTrue(BigDecimal.equals(second.value.balance, BigDecimal.make(123456n, 2)))
      // The hit is the decoded entry: the same snapshot, generated once.
      assert.strictEqual(second.value.generatedAt.epochMillis, first.value.generatedAt.epochMillis)
    }).pipe(Effect.provide(ResponseCache.layerRedis({ url, prefix: uniqueName("nexus") }))))

  it("accepts calendar dates only", () => {
    const decode = Schema.decodeUnknownEither(LedgerSnapshot.IsoDate)
    assert.isTrue(Either.isRight(decode("2024-02-29")))
    for (const bad of ["2024-02-30", "2023-02-29", "2024-13-01", "24-01-01", "2024-1-1", "2024-01-01T00:00:00Z"]) {
      assert.isTrue(Either.isLeft(decode(bad)), bad)
    }
  })
})
