/**
 * The machine a run was measured on, for the results file and the README: figures mean nothing without it.
 */
import type { Redis } from "ioredis"
import { readFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, release, totalmem, type } from "node:os"

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGb: number
  readonly os: string
  readonly node: string
  readonly redis: string
  /** 1-minute load average when the run started: other work on the machine shows here. */
  readonly loadAverage: number
}

const cpuModel = (): string => {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match?.[1] !== undefined) return match[1].trim()
  } catch {
    // not Linux: os.cpus() below
  }
  return cpus()[0]?.model ?? "unknown"
}

export const describeMachine = async (redis: Redis): Promise<Machine> => {
  const info = await redis.info("server")
  return {
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown",
    loadAverage: Math.round(loadavg()[0]! * 100) / 100
  }
}

export const machineLine = (m: Machine): string =>
  `${m.cpus} cores (${m.cpuModel}), ${m.memoryGb} GB, ${m.os}, Node ${m.node}, Redis ${m.redis} on loopback, ` +
  `load average ${m.loadAverage} at start`
