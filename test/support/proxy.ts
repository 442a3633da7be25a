/**
 * A TCP proxy to Redis for the near-cache reconnect tests of both packages (test/nearCacheReconnect.test.ts,
 * packages/effect4/test/nearCache.test.ts): it can cut every connection, and hold back the next SUBSCRIBE until
 * released.
 */
import { createServer, Socket } from "node:net"

/** A TCP proxy to Redis that can cut every connection, and hold back the next SUBSCRIBE until released. */
export const makeProxy = (targetPort: number) =>
  new Promise<{
    port: number
    cut: () => void
    hold: () => { held: Promise<void>; release: () => void }
    close: () => Promise<void>
  }>((resolve) => {
    const sockets = new Set<Socket>()
    let holding: { onHeld: () => void; released: Promise<void> } | undefined
    const server = createServer((client) => {
      const upstream = new Socket()
      upstream.connect(targetPort, "127.0.0.1")
      sockets.add(client)
      sockets.add(upstream)
      let queue: Promise<void> = Promise.resolve()
      client.on("data", (chunk) => {
        if (holding !== undefined && /subscribe/i.test(chunk.toString())) {
          const h = holding
          holding = undefined
          h.onHeld()
          queue = queue.then(() => h.released)
        }
        queue = queue.then(() => {
          if (!upstream.destroyed) upstream.write(chunk)
        })
      })
      upstream.on("data", (chunk) => {
        if (!client.destroyed) client.write(chunk)
      })
      const close = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      for (const s of [client, upstream]) {
        s.on("close", close)
        s.on("error", close)
      }
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolve({
        port: typeof address === "object" && address !== null ? address.port : 0,
        cut: () => {
          for (const s of sockets) s.destroy()
        },
        hold: () => {
          let onHeld!: () => void
          let release!: () => void
          const held = new Promise<void>((r) => (onHeld = r))
          const released = new Promise<void>((r) => (release = r))
          holding = { onHeld, released }
          return { held, release }
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy()
            server.close(() => r())
          })
      })
    })
  })
