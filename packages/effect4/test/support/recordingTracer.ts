import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/** A tracer that records every span it starts, on top of Effect's own. */
export const recordingTracer = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = native.span(options)
      spans.push(span)
      return span
    },
    context: native.context
  })
  return { tracer, spans }
})
