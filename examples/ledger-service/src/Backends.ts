/**
 * The edge where backends are chosen from `Config`: the cache is Redis when `REDIS_URL` is set and in memory
 * otherwise; the ledger is PostgreSQL when `DATABASE_URL` is set and embedded otherwise.
 */
import { ResponseCache } from "@ledgerlink/response-cache"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import type { CacheBackendName } from "./Domain/Health.js"
import * as EmbeddedLedger from "./LedgerRepo/Embedded.js"
import * as PostgresLedger from "./LedgerRepo/Postgres.js"

/** Which store the `ResponseCache` of this process is on. */
export class CacheBackend extends Context.Tag("ledger-service/CacheBackend")<CacheBackend, {
  readonly name: CacheBackendName
  /** Where, for the startup line (host and port only, never credentials). */
  readonly location: string
}>() {}

/** `host:port` of a URL, without its credentials. */
export const hostOf = (url: Redacted.Redacted): string => {
  try {
    return new URL(Redacted.value(url)).host
  } catch {
    return "(unparsable url)"
  }
}

/** An optional secret setting; set but empty counts as unset. */
const optionalSecret = (name: string) =>
  Config.option(Config.redacted(name)).pipe(
    Config.map(Option.filter((value) => Redacted.value(value).trim() !== ""))
  )

/** The cache: `REDIS_URL` (and `CACHE_PREFIX`, default `rc`) or in memory. */
export const CacheLive = Layer.unwrapEffect(Effect.gen(function*() {
  const url = yield* optionalSecret("REDIS_URL")
  const prefix = Config.string("CACHE_PREFIX").pipe(Config.withDefault("rc"))
  if (Option.isNone(url)) {
    return Layer.merge(
      ResponseCache.layerMemory({ prefix: yield* prefix }),
      Layer.succeed(CacheBackend, { name: "memory", location: "in process" })
    )
  }
  return Layer.merge(
    ResponseCache.layerRedisConfig({ url: Config.redacted("REDIS_URL"), prefix }),
    Layer.succeed(CacheBackend, { name: "redis", location: hostOf(url.value) })
  )
}))

/** The ledger: `DATABASE_URL` (and `DATABASE_SCHEMA`, default `ledger`) or embedded. */
export const LedgerLive = Layer.unwrapEffect(Effect.gen(function*() {
  const url = yield* optionalSecret("DATABASE_URL")
  if (Option.isNone(url)) return EmbeddedLedger.layer()
  const schema = yield* Config.string("DATABASE_SCHEMA").pipe(Config.withDefault("ledger"))
  return PostgresLedger.layer({ url: url.value, schema })
}))
