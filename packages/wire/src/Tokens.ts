/**
 * Generation and lock tokens.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"

/**
 * A source of tokens that never repeat, across processes and restarts: a random per-source nonce and a counter.
 * A generation lost to eviction, expiry or a restart is replaced by one no stored entry carries.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tokenSource = (): () => string => {
  const nonce = randomBytes(9).toString("base64url")
  let counter = 0
  return () => nonce + (counter++).toString(36)
}
