/**
 * HTTP by name across a fleet: a request for a device that is online on another server
 * is forwarded (proxied) to that server's HTTP port, which routes it as usual; the
 * forwarding server vouches for the original client's address with a signed hop header
 * (see `docs/tunnel-protocol.md`, "HTTP by name in a fleet").
 *
 * **Hop header** (`FLEET_HOP_HEADER` of `http-proxy.ts`). `X-Peerlink-Tunnel-Hop: v1;SERVER;HOST;PORT;TIME;MAC` where `MAC` is
 * base64url `HMAC-SHA256(fleetKey, "peerlink/tunnel-fleet-hop/v1" ‖ 0 ‖ SERVER ‖ 0 ‖
 * HOST ‖ 0 ‖ PORT ‖ 0 ‖ TIME)`, `TIME` in Unix seconds (accepted within ±60 s) and
 * `fleetKey` the secret of the shared state ({@link TunnelState.fleetKey}). A request
 * carrying a hop header — valid or not — is never forwarded again (no loops); only a
 * valid one is believed about the client's address.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import net, { isIP } from 'node:net'
import type { TunnelAddress } from '../../tunnel/tunnel-messages.js'
import { TunnelOpenError } from './http-proxy.js'
import type { TunnelServerRecord, TunnelState } from './tunnel-state.js'

const HOP_DOMAIN = 'peerlink/tunnel-fleet-hop/v1'
const MAX_SKEW_S = 60
const SERVER_ID = /^[A-Za-z0-9_.-]{1,64}$/
/** How long a read of the fleet registry is reused, in milliseconds. */
const SERVERS_CACHE_MS = 1_000

/** Signs and checks hop headers with the fleet key (see the module notes). */
export class FleetHop {
  readonly #key: Uint8Array
  readonly #serverId: string

  constructor(key: Uint8Array, serverId: string) {
    this.#key = key
    this.#serverId = serverId
  }

  /** The hop header value for a request from `client`, sent by this server. */
  sign(client: TunnelAddress, now = Date.now()): string {
    const time = String(Math.floor(now / 1000))
    return `v1;${this.#serverId};${client.host};${client.port};${time};${this.#mac(this.#serverId, client.host, String(client.port), time).toString('base64url')}`
  }

  /** The client a hop header vouches for, or `undefined` when it is not a valid, fresh header of the fleet. */
  verify(value: string, now = Date.now()): TunnelAddress | undefined {
    if (value.length > 300) return undefined
    const parts = value.split(';')
    if (parts.length !== 6 || parts[0] !== 'v1') return undefined
    const [, server, host, port, time, mac] = parts as [string, string, string, string, string, string]
    if (!SERVER_ID.test(server) || isIP(host) === 0 || !/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || !/^[0-9]{1,12}$/.test(time)) return undefined
    if (Math.abs(Number(time) - now / 1000) > MAX_SKEW_S) return undefined
    const given = Buffer.from(mac, 'base64url')
    const expected = this.#mac(server, host, port, time)
    if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) return undefined
    return { host, port: Number(port) }
  }

  #mac(server: string, host: string, port: string, time: string): Buffer {
    return createHmac('sha256', this.#key).update(`${HOP_DOMAIN}\0${server}\0${host}\0${port}\0${time}`).digest()
  }
}

/** Where a name lives in the fleet. */
export type FleetLocation = { kind: 'remote'; server: TunnelServerRecord } | { kind: 'offline' } | { kind: 'unknown' }

/** Finds the server of a device name that this server does not hold, and connects to its HTTP port. */
export class FleetHttp {
  readonly #state: TunnelState
  readonly #serverId: string
  #servers: { at: number; list: Promise<TunnelServerRecord[]> } | undefined

  constructor(state: TunnelState, serverId: string) {
    this.#state = state
    this.#serverId = serverId
  }

  /** Where `name` lives: online on another live server that serves HTTP, known but offline, or unknown. */
  async locate(name: string): Promise<FleetLocation> {
    const holder = await this.#state.getName(name)
    if (holder === undefined) return { kind: 'unknown' }
    if (holder.server === this.#serverId || holder.expiresAt !== null) return { kind: 'offline' }
    const server = (await this.#liveServers()).find((s) => s.id === holder.server)
    if (server === undefined || server.http === undefined) return { kind: 'offline' }
    return { kind: 'remote', server }
  }

  /**
   * Opens a TCP connection to the HTTP port of `server`.
   *
   * @throws {@link TunnelOpenError} (rejects, `offline`) when it cannot be reached or `signal` fires.
   */
  connect(server: TunnelServerRecord, signal: AbortSignal): Promise<net.Socket> {
    const target = parseHostPort(server.http ?? '')
    if (target === undefined) return Promise.reject(new TunnelOpenError('offline'))
    return new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
      const fail = () => {
        cleanup()
        socket.destroy()
        reject(new TunnelOpenError('offline'))
      }
      const timer = setTimeout(fail, 5_000)
      const cleanup = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', fail)
        socket.off('error', fail)
      }
      if (signal.aborted) return fail()
      signal.addEventListener('abort', fail, { once: true })
      socket.once('error', fail)
      socket.once('connect', () => {
        cleanup()
        socket.on('error', () => {})
        resolve(socket)
      })
    })
  }

  #liveServers(): Promise<TunnelServerRecord[]> {
    const now = performance.now()
    if (this.#servers === undefined || now - this.#servers.at > SERVERS_CACHE_MS) {
      const list = this.#state.listServers()
      this.#servers = { at: now, list }
      list.catch(() => (this.#servers = undefined))
    }
    return this.#servers.list
  }
}

/** `HOST:PORT` (IPv6 in brackets) as host and port, or `undefined`. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65535) return undefined
  return { host: match[1] ?? match[2]!, port }
}
