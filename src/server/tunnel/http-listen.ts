/**
 * Binding the tunnel server's HTTP(S) listeners: one server per listening address, all
 * on the same port number (the first one's when the port is 0).
 *
 * @module
 */
import type http from 'node:http'
import { isIP } from 'node:net'
import { AbortError, SocketBindError } from '../../errors.js'

/** A bound listener and its address. */
export interface BoundListener<S extends http.Server> {
  /** The server. */
  server: S
  /** The IP address it is bound to. */
  host: string
  /** The port it is bound to. */
  port: number
}

/**
 * Binds a server made by `create` on every host, at `port` (0: the port the first one got).
 *
 * @throws {@link SocketBindError} (rejects) when a port is taken or an address is not local; nothing stays bound.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 */
export async function listenAll<S extends http.Server>(hosts: readonly string[], port: number, create: () => S, signal: AbortSignal | undefined): Promise<Array<BoundListener<S>>> {
  const bound: Array<BoundListener<S>> = []
  try {
    let next = port
    for (const host of hosts) {
      const server = create()
      const listener = await listenOne(server, host, next, signal)
      bound.push(listener)
      next = listener.port
    }
    return bound
  } catch (err) {
    await closeAll(bound)
    throw err
  }
}

/** Closes listeners (and drops their idle connections). */
export async function closeAll(listeners: ReadonlyArray<BoundListener<http.Server>>): Promise<void> {
  const closed = listeners.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())))
  for (const { server } of listeners) server.closeAllConnections()
  await Promise.all(closed)
}

function listenOne<S extends http.Server>(server: S, host: string, port: number, signal: AbortSignal | undefined): Promise<BoundListener<S>> {
  return new Promise<BoundListener<S>>((resolve, reject) => {
    const onAbort = () => {
      server.off('error', onError)
      server.close()
      reject(new AbortError(undefined, { cause: signal?.reason }))
    }
    const onError = (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort)
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'the address is not local' : err.code === 'EACCES' ? 'permission denied' : err.message
      reject(new SocketBindError(`Cannot listen on TCP ${host}:${port}: ${why}`, { cause: err }))
    }
    if (signal?.aborted === true) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: isIP(host) === 6 }, () => {
      server.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
      server.on('error', () => {})
      const address = server.address() as { address: string; port: number }
      resolve({ server, host: address.address, port: address.port })
    })
  })
}
