/**
 * Who may call the service, and how often.
 *
 * - Tokens: `Authorization: Bearer <token>` on every route but `/health`, `/metrics`, `/openapi.json` and `/docs`.
 *   They come from `API_TOKENS`: comma-separated `token=scope`, scopes joined by `+`; a scope is `admin`,
 *   `read:<tenantId>` or `write:<tenantId>` (write implies read). A missing or unknown token is a 401, a token
 *   without the scope a 403. Only SHA-256 digests of tokens are kept and compared: a presented token is digested
 *   (in a time that depends on its length only) and its digest looked up among the configured ones. No token's
 *   characters are ever compared with a guess's, so the time taken tells nothing about how close a guess came (a
 *   guess one character off has an unrelated digest). Tokens are never logged: a token is known by its label, the
 *   first 12 hex digits of its digest.
 * - The middleware hands the caller to the handlers in a `FiberRef` of the request's fiber (`currentCaller`), not
 *   through the context: providing a service copies the request's whole context, which cost the hot path more than
 *   the token check itself.
 * - Without `API_TOKENS`, the embedded ledger starts in demo mode with the `demoTokens` below (printed at start,
 *   with a warning); with `DATABASE_URL` the service refuses to start.
 * - Each token gets `RATE_LIMIT_PER_SECOND` requests a second (`@effect/experimental` RateLimiter: its memory store,
 *   or its Redis store when `REDIS_URL` is set, so the limit holds across processes); past it a 429 with
 *   `Retry-After`.
 */
import { RateLimiter } from "@effect/experimental"
import * as RateLimiterRedis from "@effect/experimental/RateLimiter/Redis"
import { HttpApiMiddleware, HttpApiSecurity, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import {
  Config,
  ConfigError,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  Redacted,
  Schema
} from "effect"
import { globalValue } from "effect/GlobalValue"
import { hash } from "node:crypto"
import { Forbidden, TooManyRequests, Unauthorized } from "./Domain/Errors.js"
import { demoTenants } from "./LedgerRepo/Seed.js"

/** What a token may do. */
export interface Scopes {
  readonly admin: boolean
  readonly read: ReadonlySet<string>
  readonly write: ReadonlySet<string>
}

/** The caller of a request, as its token says. */
export interface Caller {
  readonly label: string
  readonly scopes: Scopes
}

/** A configured token: its SHA-256 digest in hex (the token itself is not kept), its label and its scopes. */
export interface TokenEntry {
  readonly digest: string
  readonly label: string
  readonly scopes: Scopes
  /** The caller of its requests (one object per token, not one per request). */
  readonly caller: Caller
}

/** The tokens the service accepts; `demo` when they are the documented demo tokens. */
export class Tokens extends Context.Tag("ledger-service/Tokens")<Tokens, {
  readonly entries: ReadonlyArray<TokenEntry>
  readonly demo: boolean
}>() {}

/**
 * The caller of the request a fiber answers, set by the `Authentication` middleware before the handler runs (in the
 * same fiber); `undefined` on routes without it.
 */
export const currentCaller: FiberRef.FiberRef<Caller | undefined> = globalValue(
  Symbol.for("ledger-service/currentCaller"),
  () => FiberRef.unsafeMake<Caller | undefined>(undefined)
)

/** The demo tokens of the embedded ledger (demo mode): documented in the README, printed at start. */
export const demoTokens = {
  "demo-admin-token": "admin",
  "demo-acme-writer": `write:${demoTenants.acme}`,
  "demo-acme-reader": `read:${demoTenants.acme}`
} as const

/** The SHA-256 digest of a token in hex, one-shot (`crypto.hash` into a string: no `Hash` or `Buffer` per call). */
const digestOf = (token: string): string => hash("sha256", token, "hex")

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const tokenChars = /^[\x21-\x7e]{16,512}$/

/** Parses `token=scope+scope,...`; the error says which entry is wrong and why, never echoing a token. */
export const parseTokens = (text: string): Either.Either<ReadonlyArray<TokenEntry>, string> => {
  const entries: Array<TokenEntry> = []
  const seen = new Set<string>()
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "")
  if (items.length === 0) return Either.left("no token in it")
  for (const [index, item] of items.entries()) {
    const at = item.lastIndexOf("=")
    const where = `entry ${index + 1}`
    if (at <= 0) return Either.left(`${where} is not token=scope`)
    const token = item.slice(0, at)
    if (!tokenChars.test(token) || token.includes(",")) {
      return Either.left(`${where}: a token is 16 to 512 printable characters, no spaces or commas`)
    }
    const read = new Set<string>()
    const write = new Set<string>()
    let admin = false
    for (const scope of item.slice(at + 1).split("+")) {
      const [kind, tenant, ...rest] = scope.trim().split(":")
      if (kind === "admin" && tenant === undefined) {
        admin = true
      } else if ((kind === "read" || kind === "write") && tenant !== undefined && rest.length === 0) {
        const id = tenant.toLowerCase()
        if (!uuid.test(id)) return Either.left(`${where}: ${kind}:<tenantId> needs a UUID`)
        read.add(id)
        if (kind === "write") write.add(id)
      } else {
        return Either.left(`${where}: a scope is admin, read:<tenantId> or write:<tenantId>`)
      }
    }
    const digest = digestOf(token)
    const label = digest.slice(0, 12)
    if (seen.has(label)) return Either.left(`${where} repeats a token`)
    seen.add(label)
    const scopes = { admin, read, write }
    entries.push({ digest, label, scopes, caller: { label, scopes } })
  }
  return Either.right(entries)
}

