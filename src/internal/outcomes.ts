/**
 * Outcome recording: every `getOrResolve` counts its outcome in `response_cache_lookups_total`, resolvers are
 * timed into `response_cache_resolve_duration_ms`, and, only when an installed tracer records spans, a call gets
 * one span (`ResponseCache.getOrResolve`) that parents what its resolver does. Spans cost real time (a few µs
 * each, even unrecorded), so with tracing disabled or with Effect's default tracer, which records nothing, none is
 * made.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type * as Cacheable from "../Cacheable.js"
import type * as ResponseCache from "../ResponseCache.js"
import * as Metrics from "./metrics.js"

type Result<A> = ResponseCache.WithOutcome<A>

/** The lookup counters of one cache, by outcome. */
export type Lookups = ReturnType<typeof Metrics.forCache>["lookups"]

const spanOptions = { captureStackTrace: false } as const
const zero = BigInt(0)

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

/**
 * The lookup, its outcome counted in the one step that continues it (`onExit` would cost several more, and a map
 * with a `tapErrorCause` around it one more frame and step per call).
 */
export const counted = <A, E, R, B>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  lookups: Lookups,
  lookup: Effect.Effect<Result<A>, E, R>,
  answer: (result: Result<A>) => B
): Effect.Effect<B, E, R> =>
  Effect.matchCauseEffect(lookup, {
    onFailure: (cause) => {
      lookups.error.unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
      return Effect.failCause(cause)
    },
    onSuccess: (result) => {
      lookups[result.outcome].unsafeUpdate(1, fiber.getFiberRef(FiberRef.currentMetricLabels))
      return Effect.succeed(answer(result))
    }
  })

/** The span a new span is a child of: the fiber's parent span, unless it (or its chain) disables propagation. */
const parentOf = (context: Context.Context<never>): Option.Option<Tracer.AnySpan> => {
  let parent = Context.getOption(context, Tracer.ParentSpan)
  while (parent._tag === "Some" && Context.get(parent.value.context, Tracer.DisablePropagation)) {
    parent = parent.value._tag === "Span" ? parent.value.parent : Option.none()
  }
  return parent
}

/**
 * The lookup under the call's span, which is the parent of what the resolver does. The span is made by the
 * fiber's tracer directly, as `Effect.useSpan` makes it — its parent, the fiber's span annotations and links, the
 * tracer's timing — and ended in the one uninterruptible match that also counts the outcome, so a call pays for
 * its span and nothing else (useSpan's exit handler, a second match and an `Exit` wrapper per call). The lookup
 * itself makes no spans, so it is not run under it (setting a parent span copies the fiber's whole context): it
 * gets the span to pass to the resolve. An interrupted call's span ends with the interruption, uncounted.
 */
export const traced = <A, E, R, B>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  lookups: Lookups,
  name: string,
  namespace: string,
  lookup: (span: Tracer.Span) => Effect.Effect<Result<A>, E, R>,
  answer: (result: Result<A>) => B
): Effect.Effect<B, E, R> => {
  const services = fiber.getFiberRef(DefaultServices.currentServices)
  const clock = Context.get(services, Clock.Clock)
  const timing = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
  const links = fiber.getFiberRef(FiberRef.currentTracerSpanLinks)
  const span = Context.get(services, Tracer.Tracer).span(
    "ResponseCache.getOrResolve",
    parentOf(fiber.getFiberRef(FiberRef.currentContext)),
    Context.empty(),
    Chunk.isEmpty(links) ? [] : Chunk.toReadonlyArray(links),
    timing ? clock.unsafeCurrentTimeNanos() : zero,
    "internal",
    spanOptions
  )
  const annotations = fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)
  if (HashMap.size(annotations) > 0) HashMap.forEach(annotations, (value, key) => span.attribute(key, value))
  span.attribute("cache.name", name)
  span.attribute("cache.namespace", namespace)
  const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
  // The lookup is built inside the interruptible region, not handed to it built: the region's frame keeps what it
  // was given until the call ends, and the whole lookup built for the call, kept that long, made young-generation
  // collections several times as long (README, "Latest results").
  return Effect.uninterruptibleMask((restore) =>
    Effect.matchCauseEffect(restore(Effect.suspend(() => lookup(span))), {
      onFailure: (cause) => {
        if (!Cause.isInterruptedOnly(cause)) {
          span.attribute("cache.outcome", "error")
          lookups.error.unsafeUpdate(1, labels)
        }
        span.end(timing ? clock.unsafeCurrentTimeNanos() : zero, Exit.failCause(cause))
        return Effect.failCause(cause)
      },
      onSuccess: (result) => {
        span.attribute("cache.outcome", result.outcome)
        lookups[result.outcome].unsafeUpdate(1, labels)
        const answered = answer(result)
        span.end(timing ? clock.unsafeCurrentTimeNanos() : zero, Exit.succeed(answered))
        return Effect.succeed(answered)
      }
    })
  )
}
