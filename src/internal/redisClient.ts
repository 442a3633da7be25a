/**
 * Connecting the Redis store's client: the application's connection settings checked and merged with the ioredis
 * options the cache's guarantees rest on, and a scoped client whose release cannot hang.
 *
 * Every unusable setting fails with `ConfigError.InvalidData` at the setting's path, when the layer is built.
 */
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster, ClusterOptions, Redis, RedisOptions as IORedisOptions } from "ioredis"
import { connectionFailure } from "./warnings.js"

/**
 * ioredis's `RedisOptions` as the cache takes them: `replyMapping` left out (its type admits no `undefined`, which
 * `exactOptionalPropertyTypes` asks of an option, and the cache reads no reply it would change).
 */
export type RedisOptions = Omit<IORedisOptions, "replyMapping">

/** Fails with `ConfigError.InvalidData` at `path`; the message names the setting too, for logs that drop paths. */
export const invalid = (
  path: ReadonlyArray<string | number>,
  message: string
): Effect.Effect<never, ConfigError.ConfigError> =>
  Effect.fail(ConfigError.InvalidData(path.map(String), `${path.join(".")}: ${message}`))

/** `commandTimeout` in whole milliseconds; default 500. Not a positive, finite duration: InvalidData. */
export const commandTimeoutMs = (
  options: { readonly commandTimeout?: Duration.DurationInput | undefined }
): Effect.Effect<number, ConfigError.ConfigError> =>
  Effect.suspend(() => {
    const decoded = decodeDuration(options.commandTimeout ?? Duration.millis(500))
    if (decoded === undefined) return invalid(["commandTimeout"], `${String(options.commandTimeout)} is not a duration`)
    const ms = Duration.toMillis(decoded)
    return Number.isFinite(ms) && ms > 0
      ? Effect.succeed(Math.ceil(ms))
      : invalid(
        ["commandTimeout"],
        `${ms} ms is not usable: use a finite duration above 0 (every Redis call is bounded by it)`
      )
  })

const decodeDuration = (input: Duration.DurationInput): Duration.Duration | undefined => {
  try {
    return Duration.decode(input)
  } catch {
    return undefined
  }
}

/**
 * Client options shared by a single server and every node of a cluster: commands fail at once while disconnected
 * (no offline queue that holds them until Redis returns) and after `commandTimeout` when Redis hangs; the client
 * reconnects in the background by itself.
 */
export const clientOptions = (commandTimeout: number) =>
  ({
    commandTimeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt: number) => Math.min(25 * 2 ** attempt, 1000)
  }) satisfies RedisOptions

/** ioredis settings the cache's guarantees rest on: an application cannot set them (`commandTimeout` is ours). */
const librarySettings: Record<string, string> = {
  enableOfflineQueue: "calls must fail at once while Redis is away, not wait in a queue",
  commandTimeout: "set the cache's own commandTimeout instead",
  maxRetriesPerRequest: "a failed call is answered from the resolver, not retried",
  autoResendUnfulfilledCommands: "a call cut off by a disconnect has already been answered",
  retryStrategy: "the cache reconnects in the background on a schedule of its own",
  keyPrefix: "set the cache's own prefix instead (its scripts and sweep patterns carry it)"
}

/** The parts of ioredis's `RedisOptions` a URL can say. */
export interface FromUrl {
  readonly host?: string
  readonly port?: number
  readonly username?: string
  readonly password?: string
  readonly db?: number
  readonly tls?: {}
}

/**
 * A `redis://` or `rediss://` URL as ioredis options: host, port, credentials, database, TLS. Anything else —
 * another scheme, a path that is not a database number — is InvalidData at `path`.
 */
export const parseUrl = (
  secret: string | Redacted.Redacted,
  path: ReadonlyArray<string | number>
): Effect.Effect<FromUrl, ConfigError.ConfigError> =>
  Effect.suspend(() => {
    const text = reveal(secret)
    let url: URL
    try {
      url = new URL(text)
    } catch {
      // The value may hold a password: never repeat it.
      return invalid(path, "not a URL: expected redis://[user:password@]host[:port][/db] or rediss://…")
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      return invalid(path, `the scheme ${url.protocol} is not redis: or rediss:`)
    }
    if (url.hostname === "") return invalid(path, "the URL names no host")
    const result: { -readonly [K in keyof FromUrl]: FromUrl[K] } = { host: url.hostname.replace(/^\[|\]$/g, "") }
    if (url.port !== "") result.port = Number(url.port)
    if (url.username !== "" || url.password !== "") {
      if (url.username !== "") result.username = decodeURIComponent(url.username)
      result.password = decodeURIComponent(url.password)
    }
    if (url.pathname !== "" && url.pathname !== "/") {
      const db = /^\/(\d{1,9})$/.exec(url.pathname)?.[1]
      if (db === undefined) return invalid(path, `the path ${url.pathname} is not a database number (/0, /1, …)`)
      result.db = Number(db)
    }
    if (url.protocol === "rediss:") result.tls = {}
    return Effect.succeed(result)
  })

