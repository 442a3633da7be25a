/**
 * Types a user relies on, checked by `npm run typecheck` (this file is in tsconfig.json's `include`): an inline query
 * literal type-checks against the cacheable's query schema without `as const`, because the query parameter does not
 * take part in inferring `Q` (`NoInfer`), and a value outside the schema's literals is still refused.
 */
import { describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { CacheError } from "../src/index.js"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"

const Price = Schema.Struct({ sku: Schema.String, currency: Schema.Literal("EUR", "USD") })
const prices = Cacheable.make({
  name: "price.v1",
  query: Price,
  response: Schema.Number,
  namespace: (q) => `prices:${q.currency}`,
  policy: CachePolicy.short,
  resolve: (q) => Effect.succeed(q.currency === "EUR" ? 1 : 2)
})

describe("types", () => {
  it("inline query literals are checked against the schema, not widened", () => {
    const got = ResponseCache.getOrResolve(prices, { sku: "x", currency: "USD" })
    expectTypeOf(got).toEqualTypeOf<Effect.Effect<number, CacheError, ResponseCache.ResponseCache>>()
    const curried = ResponseCache.getOrResolve(prices)({ sku: "x", currency: "EUR" })
    expectTypeOf(curried).toEqualTypeOf<Effect.Effect<number, CacheError, ResponseCache.ResponseCache>>()
    expectTypeOf(ResponseCache.get(prices, { sku: "x", currency: "USD" })).toEqualTypeOf<
      Effect.Effect<Option.Option<number>, CacheError, ResponseCache.ResponseCache>
    >()
    expectTypeOf(ResponseCache.set(prices, { sku: "x", currency: "USD" }, 3)).toEqualTypeOf<
      Effect.Effect<void, CacheError, ResponseCache.ResponseCache>
    >()
    expectTypeOf(ResponseCache.invalidate(prices, { sku: "x", currency: "EUR" })).toEqualTypeOf<
      Effect.Effect<void, CacheError, ResponseCache.ResponseCache>
    >()
    // The service's own methods, as a layer's user calls them.
    const viaService = Effect.flatMap(
      ResponseCache.ResponseCache,
      (cache) => cache.getOrResolve(prices, { sku: "x", currency: "USD" })
    )
    expectTypeOf(viaService).toEqualTypeOf<Effect.Effect<number, CacheError, ResponseCache.ResponseCache>>()

    // @ts-expect-error "GBP" is not one of the schema's currencies
    ResponseCache.getOrResolve(prices, { sku: "x", currency: "GBP" })
    // @ts-expect-error the stored value must be the response type
    ResponseCache.set(prices, { sku: "x", currency: "USD" }, "3")
  })
})
