// The repository's lint and format rules (../../eslint.config.mjs: typescript-eslint and Effect's dprint settings),
// applied to this package, which the root configuration leaves to it.
import root from "../../eslint.config.mjs"

export default root.map((config) =>
  config.ignores === undefined
    ? config
    : { ...config, ignores: config.ignores.filter((pattern) => !pattern.startsWith("packages/effect4")) }
)
