/**
 * The library as its users run it: the compiled package in `dist/` (`npm run bench` builds it first). Not the
 * TypeScript sources through tsx, whose transform wraps every named closure in a `__name(…)` call each time it is
 * created — a cost per call on a hot path that no user pays. The bench's own smoke test (under vitest) runs the
 * sources, so `npm test` needs no build.
 */
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type * as Library from "../src/index.js"

const root = fileURLToPath(new URL("..", import.meta.url))

/** The newest modification time of the files under `dir`. */
const newest = (dir: string): number =>
  Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
      const path = join(dir, entry.name)
      return entry.isDirectory() ? newest(path) : statSync(path).mtimeMs
    })
  )

const load = async (): Promise<typeof Library> => {
  if (process.env["VITEST"] !== undefined) return import("../src/index.js")
  const built = join(root, "dist", "index.js")
  let builtAt: number
  try {
    builtAt = statSync(built).mtimeMs
  } catch {
    throw new Error("bench: dist/ is missing; run `npm run build` first (`npm run bench` does)")
  }
  // Measuring yesterday's build would be worse than not measuring.
  if (newest(join(root, "src")) > builtAt) {
    throw new Error("bench: src/ is newer than dist/; run `npm run build` first (`npm run bench` does)")
  }
  return import(built) as Promise<typeof Library>
}

export const { CachePolicy, Cacheable, ResponseCache } = await load()
