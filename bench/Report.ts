/**
 * The markdown tables and the JSON results file of a run.
 */
import type { Table } from "./Bench.js"
import { type Machine, machineLine } from "./Machine.js"

export interface Results {
  readonly startedAt: string
  readonly durationS: number
  readonly sizes: string
  readonly machine: Machine
  /** Contenders this build could not run, with why. */
  readonly skipped: ReadonlyArray<{ readonly contender: string; readonly reason: string }>
  readonly tables: ReadonlyArray<Table>
}

const grouped = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

const significant = (n: number) => {
  if (n === 0) return "0"
  if (Math.abs(n) >= 100) return grouped(n)
  if (Math.abs(n) >= 10) return grouped(n, 1)
  if (Math.abs(n) >= 1) return grouped(n, 2)
  return n.toPrecision(2)
}

export const formatValue = (value: number | string | undefined, format: Table["columns"][number]["format"]) => {
  if (value === undefined) return "–"
  if (typeof value === "string") return value
  if (Number.isNaN(value)) return "–"
  switch (format) {
    case "ops":
      return grouped(value)
    case "ratio":
      return `${value.toFixed(2)}×`
    case "count":
      return grouped(value)
    case "mb":
      return grouped(value, 1)
    case "ms":
    case "us":
      return significant(value)
    case "text":
      return String(value)
  }
}

export const tableMarkdown = (table: Table): string => {
  const header = `| ${table.columns.map((c) => c.header).join(" | ")} |`
  const rule = `|${table.columns.map((c) => (c.format === "text" ? "---" : "---:")).join("|")}|`
  const rows = table.rows.map((row) =>
    `| ${
      table.columns.map((c) => (c.key === "label" ? row.label : formatValue(row.values[c.key], c.format))).join(" | ")
    } |`
  )
  return [`#### ${table.title}`, "", table.note, "", header, rule, ...rows].join("\n")
}

export const resultsMarkdown = (results: Results): string =>
  [
    `Run of ${results.startedAt} (${results.sizes} sizes, ${Math.round(results.durationS)} s): ` +
    machineLine(results.machine) + ".",
    ...(results.skipped.length === 0
      ? []
      : ["", `Skipped: ${results.skipped.map((s) => `${s.contender} (${s.reason})`).join("; ")}.`]),
    "",
    ...results.tables.flatMap((table) => [tableMarkdown(table), ""])
  ].join("\n")
