/**
 * What the Redis store does through the ioredis client itself when its `Redis` service is this package's
 * `IoRedis` layer: the parts a generic `Redis` service cannot express. Ported from the Effect 3 package's
 * `CacheStore/Redis.ts` (same rules, same bounds); the commands and scripts are the wire package's.
 *
 * - On a cluster, the sweep runs each page on the primary that owns the namespace's slot and follows the slot when
 *   a resharding moves it (a SCAN cursor means something only on the node that made it: sent through the cluster
 *   client, a MOVED or ASK would carry it to another node).
 * - On a cluster, a confirmed invalidation sends DEL + WAIT to the slot's owner over a connection of its own (a
 *   duplicate of the cluster client would send the keyless WAIT to any node).
 */
import type { Keys } from "@ledgerlink/response-cache-wire"
import { Commands, Scripts } from "@ledgerlink/response-cache-wire"
import calculateSlot from "cluster-key-slot"
import type { Cluster, Redis } from "ioredis"

type SweepCommand = (
  generation: string,
  written: string,
  cursor: string,
  pattern: string,
  count: number
) => Promise<[string | number, number]>

/** A cluster node's own connection with the sweep script defined on it (ioredis: EVALSHA, EVAL after a restart). */
const withSweepScript = (node: Redis): Redis & { readonly rcSweep: SweepCommand } => {
  if (!("rcSweep" in node)) node.defineCommand("rcSweep", { numberOfKeys: 2, lua: Scripts.sweep })
  return node as Redis & { readonly rcSweep: SweepCommand }
}

const address = (node: Redis): string => `${node.options.host}:${node.options.port}`

/**
 * The primary that owns a key's slot, as this cluster client knows it (`client.slots`, updated by the client on
 * MOVED and by its periodic slot refresh).
 */
const slotOwner = (client: Cluster, key: string): Redis => {
  const owner = client.slots[calculateSlot(key)]?.[0]
  const node = client.nodes("master").find((node) => address(node) === owner)
  if (node === undefined) throw new Error(`no cluster node owns the slot of ${key} yet`)
  return node
}

/** Why a cluster node turned a keyed command away: `MOVED`, `ASK`, `TRYAGAIN`, or undefined for anything else. */
const redirection = (error: unknown): string | undefined => {
  const word = error instanceof Error ? error.message.split(" ", 1)[0] : undefined
  return word === "MOVED" || word === "ASK" || word === "TRYAGAIN" ? word : undefined
}

/**
 * Runs `run` on the primary that owns `key`'s slot, following the cluster when it answers MOVED (ask the cluster
 * client, by a keyed command, to learn the new owner), ASK or TRYAGAIN (the same node again after the client's
 * `retryDelayOnTryAgain`), at most `maxRedirections` times, as the cluster client does.
 */
const atSlotOwner = async <A>(client: Cluster, key: string, run: (node: Redis) => Promise<A>): Promise<A> => {
  // The client may never have sent this slot a command: make it learn the owner first.
  if (client.slots[calculateSlot(key)] === undefined) await client.exists(key)
  for (let attempts = client.options.maxRedirections ?? 16;; attempts--) {
    try {
      return await run(slotOwner(client, key))
    } catch (error) {
      const redirect = redirection(error)
      if (redirect === undefined || attempts <= 1) throw error
      if (redirect === "MOVED") await client.exists(key)
      else await new Promise((resolve) => setTimeout(resolve, client.options.retryDelayOnTryAgain ?? 100))
    }
  }
}

/**
 * Where a cluster sweep is: the cursor, and the node it belongs to (undefined before the first page).
 */
export interface SweepCursor {
  readonly cursor: string
  readonly node: Redis | undefined
}

/**
 * One page of a namespace's sweep on a cluster: one script call on the primary that owns the namespace's slot,
 * which SCANs a page there and removes its dead entries. The owner is looked up again for every page, so that a
 * resharding moves the sweep along with the slot: on another node the sweep starts over (a cursor means nothing
 * there; what was swept is gone, so starting over only costs a rescan).
 */
export const sweepClusterPage = (
  client: Cluster,
  namespace: Keys.NamespaceKeys,
  page: SweepCursor
): Promise<{ readonly removed: number; readonly next: SweepCursor }> =>
  atSlotOwner(client, namespace.generation, async (node) => {
    const cursor = node === page.node ? page.cursor : "0"
    const [next, removed] = await withSweepScript(node).rcSweep(
      namespace.generation,
      namespace.written,
      cursor,
      namespace.entryPattern,
      Scripts.sweepPageCount
    )
    return { removed: Number(removed), next: { cursor: String(next), node } }
  })

/**
 * Invalidations confirmed by `WAIT` on a cluster: DEL + WAIT in one write, to the owner of the namespace's slot,
 * over a connection of its own per primary (WAIT blocks the connection it runs on and counts only that
 * connection's writes). A connection that failed or timed out is dropped and opened afresh by the next
 * invalidation, and the owner is looked up again, so a failover moves the invalidations along.
 */
export const clusterConfirmations = (
  client: Cluster,
  confirm: { readonly replicas: number; readonly timeoutMs: number },
  commandTimeoutMs: number
) => {
  const connections = new Map<string, Redis>()
  const connectionTo = (node: Redis): Redis => {
    const at = address(node)
    let connection = connections.get(at)
    if (connection === undefined || connection.status === "end") {
      connection = node.duplicate({
        // Connected by its first command, which the offline queue holds meanwhile; every command is still bounded.
        lazyConnect: true,
        enableOfflineQueue: true,
        commandTimeout: commandTimeoutMs + confirm.timeoutMs,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        retryStrategy: () => null
      })
      connection.on("error", () => {})
      connections.set(at, connection)
    }
    return connection
  }
  const dropOn = async (node: Redis, namespace: Keys.NamespaceKeys): Promise<void> => {
    const connection = connectionTo(node)
    try {
      const replies = await connection.pipeline()
        .call(...Commands.invalidate(namespace))
        .call(...Commands.confirm(confirm.replicas, confirm.timeoutMs))
        .exec()
      const [[deleteError], [waitError, acknowledged]] = replies as [[Error | null], [Error | null, number]]
      if (deleteError !== null) throw deleteError
      if (waitError !== null) throw waitError
      const unconfirmed = Commands.unconfirmed(confirm.replicas, confirm.timeoutMs, acknowledged)
      if (unconfirmed !== undefined) throw new Unconfirmed(unconfirmed)
    } catch (error) {
      // The connection may be stuck behind a WAIT, on a hung primary or on one demoted since: start afresh.
      if (!(error instanceof Unconfirmed)) {
        connections.delete(address(node))
        connection.disconnect()
      }
      throw error
    }
  }
  return {
    drop: (namespace: Keys.NamespaceKeys): Promise<void> =>
      atSlotOwner(client, namespace.generation, (node) => dropOn(node, namespace)),
    close: () => {
      for (const connection of connections.values()) connection.disconnect()
      connections.clear()
    }
  }
}

/** WAIT answered, with fewer replicas than asked for. */
export class Unconfirmed extends Error {}

/**
 * Whether an ioredis client is a Cluster client.
 */
export const isCluster = (client: Redis | Cluster): client is Cluster => "slots" in client && "nodes" in client