/** `Tokens` from a `token=scope` list (tests, and `layerConfig`). */
export const tokensLayer = (text: string, demo = false): Layer.Layer<Tokens> =>
  Layer.sync(Tokens, () => {
    const parsed = parseTokens(text)
    if (Either.isLeft(parsed)) throw new Error(`invalid tokens: ${parsed.left}`)
    return { entries: parsed.right, demo }
  })

const demoText = Object.entries(demoTokens).map(([token, scope]) => `${token}=${scope}`).join(",")

/**
 * `Tokens` from `API_TOKENS`; without it, the demo tokens when the ledger is embedded, and a refusal to start
 * with `DATABASE_URL` (a real ledger is never open to well-known tokens).
 */
export const TokensLive = Layer.effect(
  Tokens,
  Effect.gen(function*() {
    const raw = yield* Config.option(Config.redacted("API_TOKENS"))
    const text = Option.map(raw, Redacted.value).pipe(Option.filter((value) => value.trim() !== ""))
    if (Option.isSome(text)) {
      const parsed = parseTokens(text.value)
      if (Either.isLeft(parsed)) {
        return yield* Effect.fail(ConfigError.InvalidData(["API_TOKENS"], `API_TOKENS: ${parsed.left}`))
      }
      return { entries: parsed.right, demo: false }
    }
    const database = yield* Config.option(Config.string("DATABASE_URL"))
    if (Option.isSome(database) && database.value.trim() !== "") {
      return yield* Effect.fail(ConfigError.MissingData(
        ["API_TOKENS"],
        "API_TOKENS is not set: with DATABASE_URL the service does not start without tokens " +
          "(set API_TOKENS=<token>=admin,<token>=read:<tenantId>+write:<tenantId>,...)"
      ))
    }
    yield* Effect.logWarning(
      "API_TOKENS is not set: demo mode with the embedded ledger; these demo tokens are accepted: " +
        Object.entries(demoTokens).map(([token, scope]) => `${token} (${scope})`).join(", ")
    )
    return { entries: Either.getOrThrow(parseTokens(demoText)), demo: true }
  })
)

/** Checks one request against the token's limit; fails with the 429, or succeeds (fail-open on a store failure). */
export class RateLimit extends Context.Tag("ledger-service/RateLimit")<RateLimit, {
  readonly check: (label: string) => Effect.Effect<void, TooManyRequests>
}>() {}

/** Requests a second per token: `RATE_LIMIT_PER_SECOND`, default 100. */
export const rateLimitPerSecond = Config.integer("RATE_LIMIT_PER_SECOND").pipe(
  Config.withDefault(100),
  Config.validate({ message: "RATE_LIMIT_PER_SECOND must be at least 1", validation: (n) => n >= 1 })
)

/** How long a Redis rate-limit check may take before the request goes on without it. */
const storeTimeout = Duration.millis(250)

