/**
 * Top self-time functions of a V8 `.cpuprofile` (what `node --cpu-prof` writes), and self time by package:
 *
 *   npx tsx bench/profileSummary.ts <file.cpuprofile> [top] [function name: print its heaviest call stacks]
 */
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly hitCount?: number
}

interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file, topArg, focus] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profileSummary <file.cpuprofile> [top]")
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const top = Number(topArg ?? 30)

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)

const where = (url: string) => {
  const path = url.replace(/^file:\/\//, "")
  const nm = path.lastIndexOf("node_modules/")
  if (nm >= 0) return path.slice(nm + "node_modules/".length)
  const repo = path.indexOf("/src/")
  return repo >= 0 ? path.slice(repo + 1) : path.includes("/bench/") ? path.slice(path.indexOf("/bench/") + 1) : path
}
const packageOf = (url: string) => {
  const w = where(url)
  if (url === "") return "(native / GC / idle)"
  if (!url.includes("node_modules/")) return w.split("/").slice(0, 2).join("/")
  const parts = w.split("/")
  return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
}

const byFunction = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)!
  const { functionName, lineNumber, url } = node.callFrame
  const name = `${functionName || "(anonymous)"}  ${url === "" ? "" : `${where(url)}:${lineNumber + 1}`}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  byPackage.set(packageOf(url), (byPackage.get(packageOf(url)) ?? 0) + us)
}

const print = (title: string, entries: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title}\n`)
  for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(
      `${(100 * us / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}\n`
    )
  }
}
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`)
print("self time by function", byFunction, top)
print("self time by package / directory", byPackage, 15)

if (focus !== undefined) {
  const parents = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
  const stacks = new Map<string, number>()
  for (const [id, us] of selfUs) {
    if (byId.get(id)!.callFrame.functionName !== focus) continue
    const frames: Array<string> = []
    for (let at = parents.get(id); at !== undefined && frames.length < 12; at = parents.get(at)) {
      const { functionName, lineNumber, url } = byId.get(at)!.callFrame
      frames.push(`${functionName || "(anonymous)"} ${where(url)}:${lineNumber + 1}`)
    }
    const stack = frames.join("\n      ← ")
    stacks.set(stack, (stacks.get(stack) ?? 0) + us)
  }
  print(`heaviest stacks under ${focus}`, stacks, 5)
}
