/**
 * The plain commands (no script) whose exact form both packages must agree on, written once: each is returned as
 * `[command, ...args]`, for whichever client sends it (ioredis `call`, Effect's `Redis.send`, a pipeline).
 *
 * @since 0.1.0
 */
import type { NamespaceKeys } from "./Keys.js"

/**
 * A namespace's invalidation: DEL of its generation key. One O(1) command that Redis accepts even when it is full
 * under `maxmemory-policy noeviction` (where it refuses a SET), so an invalidation is never lost to OOM. From then
 * on no stored entry is current, a write that expects the old generation is refused by the write script, and the
 * next lookup that may create one starts a new unique token (`Tokens`), which no stored entry carries.
 *
 * Processes of earlier versions that replace the generation with `SET … XX KEEPTTL` instead interoperate: either
 * way no entry of the old token is current again.
 *
 * @since 0.1.0
 * @category commands
 */
export const invalidate = (namespace: NamespaceKeys): readonly [command: "DEL", generation: string] => [
  "DEL",
  namespace.generation
]

/**
 * The confirmation of an invalidation (`confirmInvalidation`): `WAIT replicas timeoutMs`, sent right after
 * `invalidate` on the same connection (WAIT counts that connection's writes only), on a connection no other command
 * queues behind (WAIT blocks it). The reply is how many replicas acknowledged; fewer than `replicas` means the
 * invalidation may not survive a failover (see `unconfirmed`).
 *
 * @since 0.1.0
 * @category commands
 */
export const confirm = (
  replicas: number,
  timeoutMs: number
): readonly [command: "WAIT", replicas: string, timeoutMs: string] => ["WAIT", String(replicas), String(timeoutMs)]

/**
 * Why a WAIT reply does not confirm an invalidation, if it does not.
 *
 * @since 0.1.0
 * @category commands
 */
export const unconfirmed = (replicas: number, timeoutMs: number, acknowledged: number): string | undefined =>
  acknowledged >= replicas
    ? undefined
    : `WAIT ${replicas} ${timeoutMs}: ${acknowledged} of ${replicas} replicas acknowledged the invalidation in ` +
      `time; it may not survive a failover`
