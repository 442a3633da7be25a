import { assert, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Cacheable, CachePolicy, ResponseCache } from "../src/index.js"
import { recordingTracer } from "./support/recordingTracer.js"

// The call's span is made by the tracer directly (not through Effect.useSpan): it must still be what useSpan makes.
it.effect("a getOrResolve span has the caller's span as parent, its span annotations and links, and ends when interrupted", () =>
  Effect.gen(function*() {
    const { spans, tracer } = yield* recordingTracer
    const gate = yield* Deferred.make<void>()
    const started = yield* Deferred.make<void>()
    const cacheable = Cacheable.make({
      name: "tracing.v1",
      query: Schema.Struct({ n: Schema.Number }),
      response: Schema.Number,
      namespace: () => "ns",
      policy: CachePolicy.short,
      resolve: (q) =>
        q.n === 2
          ? Effect.zipRight(Deferred.succeed(started, void 0), Effect.as(Deferred.await(gate), 0))
          : Effect.succeed(q.n)
    })
    yield* Effect.gen(function*() {
      const link = { span: Effect.runSync(Effect.makeSpan("elsewhere")), attributes: {} }
      yield* ResponseCache.getOrResolve(cacheable, { n: 1 }).pipe(
        Effect.annotateSpans("request.id", "r-1"),
        Effect.linkSpans(link.span),
        Effect.withSpan("request", { captureStackTrace: false })
      )
      const call = spans.find((span) => span.name === "ResponseCache.getOrResolve")!
      const request = spans.find((span) => span.name === "request")!
      assert.strictEqual(call.parent._tag === "Some" && call.parent.value.spanId, request.spanId)
      assert.strictEqual(call.traceId, request.traceId)
      assert.strictEqual(call.attributes.get("request.id"), "r-1")
      assert.strictEqual(call.attributes.get("cache.outcome"), "miss")
      assert.deepStrictEqual(call.links.map((l) => l.span), [link.span])
      assert.strictEqual(call.status._tag, "Ended")

      // Interrupted while its resolve runs: the span ends, with the interruption, and no outcome.
      const fiber = yield* Effect.fork(ResponseCache.getOrResolve(cacheable, { n: 2 }))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const interrupted = spans.filter((span) => span.name === "ResponseCache.getOrResolve")[1]!
      assert.strictEqual(interrupted.status._tag, "Ended")
      assert.isTrue(interrupted.status._tag === "Ended" && interrupted.status.exit._tag === "Failure")
      assert.isFalse(interrupted.attributes.has("cache.outcome"))
    }).pipe(Effect.withTracer(tracer), Effect.provide(Layer.fresh(ResponseCache.layerMemory())))
  }))
