/**
 * Connecting the Redis store's client: the ioredis options the cache's guarantees rest on, and a scoped client
 * whose release cannot hang.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"

/**
 * Waits until the client is ready, or not at all: the layer must build while Redis is down.
 */
const whenReady = (client: Redis | Cluster, timeout: Duration.Duration) =>
  Effect.async<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const onReady = () => resume(Effect.void)
    client.once("ready", onReady)
    return Effect.sync(() => client.off("ready", onReady))
  }).pipe(Effect.timeoutOption(timeout), Effect.asVoid)

/** `commandTimeout` in whole milliseconds; default 500. */
export const commandTimeoutMs = (options: { readonly commandTimeout?: Duration.DurationInput | undefined }) =>
  Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(options.commandTimeout ?? Duration.millis(500)))))

/**
 * Client options shared by a single server and every node of a cluster: commands fail at once while disconnected
 * (no offline queue that holds them until Redis returns) and after `commandTimeout` when Redis hangs; the client
 * reconnects in the background by itself.
 */
export const clientOptions = (commandTimeout: number) => ({
  commandTimeout,
  connectTimeout: Math.max(1000, commandTimeout),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (attempt: number) => Math.min(25 * 2 ** attempt, 1000)
})

/**
 * A client for the cache, closed with the scope by a release that cannot hang.
 */
export const acquire = <C extends Redis | Cluster>(
  connect: () => C,
  commandTimeout: number
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = connect()
      // Connection errors reach callers as failed commands; without a listener ioredis would print each one.
      client.on("error", () => {})
      return client
    }),
    (client) =>
      Effect.tryPromise(() => client.quit()).pipe(
        Effect.interruptible,
        Effect.timeoutOption(Duration.seconds(1)),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  ).pipe(Effect.tap((client) => whenReady(client, Duration.millis(commandTimeout))))

/** The plain value of a setting that may be a secret. */
export const reveal = (secret: string | Redacted.Redacted): string =>
  Redacted.isRedacted(secret) ? Redacted.value(secret) as string : secret
