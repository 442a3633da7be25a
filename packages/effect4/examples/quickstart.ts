// The README's Effect 4 quick start: a ledger balance behind an HttpApi handler, cached with getOrResolve — in
// memory, or on Redis through Effect's own Redis service (NodeRedis) when REDIS_URL is set.
import { NodeRedis } from "@effect/platform-node"
import { Cacheable, CachePolicy, ResponseCache } from "@ledgerlink/response-cache-effect4"
import { Config, Effect, Layer, Option, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"

const BalanceQuery = Schema.Struct({ tenantId: Schema.String, account: Schema.String })
const Balance = Schema.Struct({ account: Schema.String, balance: Schema.String })

// 1. Describe the query once.
const balances = Cacheable.make({
  name: "balance.v1", // part of every key: bump it when the response shape changes
  query: BalanceQuery,
  response: Balance,
  namespace: (q) => `tenant:${q.tenantId}:v1`, // invalidated together
  policy: CachePolicy.make({ ttl: "10 minutes", jitter: 0.1 }),
  resolve: (q) => Effect.succeed({ account: q.account, balance: "1234.56" }).pipe(Effect.delay("20 millis"))
})

// 2. An HttpApi endpoint whose handler answers from the cache.
export const Api = HttpApi.make("ledger").add(
  HttpApiGroup.make("balances").add(
    HttpApiEndpoint.get("balance", "/tenants/:tenantId/balances/:account", {
      params: BalanceQuery,
      success: Schema.Struct({ ...Balance.fields, cache: Schema.String })
    })
  )
)

export const BalancesLive = HttpApiBuilder.group(
  Api,
  "balances",
  Effect.fnUntraced(function*(handlers) {
    // Taken once, when the layer is built: the handler then needs nothing per request.
    const cache = yield* ResponseCache.ResponseCache
    return handlers.handle("balance", ({ params }) =>
      cache.getOrResolveWithOutcome(balances, params).pipe(
        Effect.map(({ outcome, value }) => ({ ...value, cache: outcome })),
        Effect.orDie // a cache error is a 500 here; fail-open already answers from the resolver when Redis is down
      ))
  })
)

// 3. The cache: Redis via NodeRedis when REDIS_URL is set, else in memory. The app reads the setting; the
//    library never reads process.env.
export const CacheLive = Layer.unwrap(
  Effect.map(Config.option(Config.String("REDIS_URL")), (url) =>
    Option.match(url, {
      onNone: () => ResponseCache.layerMemory(),
      onSome: (url) => ResponseCache.layerRedis({ prefix: "rc" }).pipe(Layer.provide(NodeRedis.layer({ url })))
    }))
)

export const ApiLive = HttpApiBuilder.layer(Api).pipe(Layer.provide(BalancesLive), Layer.provide(CacheLive))