/** The application's own ioredis options, checked: none of the library's settings, a usable `db`. */
export const checkRedisOptions = (
  options: RedisOptions | undefined,
  path: ReadonlyArray<string>
): Effect.Effect<RedisOptions, ConfigError.ConfigError> =>
  Effect.suspend(() => {
    if (options === undefined) return Effect.succeed({})
    for (const [key, why] of Object.entries(librarySettings)) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        return invalid([...path, key], `is the cache's own: ${why}`)
      }
    }
    const db = options.db
    if (db !== undefined && (!Number.isSafeInteger(db) || db < 0)) {
      return invalid([...path, "db"], `${db} is not a database number (a whole number, at least 0)`)
    }
    if (options.sentinels !== undefined && options.sentinels.length > 0 && (options.name ?? "") === "") {
      return invalid([...path, "name"], "sentinels need the name the primary is monitored under")
    }
    return Effect.succeed(options)
  })

/**
 * The options of a single-server client: what `url` says, the application's `redis` options over it (a `tls`
 * object of its own replaces the URL's `rediss:`), the library's settings over both.
 */
export const singleOptions = (
  options: { readonly url?: string | Redacted.Redacted | undefined; readonly redis?: RedisOptions | undefined },
  commandTimeout: number
): Effect.Effect<RedisOptions, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const own = yield* checkRedisOptions(options.redis, ["redis"])
    // With sentinels, the primary's address comes from them: a URL only adds credentials, db and TLS.
    const fromUrl = options.url === undefined && own.sentinels !== undefined
      ? {}
      : yield* parseUrl(options.url ?? "redis://127.0.0.1:6379", ["url"])
    return {
      connectTimeout: Math.max(1000, commandTimeout),
      ...fromUrl,
      ...own,
      ...clientOptions(commandTimeout)
    }
  })

/** The library's cluster settings: see `CacheStore/Redis`'s `layerCluster` for why each. */
const libraryClusterSettings: Record<string, string> = {
  enableOfflineQueue: "calls must fail at once while the cluster is away, not wait in a queue",
  redisOptions: "use the `redis` option for the nodes' connection settings",
  retryDelayOnFailover: "calls must stay within commandTimeout while a primary fails over",
  retryDelayOnClusterDown: "calls must stay within commandTimeout while the cluster is down",
  retryDelayOnTryAgain: "the cache spaces TRYAGAIN retries to fit in commandTimeout",
  clusterRetryStrategy: "the cache reconnects in the background on a schedule of its own",
  keyPrefix: "set the cache's own prefix instead (its scripts and sweep patterns carry it)"
}

/** The application's own ioredis `ClusterOptions`, checked: reads go to primaries, none of the library's settings. */
export const checkClusterOptions = (
  options: ClusterOptions | undefined
): Effect.Effect<ClusterOptions, ConfigError.ConfigError> =>
  Effect.suspend(() => {
    if (options === undefined) return Effect.succeed({})
    for (const [key, why] of Object.entries(libraryClusterSettings)) {
      if ((options as Record<string, unknown>)[key] !== undefined) {
        return invalid(["cluster", key], `is the cache's own: ${why}`)
      }
    }
    if (options.scaleReads !== undefined && options.scaleReads !== "master") {
      return invalid(
        ["cluster", "scaleReads"],
        "reads must go to primaries: a replica may not have the latest generation yet, and would serve invalidated entries"
      )
    }
    return Effect.succeed(options)
  })

/**
 * The startup nodes of a cluster from their URLs, and the node options: credentials and TLS from the URLs
 * (`rediss://` nodes are connected with TLS), the application's `redis` options over them, the library's over all.
 */
export const clusterNodes = (
  options: { readonly nodes: ReadonlyArray<string | Redacted.Redacted>; readonly redis?: RedisOptions | undefined },
  commandTimeout: number
): Effect.Effect<
  { readonly nodes: Array<{ host: string; port: number }>; readonly redisOptions: RedisOptions },
  ConfigError.ConfigError
