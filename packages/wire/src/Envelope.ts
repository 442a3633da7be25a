/**
 * How an entry is stored: `<generation>|<graceMs>|<json>`, with a PX of its fresh time plus `graceMs`. The
 * generation in front lets every read and write check it against the namespace's current one atomically; the
 * grace says how much of the time Redis has left is a stale window. Freshness is judged by what Redis says is
 * left (PTTL), never by a writer's timestamp against a reader's clock.
 *
 * @since 0.1.0
 */

/**
 * An entry that belongs to its namespace's current generation.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredEntry {
  /** The response's JSON text. */
  readonly payload: string
  /** How long the entry was kept past its fresh time when written. */
  readonly graceMs: number
  /**
   * Milliseconds until the store drops it, as the store itself counts them. Infinity when the store did not ask
   * (an entry without grace is fresh for as long as it exists).
   */
  readonly remainingMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Lookup {
  /** The namespace's current generation; undefined when it has none and none was asked to be created. */
  readonly generation: string | undefined
  readonly entry: StoredEntry | undefined
  /**
   * True when the key holds something that is no entry of this cache at all (no `<generation>|<graceMs>|` in
   * front): corrupt, rather than an entry of another generation.
   */
  readonly corrupt?: boolean | undefined
}

/**
 * Whether a stored value has the envelope of an entry, `<token>|<graceMs>|…` (tokens are base64url).
 *
 * @since 0.1.0
 * @category envelope
 */
export const isEnvelope = (value: string): boolean => envelope.test(value)

const envelope = /^[A-Za-z0-9_-]+\|\d+\|/

/**
 * The default bound on an entry's size (`maxEntryBytes`): 1 MiB of UTF-8.
 *
 * @since 0.1.0
 * @category size
 */
export const defaultMaxEntryBytes = 1024 * 1024

/**
 * Whether a response's JSON text is larger than `maxBytes` in UTF-8 — too large to store (`maxEntryBytes`). Both
 * packages measure with this, so a response one stores the other stores too. Its UTF-8 size is only measured when
 * its length leaves it open (a UTF-16 unit is 1 to 3 UTF-8 bytes; a surrogate pair, two units, is 4).
 *
 * @since 0.1.0
 * @category size
 */
export const exceeds = (payload: string, maxBytes: number): boolean =>
  payload.length > maxBytes || (payload.length * 3 > maxBytes && Buffer.byteLength(payload, "utf8") > maxBytes)

/**
 * What the write script stores after the generation: `<graceMs>|<json>`.
 *
 * @since 0.1.0
 * @category envelope
 */
export const body = (graceMs: number, payload: string): string => `${graceMs}|${payload}`

/**
 * Reads one MGET of `[generation, entry]`: the lookup's answer, or `undefined` when only the lookup script can
 * tell (no generation yet, or an entry with grace, whose time left decides what it is).
 *
 * @since 0.1.0
 * @category envelope
 */
export const fromMget = (
  generation: string | null | undefined,
  value: string | null | undefined
): Lookup | undefined => {
  if (generation === null || generation === undefined) return undefined
  if (value === null || value === undefined) return { generation, entry: undefined }
  if (value.charCodeAt(generation.length) !== 124 || !value.startsWith(generation)) {
    return isEnvelope(value) ? { generation, entry: undefined } : { generation, entry: undefined, corrupt: true }
  }
  const bar = value.indexOf("|", generation.length + 1)
  // `0|`: no grace. Anything else needs the PTTL the script reads with it.
  if (bar !== generation.length + 2 || value.charCodeAt(generation.length + 1) !== 48) return undefined
  return { generation, entry: { payload: value.slice(bar + 1), graceMs: 0, remainingMs: Infinity } }
}

/**
 * Reads the lookup script's reply: `{}`, `{generation}`, `{generation, 0}` (the key holds no entry of this cache)
 * or `{generation, "<graceMs>|<json>", pttl}`.
 *
 * @since 0.1.0
 * @category envelope
 */
export const fromLookupReply = (reply: ReadonlyArray<string | number>): Lookup => {
  const generation = reply[0] as string | undefined
  const value = reply[1]
  if (value === undefined) return { generation, entry: undefined }
  if (typeof value === "number") return { generation, entry: undefined, corrupt: true }
  const bar = value.indexOf("|")
  return {
    generation,
    entry: {
      graceMs: Number(value.slice(0, bar)),
      payload: value.slice(bar + 1),
      remainingMs: Number(reply[2])
    }
  }
}
