/**
 * The cache's metrics, declared once. Names are snake_case with the library's prefix so that a Prometheus
 * exporter publishes them as they are.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

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
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
  "Resolver run time in milliseconds"
)

/**
 * Tagged metrics are cached per cache name: tagging allocates a new metric key, and the hot path should not.
 *
 * @since 0.1.0
 * @category metrics
 */
export const forCache = (cache: string) => {
  let tagged = byCache.get(cache)
  if (tagged === undefined) {
    const lookupsOfCache = Metric.tagged(lookups, "cache", cache)
    tagged = {
      lookups: {
        hit: Metric.tagged(lookupsOfCache, "outcome", "hit"),
        miss: Metric.tagged(lookupsOfCache, "outcome", "miss"),
        coalesced: Metric.tagged(lookupsOfCache, "outcome", "coalesced"),
        stale: Metric.tagged(lookupsOfCache, "outcome", "stale"),
        bypass: Metric.tagged(lookupsOfCache, "outcome", "bypass"),
        error: Metric.tagged(lookupsOfCache, "outcome", "error")
      },
      resolveDuration: Metric.tagged(resolveDuration, "cache", cache)
    }
    byCache.set(cache, tagged)
  }
  return tagged
}

const byCache = new Map<string, {
  readonly lookups: Record<Outcome, Metric.Metric.Counter<number>>
  readonly resolveDuration: Metric.Metric.Histogram<number>
}>()
