/**
 * Prometheus metrics: Effect's metrics (the cache's `response_cache_lookups_total` and
 * `response_cache_resolve_duration_ms` among them) read by `@effect/opentelemetry`'s producer and rendered by the
 * OpenTelemetry Prometheus exporter, which here runs no server of its own: `GET /metrics` asks it.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Effect } from "effect"

/** Effect's metrics, scraped in the Prometheus text format. */
export class PrometheusMetrics extends Effect.Service<PrometheusMetrics>()("ledger-service/PrometheusMetrics", {
  scoped: Effect.gen(function*() {
    const exporter = new PrometheusExporter({ preventServerStart: true })
    const serializer = new PrometheusSerializer()
    yield* OtelMetrics.registerProducer(yield* OtelMetrics.makeProducer, () => exporter)
    return {
      /** The current metrics in the Prometheus text format. */
      scrape: Effect.promise(() => exporter.collect()).pipe(
        Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
      )
    } as const
  }),
  dependencies: [Resource.layer({ serviceName: "ledger-snapshots" })]
}) {}
