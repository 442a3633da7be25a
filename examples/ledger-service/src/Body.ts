/**
 * Reading a JSON request body with a size limit, so that every way a body can be wrong is a 4xx that says how:
 * not declared as JSON (415), larger than the limit (413), empty, not UTF-8 or not JSON (400). The platform's own
 * reader turns these into defects (500), and on an oversized body destroys the socket before any answer is sent.
 */
import type { HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect } from "effect"
import { MalformedBody, PayloadTooLarge, UnsupportedMediaType } from "./Domain/Errors.js"

const tooLarge = (limit: number) => new PayloadTooLarge({ message: `the body is larger than ${limit} bytes`, limit })

/** The raw bytes, at most `limit`; past it the rest is read and dropped, so the answer still reaches the client. */
const readBytes = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
  Effect.async<Uint8Array, PayloadTooLarge | MalformedBody>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const finish = (effect: Effect.Effect<Uint8Array, PayloadTooLarge | MalformedBody>) => {
      if (done) return
      done = true
      resume(effect)
    }
    const onData = (chunk: Buffer) => {
      if (done) return
      size += chunk.length
      if (size > limit) finish(Effect.fail(tooLarge(limit)))
      else chunks.push(chunk)
    }
    const onEnd = () => finish(Effect.succeed(Buffer.concat(chunks)))
    const onError = (error: Error) =>
      finish(Effect.fail(new MalformedBody({ message: `reading the body failed: ${error.message}` })))
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    return Effect.sync(() => {
      done = true
    })
  })

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The body as parsed JSON, or the 4xx that says what is wrong with it. */
export const readJson = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<unknown, MalformedBody | PayloadTooLarge | UnsupportedMediaType> =>
  Effect.gen(function*() {
    const contentType = request.headers["content-type"]
    if (contentType === undefined || !/^application\/json\s*(;|$)/i.test(contentType.trim())) {
      return yield* new UnsupportedMediaType({
        message: `expected a JSON body (content-type: application/json), got ${contentType ?? "no content-type"}`
      })
    }
    const declared = Number(request.headers["content-length"])
    if (declared > limit) return yield* tooLarge(limit)
    const bytes = yield* readBytes(request, limit)
    if (bytes.length === 0) {
      return yield* new MalformedBody({ message: "the body is empty: expected a JSON object" })
    }
    const text = yield* Effect.try({
      try: () => utf8.decode(bytes),
      catch: () => new MalformedBody({ message: "the body is not valid UTF-8" })
    })
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) => new MalformedBody({ message: `the body is not valid JSON: ${(error as Error).message}` })
    })
  })
