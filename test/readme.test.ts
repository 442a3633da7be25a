/**
 * The README's examples run: the quick start is extracted, pointed at this repository's source, and executed.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")

const blockAfter = (heading: string, nth = 0): string => {
  const section = readme.slice(readme.indexOf(heading))
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)]
  return blocks[nth]![1]!
}

describe("README", () => {
  it("the quick start runs as written: a miss, then the same value from the cache", async () => {
    const source = blockAfter("## Quick start")
      .replace(
        `from "@ledgerlink/response-cache"`,
        `from ${JSON.stringify(fileURLToPath(new URL("../src/index.js", import.meta.url)))}`
      )
      .replace("Effect.runPromise(program", "export const result = Effect.runPromise(program")
    assert.include(source, "export const result")
    const dir = new URL("./.generated/", import.meta.url)
    mkdirSync(dir, { recursive: true })
    const file = new URL("quickstart.ts", dir)
    writeFileSync(file, source)
    const { result } = await import(/* @vite-ignore */ file.href)
    const [first, again] = await result
    assert.deepStrictEqual(again, first)
    assert.strictEqual(first.account, "cash")
  })
})
