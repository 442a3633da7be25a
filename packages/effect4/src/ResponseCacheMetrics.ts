/**
 * The cache's metrics, declared once, with the names and attributes of the Effect 3 package, so dashboards built
 * on one read the other.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * What a `getOrResolve` call ended as.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "hit" | "miss" | "coalesced" | "stale" | "bypass" | "error"

/**
 * Lookups by outcome, with attributes `outcome` and `cache` (the cacheable's name).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lookups = Metric.counter("response_cache_lookups_total", {
  description: "getOrResolve calls by outcome",
  incremental: true
})

/**
 * How long resolvers take, in milliseconds, with attribute `cache`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const resolveDuration = Metric.histogram("response_cache_resolve_duration_ms", {
  description: "Resolver run time in milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 })
})

/**
 * Responses not stored because their JSON was larger than `maxEntryBytes`, with attribute `cache`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const oversize = Metric.counter("response_cache_oversize_total", {
  description: "Responses returned but not stored: larger than maxEntryBytes",
  incremental: true
})

const outcomes: ReadonlyArray<Outcome> = ["hit", "miss", "coalesced", "stale", "bypass", "error"]

/**
 * The metrics of one cache (a cacheable's name), with their attributes applied once.
 *
 * @since 0.1.0
 * @category metrics
 */
export const forCache = (cache: string): ForCache => {
  let tagged = byCache.get(cache)
  if (tagged === undefined) {
    tagged = {
      lookups: Object.fromEntries(
        outcomes.map((outcome) => [outcome, Metric.withAttributes(lookups, { cache, outcome })])
      ) as Record<Outcome, Metric.Counter<number>>,
      resolveDuration: Metric.withAttributes(resolveDuration, { cache }),
      oversize: Metric.withAttributes(oversize, { cache })
    }
    byCache.set(cache, tagged)
  }
  return tagged
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ForCache {
  readonly lookups: Record<Outcome, Metric.Counter<number>>
  readonly resolveDuration: Metric.Histogram<number>
  readonly oversize: Metric.Counter<number>
}

const byCache = new Map<string, ForCache>()
