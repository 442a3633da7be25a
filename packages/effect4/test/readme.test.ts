/**
 * The README's Effect 4 quick start is `examples/quickstart.ts`, word for word, and it runs: served in process,
 * the same balance is a miss, then a hit. (`scripts/check-packed.sh` runs it again from the packed package, on
 * memory and on Redis via NodeRedis.)
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { HttpClient, HttpRouter } from "effect/http"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { ApiLive } from "../examples/quickstart.js"

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8")

describe("README (Effect 4)", () => {
  it("the quick start in the README is examples/quickstart.ts", () => {
    const readme = read("../README.md")
    const section = readme.slice(readme.indexOf("## Quick start (Effect 4)"))
    const block = section.match(/```ts\n([\s\S]*?)```/)![1]!
    // The file's leading comment lines are the only difference.
    const file = read("../examples/quickstart.ts").replace(/^(\/\/.*\n)+/, "")
    assert.strictEqual(block, file)
  })

  it.live("the quick start answers a miss, then the same balance from the cache", () =>
    Effect.gen(function*() {
      const get = Effect.flatMap(HttpClient.get("/tenants/acme/balances/cash"), (response) => response.json)
      assert.deepStrictEqual(yield* get, { account: "cash", balance: "1234.56", cache: "miss" })
      assert.deepStrictEqual(yield* get, { account: "cash", balance: "1234.56", cache: "hit" })
    }).pipe(
      Effect.provide(
        HttpRouter.serve(ApiLive, { disableListenLog: true, disableLogger: true }).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest)
        )
      )
    ))
})
