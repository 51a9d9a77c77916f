/**
 * One public TCP port of a device: a listening socket on each of the server's
 * addresses, accepting connections half-open and paused, so that nothing is read from
 * a connection before the device has claimed it.
 *
 * @module
 */
import net, { isIP } from 'node:net'
import { SocketBindError } from '../../errors.js'

/** A public port, bound on every listening address. */
export class PublicPort {
  /** The port number. */
  readonly port: number
  /** The device's local port it leads to. */
  local: number
  readonly #servers: net.Server[]

  private constructor(port: number, local: number, servers: net.Server[]) {
    this.port = port
    this.local = local
    this.#servers = servers
  }

  /**
   * Binds `port` on every address in `hosts`.
   *
   * @throws {@link SocketBindError} (rejects) when the port is taken on any of them (none stays bound).
   */
  static async bind(hosts: readonly string[], port: number, local: number, onConnection: (socket: net.Socket, publicPort: PublicPort) => void): Promise<PublicPort> {
    const servers: net.Server[] = []
    let self: PublicPort | undefined
    try {
      for (const host of hosts) {
        const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true })
        server.on('connection', (socket) => {
          if (self === undefined) socket.destroy()
          else onConnection(socket, self)
        })
        await listen(server, host, port)
        servers.push(server)
      }
    } catch (err) {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
      throw err
    }
    self = new PublicPort(port, local, servers)
    return self
  }

  /** Stops listening (connections already accepted are not touched). */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'the address is not local' : err.message
      reject(new SocketBindError(`Cannot listen on TCP ${host}:${port}: ${why}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: isIP(host) === 6, exclusive: true }, () => {
      server.off('error', onError)
      server.on('error', () => {})
      resolve()
    })
  })
}
