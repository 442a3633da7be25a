/**
 * The metrics of one cache, built once per cacheable name: internal to the engine. Users read the public metrics
 * of `ResponseCacheMetrics` (tagged `cache` and `outcome`), which these are the same keys of.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type { Outcome } from "../ResponseCacheMetrics.js"

// The same names, descriptions and boundaries as `ResponseCacheMetrics.lookups` / `.resolveDuration`, so an update
// here is an update of those metrics.
const lookupsKey = MetricKey.counter("response_cache_lookups_total", {
  description: "getOrResolve calls by outcome",
  incremental: true
})

// One boundaries value for both: two `exponential(...)` calls make keys that Effect's registry tells apart, and the
// public histogram tagged by cache would read nothing.
export const resolveDurationBoundaries = MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 })

const resolveDurationKey = MetricKey.histogram(
  "response_cache_resolve_duration_ms",
  resolveDurationBoundaries,
  "Resolver run time in milliseconds"
)

const oversizeKey = MetricKey.counter("response_cache_oversize_total", {
  description: "Responses returned but not stored: larger than maxEntryBytes",
  incremental: true
})

/**
 * The metrics of one cache (a cacheable's name), built once. They are made from fully tagged keys rather than
 * with `Metric.tagged`, whose every update merges tag arrays and looks the metric up again in the registry.
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
