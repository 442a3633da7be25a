// Runs the quick start in process (NodeHttpServer.layerTest) and checks what a user sees: a miss, then a hit for
// the same balance. Exits non-zero otherwise. Used by scripts/check-packed.sh on the packed package.
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpClient, HttpRouter } from "effect/http"
import { ApiLive } from "./quickstart.js"

const program = Effect.gen(function*() {
  const get = Effect.flatMap(HttpClient.get("/tenants/acme/balances/cash"), (response) => response.json)
  const first = yield* get
  const second = yield* get
  const expected = [
    { account: "cash", balance: "1234.56", cache: "miss" },
    { account: "cash", balance: "1234.56", cache: "hit" }
  ]
  if (JSON.stringify([first, second]) !== JSON.stringify(expected)) {
    return yield* Effect.die(new Error(`unexpected answers: ${JSON.stringify([first, second])}`))
  }
  yield* Effect.log(`quick start OK (${process.env.REDIS_URL === undefined ? "memory" : "redis"}): miss, then hit`)
})

await Effect.runPromise(
  program.pipe(
    Effect.provide(
      HttpRouter.serve(ApiLive, { disableListenLog: true, disableLogger: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest)
      )
    )
  )
)