/** How often, at most, a failing store is logged (it would otherwise be a line per request). */
const warnEvery = 10_000

/** The 429 for a token over its limit, with `Retry-After` in whole seconds (at least 1). */
const tooMany = (limit: number, retryAfter: Duration.Duration) => {
  const seconds = Math.max(1, Math.ceil(Duration.toMillis(retryAfter) / 1000))
  return Effect.zipRight(
    HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))
    ),
    Effect.fail(
      new TooManyRequests({
        message: `rate limit of ${limit} requests a second exceeded: retry in ${seconds} s`,
        retryAfterSeconds: seconds
      })
    )
  )
}

/**
 * How the store is asked: a process takes up to `leaseSize` tokens at once and spends them locally for at most
 * `leaseMs`, so most requests make no round trip to Redis (and, in memory, no call to the limiter: its call cost a
 * hot hit more than the hit itself). It never lets more through than the store granted; unspent tokens of an
 * expired lease are simply lost (a token may then see its 429 a little early). Limits under 40 a second take no
 * leases: every request asks the store.
 */
const leaseMs = 50
const leaseSize = (limit: number) => Math.max(1, Math.min(100, Math.floor(limit / 20)))

const make = (limit: number, shared: boolean) =>
  Effect.gen(function*() {
    const limiter = yield* RateLimiter.RateLimiter
    let warnedAt = -Infinity
    const storeFailed = (error: unknown) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        if (now - warnedAt < warnEvery) return Effect.void
        warnedAt = now
        return Effect.logWarning("rate limiter store unavailable; requests are let through meanwhile", error)
      })
    const consume = (label: string, tokens: number) => {
      const taken = limiter.consume({
        key: `token:${label}`,
        limit,
        window: "1 second",
        // A token bucket (burst = the limit, refilled evenly): the store's fixed window needs a whole number of ms
        // per request, which limits above 1,000 a second, or ones that do not divide 1,000, do not have.
        algorithm: "token-bucket",
        onExceeded: "fail",
        tokens
      })
      return shared ? Effect.timeout(taken, storeTimeout) : taken
    }
    // A limiter that cannot answer must not take the service down with it: the request goes on.
    const direct = (label: string) =>
      consume(label, 1).pipe(
        Effect.asVoid,
        Effect.catchAll((error) =>
          error._tag === "RateLimiterError" && error.reason === "Exceeded"
            ? tooMany(limit, error.retryAfter)
            : storeFailed(error)
        )
      )

    const size = leaseSize(limit)
    const leases = new Map<string, { left: number; until: number }>()
    // One lease request per token at a time: without it, every request that finds the lease spent asks Redis too.
    const pending = new Map<string, Deferred.Deferred<void>>()
    const fetchLease = (label: string, now: number) =>
      Effect.flatMap(Deferred.make<void>(), (fetched) => {
        pending.set(label, fetched)
        return consume(label, size).pipe(
          Effect.flatMap(() =>
            Effect.sync(() => {
              leases.set(label, { left: size - 1, until: now + leaseMs })
            })
          ),
          // Fewer than a lease's worth left: one token, or the 429.
          Effect.catchAll((error) =>
            error._tag === "RateLimiterError" && error.reason === "Exceeded" ? direct(label) : storeFailed(error)
          ),
          Effect.ensuring(Effect.suspend(() => {
            pending.delete(label)
            return Deferred.succeed(fetched, void 0)
          }))
        )
      })
    const check = (label: string): Effect.Effect<void, TooManyRequests> =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const lease = leases.get(label)
        if (lease !== undefined && lease.left > 0 && now < lease.until) {
          lease.left--
          return Effect.void
        }
        if (size === 1) return direct(label)
        const inFlight = pending.get(label)
        if (inFlight !== undefined) return Effect.zipRight(Deferred.await(inFlight), Effect.suspend(() => check(label)))
        return fetchLease(label, now)
      })
    return RateLimit.of({ check })
  })

/** The rate limit in memory (one process). */
export const rateLimitMemory = (limit: number): Layer.Layer<RateLimit> =>
  Layer.effect(RateLimit, make(limit, false)).pipe(
    Layer.provide(RateLimiter.layer),
    Layer.provide(RateLimiter.layerStoreMemory)
  )

