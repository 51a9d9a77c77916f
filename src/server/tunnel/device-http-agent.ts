/**
 * Keep-alive for the tunnel's HTTP proxy: an `http.Agent` whose connections are
 * tunnelled connections to a device's HTTP service, pooled per device name, so that a
 * browser's or client's next request reuses a connection that is already through the
 * tunnel instead of paying for a new one (an announcement on the control socket, a
 * connection to the local service and a new transfer socket, over `wss://` a TLS
 * handshake as well: most of a small request's cost).
 *
 * A pooled connection is closed after {@link DeviceHttpAgentOptions.idleMs} without a
 * request, sooner when the device's service announces a shorter `Keep-Alive: timeout=`
 * (one second is kept in hand, so the proxy never sends on a connection the service is
 * closing), and at once when the device goes away (its transfer socket closes). At most
 * {@link DeviceHttpAgentOptions.maxIdlePerDevice} idle connections are kept per device:
 * they count against the device's connection limit.
 *
 * The address of the client that caused a pooled connection to be opened is the one
 * the device's announcement carried; each request still carries its own client in
 * `X-Forwarded-For`.
 *
 * @module
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** Options of {@link DeviceHttpAgent}. */
export interface DeviceHttpAgentOptions {
  /**
   * Milliseconds an idle pooled connection is kept.
   * @default 4000
   */
  idleMs?: number
  /**
   * Idle connections kept per device name.
   * @default 8
   */
  maxIdlePerDevice?: number
}

/** What a request gives the agent, beyond `http.request`'s own options. */
export interface DeviceRequestOptions extends http.RequestOptions {
  /** The pool: the device name, plus `@remote` for connections to another server of the fleet. */
  tunnelPool: string
  /** A connection opened for this request, used when the pool has no idle one. */
  tunnelStream: Duplex | undefined
}

const idleTimer = Symbol('peerlink.idleTimer')
type PooledSocket = Socket & { [idleTimer]?: ReturnType<typeof setTimeout> }

/** The agent (see the module's description). */
export class DeviceHttpAgent extends http.Agent {
  readonly #idleMs: number

  constructor(options: DeviceHttpAgentOptions = {}) {
    super({ keepAlive: true, maxFreeSockets: options.maxIdlePerDevice ?? 8, scheduling: 'lifo' })
    this.#idleMs = options.idleMs ?? 4000
  }

  /** Whether `pool` has an idle connection now (then a request needs no new one). */
  hasIdle(pool: string): boolean {
    const free = this.freeSockets[pool]
    return free !== undefined && free.some((socket) => !socket.destroyed)
  }

  /** One pool per device name. */
  override getName(options?: http.ClientRequestArgs): string {
    return (options as DeviceRequestOptions | undefined)?.tunnelPool ?? ''
  }

  /** The connection the request opened; none when it did not (it then fails with 502). */
  override createConnection(options: http.ClientRequestArgs, callback: (err: Error | null, socket?: Duplex) => void): Duplex | undefined {
    const stream = (options as DeviceRequestOptions).tunnelStream
    if (stream === undefined || stream.destroyed) {
      callback(new Error('no tunnelled connection for this request'))
      return undefined
    }
    return stream
  }

  /** Keeps an idle connection (the base class would call `setKeepAlive`/`unref`, which a tunnelled stream has not). */
  override keepSocketAlive(socket: Socket): boolean {
    const pooled = socket as PooledSocket
    let idle = this.#idleMs
    const hint = (socket as Socket & { _httpMessage?: { res?: http.IncomingMessage } })._httpMessage?.res?.headers['keep-alive']
    const seconds = typeof hint === 'string' ? /(?:^|,)\s*timeout=(\d+)/i.exec(hint)?.[1] : undefined
    if (seconds !== undefined) idle = Math.min(idle, Number(seconds) * 1000 - 1000)
    if (idle <= 0) return false
    clearTimeout(pooled[idleTimer])
    pooled[idleTimer] = setTimeout(() => socket.destroy(), idle)
    pooled[idleTimer].unref?.()
    return true
  }

  /** Takes a connection out of the pool for a request. */
  override reuseSocket(socket: Socket, request: http.ClientRequest): void {
    const pooled = socket as PooledSocket
    clearTimeout(pooled[idleTimer])
    pooled[idleTimer] = undefined
    // The base class removes the 'error' listener it added when the connection went
    // idle (it would pile up, one per request, otherwise) and calls `ref()`, which a
    // tunnelled stream has not: give it a no-op one.
    if (typeof (socket as Partial<Socket>).ref !== 'function') (socket as { ref: () => Socket }).ref = () => socket
    super.reuseSocket(socket, request)
  }

  /** Closes every pooled connection. */
  override destroy(): void {
    for (const sockets of Object.values(this.freeSockets)) {
      for (const socket of sockets ?? []) clearTimeout((socket as PooledSocket)[idleTimer])
    }
    super.destroy()
  }
}
