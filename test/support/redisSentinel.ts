/**
 * A Redis Sentinel setup of the tests' own: one primary, one replica and three sentinels (quorum 2) on free
 * loopback ports, each a `startRedisServer` process stopped by its PID. Failure detection is quick
 * (`down-after-milliseconds` 500, `failover-timeout` 2000 by default), so a killed primary is replaced by its
 * replica within a second or two.
 */
import { Redis } from "ioredis"
import { type RedisServer, startRedisServer } from "./redisServer.js"

export interface RedisSentinel {
  /** The name the sentinels monitor the primary under (ioredis's `name` option). */
  readonly name: string
  /** The sentinels' addresses (ioredis's `sentinels` option). */
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The two data servers: `servers[0]` started as the primary, `servers[1]` as its replica. */
  readonly servers: ReadonlyArray<RedisServer>
  /** The data server that is the primary now, as the sentinels say. */
  readonly primary: () => Promise<RedisServer>
  /** Waits until the sentinels name a primary other than `server` and it accepts writes; returns it. */
  readonly waitForFailover: (from: RedisServer, timeoutMs?: number) => Promise<RedisServer>
  /** Stops every process of this setup. */
  readonly stop: () => Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 50 ms until it returns a value, or fails after `timeoutMs` saying `what`. */
const until = async <A>(what: string, timeoutMs: number, check: () => Promise<A | undefined>): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`redis sentinel setup: ${what} not within ${timeoutMs} ms`)
    await sleep(50)
  }
}

/** A short-lived plain connection to a local port that never retries or queues. */
const ask = async <A>(port: number, run: (redis: Redis) => Promise<A>): Promise<A> => {
  const redis = new Redis(port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 500,
    commandTimeout: 500
  })
  redis.on("error", () => {})
  try {
    await redis.connect()
    return await run(redis)
  } finally {
    redis.disconnect()
  }
}

const linkUp = (port: number) =>
  ask(port, (redis) => redis.info("replication")).then((info) => /master_link_status:up/.test(info) ? true : undefined)

export const startRedisSentinel = async (
  options: { readonly downAfterMs?: number; readonly failoverTimeoutMs?: number; readonly name?: string } = {}
): Promise<RedisSentinel> => {
  const name = options.name ?? "rc-primary"
  const started: Array<RedisServer> = []
  const stop = async () => {
    await Promise.allSettled(started.map((server) => server.stop()))
  }
  try {
    // No delay before a full sync, for the replica now and for the old primary when it comes back as one.
    const data = ["--repl-diskless-sync-delay", "0"]
    const primary = await startRedisServer({ args: data })
    started.push(primary)
    const replica = await startRedisServer({ args: [...data, "--replicaof", "127.0.0.1", String(primary.port)] })
    started.push(replica)
    await until("the replica's link to the primary", 10_000, () => linkUp(replica.port))
    const config = [
      `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 500}`,
      `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 2000}`,
      `sentinel parallel-syncs ${name} 1`,
      ""
    ].join("\n")
    const sentinels = await Promise.all([0, 1, 2].map(() => startRedisServer({ config, sentinel: true })))
    for (const sentinel of sentinels) started.push(sentinel)
    const servers = [primary, replica]
    const addresses = sentinels.map((sentinel) => ({ host: "127.0.0.1", port: sentinel.port }))

    const primaryPort = () =>
      Promise.any(
        sentinels.map((sentinel) =>
          ask(sentinel.port, (redis) =>
            redis.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name) as Promise<[string, string]>)
        )
      ).then(([, port]) =>
        Number(port)
      )
    const serverOn = (port: number) => servers.find((server) => server.port === port)
    // Ready when every sentinel knows the replica and the other two sentinels: a failover needs them.
    await until(
      "the sentinels to discover each other and the replica",
      15_000,
      () =>
        Promise.all(
          sentinels.map((sentinel) =>
            ask(sentinel.port, (redis) => redis.call("SENTINEL", "MASTER", name) as Promise<Array<string>>)
          )
        ).then((masters) =>
          masters.every((fields) => {
              const field = (key: string) => Number(fields[fields.indexOf(key) + 1])
              return field("num-slaves") >= 1 && field("num-other-sentinels") >= 2
            }) ?
            true :
            undefined
        )
    )
    return {
      name,
      sentinels: addresses,
      servers,
      primary: () => primaryPort().then((port) => serverOn(port)!),
      waitForFailover: (from, timeoutMs = 15_000) =>
        until("a failover", timeoutMs, async () => {
          const server = serverOn(await primaryPort())
          if (server === undefined || server === from) return undefined
          const role = await ask(server.port, (redis) => redis.role())
          return role[0] === "master" ? server : undefined
        }),
      stop
    }
  } catch (error) {
    await stop()
    throw error
  }
}