> =>
  Effect.gen(function*() {
    if (options.nodes.length === 0) return yield* invalid(["nodes"], "name at least one node of the cluster")
    const own = yield* checkRedisOptions(options.redis, ["redis"])
    if (own.db !== undefined && own.db !== 0) {
      return yield* invalid(["redis", "db"], "a Redis Cluster has database 0 only")
    }
    const parsed = yield* Effect.forEach(options.nodes, (node, i) => parseUrl(node, ["nodes", i]))
    const first = parsed[0]!
    for (const [i, node] of parsed.entries()) {
      if (node.db !== undefined && node.db !== 0) {
        return yield* invalid(["nodes", i], "a Redis Cluster has database 0 only")
      }
    }
    const credentials = {
      ...(first.username === undefined ? {} : { username: first.username }),
      ...(first.password === undefined ? {} : { password: first.password })
    }
    return {
      nodes: parsed.map((node) => ({ host: node.host!, port: node.port ?? 6379 })),
      redisOptions: {
        connectTimeout: Math.max(1000, commandTimeout),
        ...credentials,
        ...(parsed.some((node) => node.tls !== undefined)
          ? { tls: {} }
          : {}),
        ...own,
        ...clientOptions(commandTimeout)
      }
    }
  })

/** The last connection failure of each client (socket, TLS handshake, AUTH refused, …), while it is not ready. */
const connectionErrors = new WeakMap<object, Error>()

/** What a failed command says when it only knows that the connection is not usable. */
const connectionDown =
  /Stream isn't writeable|Connection is closed|None of startup nodes|Connection timed out|enableOfflineQueue/i

/**
 * A failed command's cause. When the command only says that the connection is down, the connection's own last
 * failure (WRONGPASS, a TLS error, ECONNREFUSED, …) becomes the cause, with the command's words after it: ioredis
 * reports that reason on its 'error' events only, never on the commands it turns away.
 */
export const explain = (client: object, cause: unknown): unknown => {
  const reason = connectionErrors.get(client)
  if (reason === undefined || !(cause instanceof Error) || !connectionDown.test(cause.message)) return cause
  const explained = new Error(`${describeError(reason)} (${cause.message})`, { cause: reason })
  Object.defineProperty(explained, connectionFailure, { value: true })
  return explained
}

/** The words of an error: its message, or its code (Node's AggregateError of a failed connect has no message). */
const describeError = (error: Error): string => {
  if (error.message !== "") return error.message
  const inner = (error as { errors?: ReadonlyArray<unknown> }).errors?.[0]
  if (inner instanceof Error) return describeError(inner)
  const code = (error as { code?: unknown }).code
  return typeof code === "string" ? code : error.name
}

/**
 * Where a client's own events go, instead of being dropped or printed on the console by ioredis: the connection's
 * failures ('error' events: socket, TLS handshake, AUTH refused, …), what ioredis would `console.warn` (INFO
 * refused by an ACL, a password the server does not need), and its recovery.
 */
export interface Events {
  readonly failed: (error: Error) => void
  /**
   * A Redis Cluster node's connection failed, or a node did not answer the slot map (ioredis's "node error"): the
   * cluster goes on through its other nodes and retries this one. Reported as `failed` when not given.
   */
  readonly nodeFailed?: ((error: Error, node: string) => void) | undefined
  readonly notice: (message: string) => void
  readonly recovered: () => void
}

/** What ioredis answers to an AUTH refusal it only prints on the console, going on without the password. */
const authNotices = /no password is set|without any password configured|wrong number of arguments for 'auth'/i

/**
 * Replaces a command of one connection by one that turns the refusals `handled` recognises into a notice and the
 * reply `fallback` — the answer ioredis itself goes on with after printing its warning — so nothing reaches the
 * console. Both the promise and the callback form keep working (ioredis's ready check uses the callback).
 */
const intercept = (
  connection: Redis,
  command: "info" | "auth" | "hello",
  handled: (error: Error) => string | undefined,
  fallback: unknown
) => {
  const original = (connection as unknown as Record<string, (...args: Array<unknown>) => Promise<unknown>>)[command]!
    .bind(connection)
  Object.defineProperty(connection, command, {
    configurable: true,
    writable: true,
    value: (...args: Array<unknown>) => {
      const callback = typeof args.at(-1) === "function"
        ? args.pop() as (error: unknown, reply?: unknown) => void
        : undefined
      const reply = original(...args).catch((error: unknown) => {
        const notice = error instanceof Error ? handled(error) : undefined
        if (notice === undefined) throw error
        const events = eventsOf.get(connection)
        events?.notice(notice)
        return fallback
      })
      if (callback !== undefined) {
        reply.then((value) => callback(null, value), (error) => callback(error))
        reply.catch(() => {})
      }
      return reply
    }
  })
}

