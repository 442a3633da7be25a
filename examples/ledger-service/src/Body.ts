/**
 * Reading a JSON request body with a size limit, so that every way a body can be wrong is a 4xx that says how:
 * not declared as JSON or in a charset other than UTF-8 (415), larger than the limit (413: answered at once, then
 * the connection is closed, never read on), empty, not UTF-8, not JSON, nested deeper than `maxDepth` or with a
 * key twice in one object (400). The platform's own reader turns these into defects (500), and on an oversized body
 * destroys the socket before any answer is sent.
 */
import { HttpApp, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect } from "effect"
import { MalformedBody, PayloadTooLarge, UnsupportedMediaType } from "./Domain/Errors.js"

/** How deep objects and arrays may nest in a body; an entry needs 1. */
export const maxDepth = 32

/** Tells Node to close the connection once the answer is sent, instead of reading (and dropping) the rest. */
const closeAfterAnswer = HttpApp.appendPreResponseHandler((_request, response) =>
  Effect.succeed(HttpServerResponse.setHeader(response, "connection", "close"))
)

const tooLarge = (limit: number) =>
  Effect.zipRight(
    closeAfterAnswer,
    Effect.fail(new PayloadTooLarge({ message: `the body is larger than ${limit} bytes`, limit }))
  )

/** The raw bytes, at most `limit`; past it, reading stops and the 413 closes the connection. */
const readBytes = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
  Effect.async<Uint8Array, PayloadTooLarge | MalformedBody>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const finish = (effect: Effect.Effect<Uint8Array, PayloadTooLarge | MalformedBody>) => {
      if (done) return
      done = true
      source.off("data", onData)
      resume(effect)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        source.pause()
        finish(tooLarge(limit))
      } else chunks.push(chunk)
    }
    const onEnd = () => finish(Effect.succeed(Buffer.concat(chunks)))
    const onError = () => finish(Effect.fail(new MalformedBody({ message: "the body could not be read to its end" })))
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    // A request whose connection closes (or times out) before its end must not leave this waiting forever.
    source.once("close", onError)
    return Effect.sync(() => {
      done = true
      source.off("data", onData)
    })
  })

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** `application/json`, with no charset or UTF-8 (JSON is UTF-8: RFC 8259); anything else is a 415. */
const checkContentType = (contentType: string | undefined): UnsupportedMediaType | undefined => {
  const [type, ...parameters] = (contentType ?? "").split(";").map((part) => part.trim())
  if (type?.toLowerCase() !== "application/json") {
    return new UnsupportedMediaType({
      message: `expected a JSON body (content-type: application/json), got ${
        contentType === undefined ? "no content-type" : JSON.stringify(contentType.slice(0, 100))
      }`
    })
  }
  for (const parameter of parameters) {
    const [name, value = ""] = parameter.split("=", 2).map((part) => part.trim())
    if (name?.toLowerCase() !== "charset") continue
    const charset = value.replace(/^"(.*)"$/, "$1").toLowerCase()
    if (charset !== "utf-8" && charset !== "utf8") {
      return new UnsupportedMediaType({
        message: `only UTF-8 JSON is accepted, got charset ${JSON.stringify(charset.slice(0, 40))}`
      })
    }
  }
  return undefined
}

/**
 * Walks a JSON text for what `JSON.parse` lets through: nesting deeper than `maxDepth`, and a key twice in one
 * object (JSON.parse keeps the last, so two readers of one body could disagree). Returns what is wrong, if anything.
 * Syntax is left to JSON.parse, which runs after it.
 */
export const checkStructure = (text: string): string | undefined => {
  // One frame per open object (its keys) or array (null).
  const frames: Array<Set<string> | null> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      const start = i
      let escaped = false
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c /* \ */) {
          escaped = true
          i++
        } else if (d === 0x22) break
      }
      const keys = frames[frames.length - 1]
      if (expectKey && keys) {
        const raw = text.slice(start, i + 1)
        let key = raw.slice(1, -1)
        if (escaped) {
          try {
            key = JSON.parse(raw) as string
          } catch {
            return undefined // not JSON: JSON.parse says so
          }
        }
        if (keys.has(key)) return `the key ${JSON.stringify(key.slice(0, 64))} appears twice in one object`
        keys.add(key)
        expectKey = false
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (frames.length >= maxDepth) return `the body nests deeper than ${maxDepth} levels`
      frames.push(c === 0x7b ? new Set() : null)
      expectKey = c === 0x7b
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop()
      expectKey = false
    } else if (c === 0x2c /* , */) {
      expectKey = frames[frames.length - 1] != null
    }
  }
  return undefined
}

/** The body as parsed JSON, or the 4xx that says what is wrong with it. */
export const readJson = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<unknown, MalformedBody | PayloadTooLarge | UnsupportedMediaType> =>
  Effect.gen(function*() {
    const unsupported = checkContentType(request.headers["content-type"])
    if (unsupported !== undefined) return yield* Effect.zipRight(closeAfterAnswer, Effect.fail(unsupported))
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
    const wrong = checkStructure(text)
    if (wrong !== undefined) return yield* new MalformedBody({ message: wrong })
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) =>
        new MalformedBody({ message: `the body is not valid JSON: ${(error as Error).message.slice(0, 200)}` })
    })
  })
