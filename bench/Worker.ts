/**
 * A benchmark worker process: a TypeScript module of `bench/` run with tsx, spoken to in lines — commands on its
 * stdin, one reply line each on its stdout.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

export interface Worker {
  readonly child: ChildProcess
  /** Sends one command line. */
  readonly send: (line: string) => void
  /** The next line it prints ("exited" once it has exited). */
  readonly next: () => Promise<string>
  /** Asks it to exit ("exit"), and kills it if it has not within 5 seconds. */
  readonly stop: () => Promise<void>
}

export const startWorker = (module: string, args: ReadonlyArray<string>): Worker => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL(module, import.meta.url)), ...args],
    { stdio: ["pipe", "pipe", "inherit"], cwd: fileURLToPath(new URL("..", import.meta.url)) }
  )
  const queue: Array<string> = []
  const waiting: Array<(line: string) => void> = []
  let exited = false
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const wake = waiting.shift()
    if (wake === undefined) queue.push(line)
    else wake(line)
  })
  child.once("exit", () => {
    exited = true
    for (const wake of waiting.splice(0)) wake("exited")
  })
  return {
    child,
    send: (line) => child.stdin!.write(line + "\n"),
    next: () => {
      const line = queue.shift()
      if (line !== undefined) return Promise.resolve(line)
      if (exited) return Promise.resolve("exited")
      return new Promise((resolve) => waiting.push(resolve))
    },
    stop: () => {
      if (exited) return Promise.resolve()
      child.stdin!.end("exit\n")
      return new Promise<void>((resolve) => {
        const killer = setTimeout(() => child.kill("SIGKILL"), 5000)
        child.once("exit", () => {
          clearTimeout(killer)
          resolve()
        })
      })
    }
  }
}
