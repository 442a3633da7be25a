/**
 * The cache's metrics, declared once. Names are snake_case with the library's prefix so that a Prometheus
 * exporter publishes them as they are.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"

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

const lookupsKey = MetricKey.counter("response_cache_lookups_total", {
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

const resolveDurationKey = MetricKey.histogram(
  "response_cache_resolve_duration_ms",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
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

const oversizeKey = MetricKey.counter("response_cache_oversize_total", {
  description: "Responses returned but not stored: larger than maxEntryBytes",
  incremental: true
})

/**
 * The metrics of one cache (a cacheable's name), built once. They are made from fully tagged keys rather than
 * with `Metric.tagged`, whose every update merges tag arrays and looks the metric up again in the registry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const forCache = (cache: string) => {
  let tagged = byCache.get(cache)
  if (tagged === undefined) {
    const lookupsOf = (outcome: Outcome) =>
      Metric.fromMetricKey(lookupsKey.pipe(MetricKey.tagged("cache", cache), MetricKey.tagged("outcome", outcome)))
    tagged = {
      lookups: {
        hit: lookupsOf("hit"),
        miss: lookupsOf("miss"),
        coalesced: lookupsOf("coalesced"),
        stale: lookupsOf("stale"),
        bypass: lookupsOf("bypass"),
        error: lookupsOf("error")
      },
      resolveDuration: Metric.fromMetricKey(resolveDurationKey.pipe(MetricKey.tagged("cache", cache))),
      oversize: Metric.fromMetricKey(oversizeKey.pipe(MetricKey.tagged("cache", cache)))
    }
    byCache.set(cache, tagged)
  }
  return tagged
}

const byCache = new Map<string, {
  readonly lookups: Record<Outcome, Metric.Metric.Counter<number>>
  readonly resolveDuration: Metric.Metric.Histogram<number>
  readonly oversize: Metric.Metric.Counter<number>
}>()
