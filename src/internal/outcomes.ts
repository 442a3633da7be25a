/**
 * Outcome recording: every `getOrResolve` counts its outcome in `response_cache_lookups_total`, resolvers are
 * timed into `response_cache_resolve_duration_ms`, and, only when an installed tracer records spans, a call gets
 * one span (`ResponseCache.getOrResolve`) that parents what its resolver does. Spans cost real time (a few µs
 * each, even unrecorded), so with tracing disabled or with Effect's default tracer, which records nothing, none is
 * made.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as Tracer from "effect/Tracer"
import type * as Cacheable from "../Cacheable.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Metrics from "./metrics.js"

type Result<A> = ResponseCache.WithOutcome<A>

/** The lookup counters of one cache, by outcome. */
export type Lookups = ReturnType<typeof Metrics.forCache>["lookups"]

const spanOptions = { captureStackTrace: false } as const

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** Whether the fiber's tracer records spans (tracing on, and not Effect's default tracer). */
export const recordsSpans = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.getFiberRef(FiberRef.currentTracerEnabled) &&
  Context.get(fiber.getFiberRef(DefaultServices.currentServices), Tracer.Tracer) !== defaultTracer

/** `effect` under the call's span, when there is one. */
export const underSpan = <A, E, R>(effect: Effect.Effect<A, E, R>, parent: Tracer.Span | undefined) =>
  parent === undefined ? effect : Effect.withParentSpan(effect, parent)

/** The resolver, its run time (by the fiber's Clock) recorded, in the steps the resolve takes anyway. */
export const resolveTimed = <Q, A, E, R>(cacheable: Cacheable.Cacheable<Q, A, E, R>, query: Q) =>
  Effect.withFiberRuntime<A, E, R>((fiber) => {
    const clock = Context.get(fiber.getFiberRef(DefaultServices.currentServices), Clock.Clock)
    const start = clock.unsafeCurrentTimeNanos()
    return Effect.map(cacheable.resolve(query), (value) => {
      Metrics.forCache(cacheable.name).resolveDuration.unsafeUpdate(
        Number(clock.unsafeCurrentTimeNanos() - start) / 1e6,
        fiber.getFiberRef(FiberRef.currentMetricLabels)
      )
      return value
    })
  })

/** Counts a hit answered in the caller's own step. */
export const countHit = (fiber: Fiber.RuntimeFiber<unknown, unknown>, lookups: Lookups): void =>
  lookups.hit.unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))

/** The lookup, its outcome counted in the steps it takes anyway (`onExit` would cost several more). */
export const counted = <A, E, R, B>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  lookups: Lookups,
  lookup: Effect.Effect<Result<A>, E, R>,
  answer: (result: Result<A>) => B
): Effect.Effect<B, E, R> =>
  Effect.tapErrorCause(
    Effect.map(lookup, (result) => {
      lookups[result.outcome].unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
      return answer(result)
    }),
    () => Metric.increment(lookups.error)
  )

/**
 * The lookup under the call's span, which is the parent of what the resolver does. The lookup itself makes no
 * spans, so it is not run under it (setting a parent span copies the fiber's whole context): it gets the span to
 * pass to the resolve. Outcome and metric are recorded as in `counted`; the span ends in useSpan's own exit
 * handler, interrupted or not.
 */
export const traced = <A, E, R, B>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  lookups: Lookups,
  name: string,
  namespace: string,
  lookup: (span: Tracer.Span) => Effect.Effect<Result<A>, E, R>,
  answer: (result: Result<A>) => B
): Effect.Effect<B, E, R> =>
  Effect.useSpan("ResponseCache.getOrResolve", spanOptions, (span) => {
    // Set here rather than as `attributes`, which Effect copies through Object.entries on every call.
    span.attribute("cache.name", name)
    span.attribute("cache.namespace", namespace)
    return Effect.tapErrorCause(
      Effect.map(lookup(span), (result) => {
        span.attribute("cache.outcome", result.outcome)
        lookups[result.outcome].unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
        return answer(result)
      }),
      () => {
        span.attribute("cache.outcome", "error")
        return Metric.increment(lookups.error)
      }
    )
  })
