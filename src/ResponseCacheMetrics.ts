/**
 * The cache's metrics, declared once. Names are snake_case with the library's prefix so that a Prometheus
 * exporter publishes them as they are.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import { resolveDurationBoundaries } from "./internal/metrics.js"

/**
 * What a `getOrResolve` call ended as.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "hit" | "miss" | "coalesced" | "stale" | "bypass" | "error"

/**
 * Lookups by outcome, tagged `outcome` and `cache` (the cacheable's name).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lookups = Metric.counter("response_cache_lookups_total", {
  description: "getOrResolve calls by outcome",
  incremental: true
})

/**
 * How long resolvers take, in milliseconds, tagged `cache`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const resolveDuration = Metric.histogram(
  "response_cache_resolve_duration_ms",
  resolveDurationBoundaries,
  "Resolver run time in milliseconds"
)

/**
 * Responses not stored because their JSON was larger than `maxEntryBytes`, tagged `cache`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const oversize = Metric.counter("response_cache_oversize_total", {
  description: "Responses returned but not stored: larger than maxEntryBytes",
  incremental: true
})