const eventsOf = new WeakMap<object, Events>()

/**
 * `watchConnection` for a client: a single connection, or a cluster and each node connection it opens (a cluster
 * reports its nodes' failures as "node error", its own as "error").
 */
export const watchClient = (client: Redis | Cluster, events: Events): void => {
  if (!("nodes" in client && "slots" in client)) return watchConnection(client as Redis, events)
  if (eventsOf.has(client)) return
  eventsOf.set(client, events)
  const nodeEvents: Events = { ...events, failed: () => {} }
  client.on("+node", (node: Redis) => watchConnection(node, nodeEvents))
  for (const node of client.nodes()) watchConnection(node, nodeEvents)
  client.on("error", (error: Error) => events.failed(error))
  client.on("node error", (error: Error, node: unknown) => {
    if (events.nodeFailed === undefined) events.failed(error)
    else events.nodeFailed(error, String(node))
  })
}

/** The connection's last failure while it is not ready (socket, TLS handshake, AUTH refused, …). */
export const lastFailure = (client: object): Error | undefined => connectionErrors.get(client)

/**
 * Routes one connection's events to `events`: its 'error' events, and the refusals ioredis would print (INFO
 * refused: ioredis skips its ready check; AUTH with a password the server does not need). Every connection the
 * cache opens goes through here, so no [ioredis] line ever reaches the console.
 */
export const watchConnection = (connection: Redis, events: Events): void => {
  if (eventsOf.has(connection)) return
  eventsOf.set(connection, events)
  connection.on("error", (error: Error) => events.failed(error))
  intercept(connection, "info", (error) =>
    /^NOPERM/.test(error.message)
      ? `Redis refused INFO to the cache's user (${error.message}): ioredis skips its ready check (whether Redis ` +
        "is still loading its data set). Grant the user +info to keep it"
      : undefined, "")
  const authNotice = (error: Error) =>
    authNotices.test(error.message) ? `Redis said of the cache's credentials: ${error.message}` : undefined
  intercept(connection, "auth", authNotice, "OK")
  intercept(connection, "hello", authNotice, "OK")
}

/**
 * A client for the cache, closed with the scope by a release that cannot hang. Building waits until the client is
 * ready for at most `commandTimeout`, or not at all: the layer must build while Redis is down.
 *
 * A database the server does not have (`SELECT` refused: ioredis would go on in database 0) closes the client for
 * good; when that is known while the layer is built, the build fails with InvalidData at `dbPath`.
 */
export const acquire = <C extends Redis | Cluster>(
  connect: () => C,
  options: {
    readonly commandTimeout: number
    readonly dbPath?: ReadonlyArray<string> | undefined
    readonly events: Events
  }
): Effect.Effect<C, ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    let refusedDb: Error | undefined
    let onRefusedDb: (() => void) | undefined
    const { events } = options
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = connect()
        const remember = (error: Error) => {
          if (!(error instanceof Error)) return
          connectionErrors.set(client, error)
          events.failed(error)
        }
        client.on("ready", () => {
          if (connectionErrors.delete(client)) events.recovered()
        })
        watchClient(client, { ...events, failed: remember })
        client.on("error", (error: Error) => {
          if (/DB index is out of range/i.test(error?.message ?? "")) {
            refusedDb = error
            client.disconnect()
            onRefusedDb?.()
          }
        })
        return client
      }),
      (client) =>
        Effect.tryPromise(() => client.quit()).pipe(
          Effect.interruptible,
          Effect.timeoutOption(Duration.seconds(1)),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => client.disconnect()))
        )
    )
    yield* Effect.async<void>((resume) => {
      if (client.status === "ready") return resume(Effect.void)
      const done = () => resume(Effect.void)
      client.once("ready", done)
      onRefusedDb = done
      return Effect.sync(() => {
        client.off("ready", done)
        onRefusedDb = undefined
      })
    }).pipe(Effect.timeoutOption(Duration.millis(options.commandTimeout)))
    if (refusedDb !== undefined) {
      return yield* invalid(options.dbPath ?? ["redis", "db"], `the server refused the database: ${refusedDb.message}`)
    }
    return client
  })

/** The plain value of a setting that may be a secret. */
export const reveal = (secret: string | Redacted.Redacted): string =>
  Redacted.isRedacted(secret) ? Redacted.value(secret) as string : secret