/** ioredis options from a `redis://` or `rediss://` URL (the rate limiter's store takes options, not a URL). */
const redisOptionsOf = (url: string) => {
  const parsed = new URL(url)
  const db = Number(parsed.pathname.slice(1) || "0")
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(Number.isInteger(db) ? { db } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {})
  }
}

/** The rate limit in Redis, shared by every process on it; keys under `<prefix>:ratelimit:`. */
export const rateLimitRedis = (options: { readonly limit: number; readonly url: string; readonly prefix: string }) =>
  Layer.effect(RateLimit, make(options.limit, true)).pipe(
    Layer.provide(RateLimiter.layer),
    Layer.provide(RateLimiterRedis.layerStore({
      ...redisOptionsOf(options.url),
      prefix: `${options.prefix}:ratelimit:`,
      // Commands wait for the connection (each check is bounded by `storeTimeout` all the same), and while Redis is
      // away the waiting ones fail at the first failed reconnection instead of piling up.
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true
    }))
  )

/** The rate limit as configured: in Redis when `REDIS_URL` is set, in memory otherwise. */
export const RateLimitLive = Layer.unwrapEffect(Effect.gen(function*() {
  const limit = yield* rateLimitPerSecond
  const url = yield* Config.option(Config.redacted("REDIS_URL"))
  const value = Option.map(url, Redacted.value).pipe(Option.filter((u) => u.trim() !== ""))
  if (Option.isNone(value)) return rateLimitMemory(limit)
  const prefix = yield* Config.string("CACHE_PREFIX").pipe(Config.withDefault("rc"))
  return rateLimitRedis({ limit, url: value.value, prefix })
}))

/** `Authorization: Bearer <token>`, then the token's rate limit: every route but the operators' ones. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("Authentication", {
  failure: Schema.Union(Unauthorized, TooManyRequests),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const unauthorized = (message: string) => Effect.fail(new Unauthorized({ message }))

/** The middleware: a known token (401 otherwise), within its rate limit (429 otherwise). */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const { entries } = yield* Tokens
    const rateLimit = yield* RateLimit
    // Keyed by digest: the lookup sees only a digest, never the token, so its time says nothing about the token.
    const byDigest = new Map(entries.map((entry) => [entry.digest, entry]))
    return Authentication.of({
      // The platform's bearer decoding does not check the scheme; the header is read here instead.
      bearer: () =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): Effect.Effect<
          void,
          Unauthorized | TooManyRequests
        > => {
          const header = request.headers.authorization
          if (header === undefined) {
            return unauthorized("missing bearer token: send Authorization: Bearer <token>")
          }
          const match = /^Bearer +(\S+) *$/i.exec(header)
          if (match === null) return unauthorized("the Authorization header must be Bearer <token>")
          const entry = byDigest.get(digestOf(match[1]!))
          if (entry === undefined) return unauthorized("unknown bearer token")
          return Effect.zipRight(rateLimit.check(entry.label), FiberRef.set(currentCaller, entry.caller))
        })
    })
  })
)

/** The scope a route needs on a tenant. */
export type Need = "read" | "write" | "admin"

/**
 * Fails with a 403 unless the caller's token has `need` on the tenant (admin has every scope). Without a caller (a
 * route without the `Authentication` middleware: a bug), nothing is allowed.
 */
export const authorize = (need: Need, tenantId?: string): Effect.Effect<void, Forbidden> =>
  Effect.flatMap(FiberRef.get(currentCaller), (caller) =>
    caller === undefined
      ? Effect.dieMessage("no caller: the route lacks the Authentication middleware")
      : authorizeCaller(caller, need, tenantId))

const authorizeCaller = (caller: Caller, need: Need, tenantId?: string): Effect.Effect<void, Forbidden> => {
  const { scopes } = caller
  if (scopes.admin) return Effect.void
  if (need !== "admin" && tenantId !== undefined && scopes[need].has(tenantId)) return Effect.void
  const required = need === "admin" ? "admin" : `${need}:${tenantId}`
  return Effect.fail(new Forbidden({ message: `this token lacks the scope ${required}`, required }))
}
