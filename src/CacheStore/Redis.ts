/**
 * The Redis store: each operation is one command or one Lua script (registered once with `defineCommand`), so
 * every generation check happens atomically inside Redis, never as a read-modify-write across round trips.
 *
 * An entry is stored as `<generation>|<graceMs>|<json>`, with a PX of its fresh time plus `graceMs`; what is left
 * of it is read back with PTTL in the same script, so freshness is judged by Redis's clock alone.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Redis } from "ioredis"
import { RedisError } from "../CacheError.js"
import type { CacheStore, Lookup } from "../CacheStore.js"

// KEYS: generation, entry. ARGV: token to create a missing generation with ("" = do not), its ttl in ms.
// Returns {} (no generation), {generation} (no entry of it) or {generation, "<graceMs>|<json>", pttl}.
const lookupScript = `
local generation = redis.call('GET', KEYS[1])
if not generation then
  if ARGV[1] == '' then return {} end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1]}
end
local value = redis.call('GET', KEYS[2])
local n = #generation
if not value or string.byte(value, n + 1) ~= 124 or string.sub(value, 1, n) ~= generation then
  return {generation}
end
return {generation, string.sub(value, n + 2), redis.call('PTTL', KEYS[2])}
`

// KEYS: generation, entry. ARGV: expected generation ("" = the current one), token to create a missing one
// with, "<graceMs>|<json>", ttl in ms. Returns 1 when stored, 0 when the generation moved on.
const writeScript = `
local generation = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' then
  if generation ~= ARGV[1] then return 0 end
elseif not generation then
  generation = ARGV[2]
  redis.call('SET', KEYS[1], generation, 'PX', ARGV[4])
end
redis.call('SET', KEYS[2], generation .. '|' .. ARGV[3], 'PX', ARGV[4])
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`

// KEYS: generation, then one SCAN page of entries. UNLINKs those the current generation does not count, reading
// only each value's first bytes. Returns how many it removed.
const sweepScript = `
local generation = redis.call('GET', KEYS[1])
local head = generation and (generation .. '|') or nil
local dead = {}
for i = 2, #KEYS do
  if not head or redis.call('GETRANGE', KEYS[i], 0, #head - 1) ~= head then dead[#dead + 1] = KEYS[i] end
end
if #dead == 0 then return 0 end
return redis.call('UNLINK', unpack(dead))
`

/**
 * The scripts as ioredis commands.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScriptCommands {
  rcLookup(generation: string, entry: string, token: string, ttlMs: number): Promise<Array<string | number>>
  rcWrite(
    generation: string,
    entry: string,
    expected: string,
    token: string,
    payload: string,
    ttlMs: number
  ): Promise<number>
  rcSweep(numberOfKeys: number, ...keys: Array<string>): Promise<number>
}

/**
 * A client with the scripts defined on it.
 *
 * @since 0.1.0
 * @category models
 */
export type ScriptedRedis = Redis & ScriptCommands

/**
 * Registers the scripts once on a client (ioredis sends EVALSHA and falls back to EVAL after a restart).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defineScripts = (client: Redis): ScriptedRedis => {
  client.defineCommand("rcLookup", { numberOfKeys: 2, lua: lookupScript })
  client.defineCommand("rcWrite", { numberOfKeys: 2, lua: writeScript })
  client.defineCommand("rcSweep", { lua: sweepScript })
  return client as ScriptedRedis
}

const scanPageSize = 1000

const call = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, RedisError> =>
  Effect.tryPromise({ try: run, catch: (cause) => new RedisError({ operation, cause }) })

const parseLookup = (reply: Array<string | number>): Lookup => {
  const generation = reply[0] as string | undefined
  const value = reply[1] as string | undefined
  if (value === undefined) return { generation, entry: undefined }
  const bar = value.indexOf("|")
  return {
    generation,
    entry: {
      graceMs: Number(value.slice(0, bar)),
      payload: value.slice(bar + 1),
      remainingMs: reply[2] as number
    }
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (client: ScriptedRedis): CacheStore => ({
  lookup: (key, create) =>
    Effect.map(
      call("lookup", () =>
        client.rcLookup(key.namespace.generation, key.entry, create?.token ?? "", create?.ttlMs ?? 0)),
      parseLookup
    ),

  write: (key, write) =>
    Effect.map(
      call("write", () =>
        client.rcWrite(
          key.namespace.generation,
          key.entry,
          write.expected ?? "",
          write.token,
          `${write.graceMs}|${write.payload}`,
          write.ttlMs
        )),
      (stored) => stored === 1
    ),

  remove: (key) => Effect.asVoid(call("unlink", () => client.unlink(key.entry))),

  renewGeneration: (namespace, token) =>
    Effect.asVoid(call("renew generation", () => client.set(namespace.generation, token, "KEEPTTL", "XX"))),

  sweep: (namespace) =>
    Stream.paginateEffect("0", (cursor) =>
      Effect.gen(function*() {
        const [next, keys] = yield* call("scan", () =>
          client.scan(cursor, "MATCH", namespace.entryPattern, "COUNT", scanPageSize))
        const removed = keys.length === 0
          ? 0
          : yield* call("sweep", () => client.rcSweep(keys.length + 1, namespace.generation, ...keys))
        return [removed, next === "0" ? Option.none() : Option.some(next)] as const
      })
    )
})
