/**
 * A TURN allocation seen as a datagram socket: what the ICE agent sends from a relayed
 * candidate (RFC 8445 §5.1.1.2: the relayed candidate is its own base, and checks from
 * it go through the relay) and what the relay shim carries the data stream over.
 *
 * Sending to a peer whose IP has no permission yet installs one first (RFC 8656 §9) and
 * holds the datagrams meanwhile; {@link TurnRelayEndpoint.permit} installs permissions
 * ahead of time (for every remote candidate, before the checks go out).
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js'
import type { TurnTransport } from '../server-spec.js'
import type { TransportAddress } from '../stun/address.js'
import { normalizeIp } from '../stun/address.js'
import type { DatagramEndpoint, DatagramListener } from '../stun/datagram-endpoint.js'
import type { TurnClient } from './turn-client.js'
import type { TurnServerAddress } from './turn-transport.js'

/**
 * Datagrams held per peer IP while its permission is being installed.
 *
 * @example
 * ```ts
 * import { MAX_HELD_DATAGRAMS, TurnRelayEndpoint } from 'peerlink'
 *
 * const relay = new TurnRelayEndpoint({ client })   // an allocated TurnClient
 * // Sends to a peer without a permission yet are held (up to MAX_HELD_DATAGRAMS = 32 per peer IP)
 * // until CreatePermission succeeds, then sent in order.
 * relay.send(check, 40000, '198.51.100.7')
 * ```
 */
export const MAX_HELD_DATAGRAMS = 32

/** Options of {@link TurnRelayEndpoint}. */
export interface TurnRelayEndpointOptions {
  /** An allocated client ({@link TurnClient.allocate} resolved); the endpoint owns it from now on. */
  client: TurnClient
  /**
   * The server as configured (a URI), for diagnostics.
   * @default `turn:HOST:PORT?transport=…` of the client's connection
   */
  url?: string
}

/** The IP text a permission is keyed by: canonical, IPv4-mapped IPv6 unwrapped. */
function peerIp(host: string): string | undefined {
  const lower = host.toLowerCase()
  const unwrapped = lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower
  return normalizeIp(unwrapped)
}

/**
 * An allocated TURN relay as a {@link DatagramEndpoint}: `send` goes out from the
 * relayed address, `onMessage` delivers what peers sent to it, `localAddress` is the
 * relayed address.
 *
 * @example
 * ```ts
 * import { TurnClient, TurnRelayEndpoint } from 'peerlink'
 *
 * const client = await TurnClient.connect({ server, endpoint: peerSocket, credentials })
 * await client.allocate()
 * const relay = new TurnRelayEndpoint({ client })
 * relay.permit('198.51.100.7')
 * relay.send(check, 40000, '198.51.100.7')
 * ```
 */
export class TurnRelayEndpoint implements DatagramEndpoint {
  /** The TURN client (allocated). */
  readonly client: TurnClient
  /** The server's address. */
  readonly server: TurnServerAddress
  /** The transport to the server. */
  readonly transport: TurnTransport
  /** The server as configured. */
  readonly url: string
  /** The relayed transport address. */
  readonly relayed: TransportAddress
  readonly #permitted = new Set<string>()
  readonly #pending = new Map<string, Array<{ data: Uint8Array; port: number }>>()
  #closing: Promise<void> | undefined

  constructor(options: TurnRelayEndpointOptions) {
    const client = options?.client
    if (client === undefined || client === null || typeof client.send !== 'function') throw new InvalidArgumentError('TurnRelayEndpoint needs a TurnClient')
    const relayed = client.relayedAddress
    if (relayed === undefined || client.state !== 'allocated') throw new InvalidArgumentError('TurnRelayEndpoint needs an allocated TurnClient')
    this.client = client
    this.relayed = relayed
    this.server = { ...client.connection.server }
    this.transport = client.connection.transport
    const host = this.server.host.includes(':') ? `[${this.server.host}]` : this.server.host
    this.url = options.url ?? (this.transport === 'tls' ? `turns:${host}:${this.server.port}` : `turn:${host}:${this.server.port}?transport=${this.transport}`)
  }

  /** Whether the relay is closed (by {@link TurnRelayEndpoint.close} or lost). */
  get closed(): boolean {
    return this.#closing !== undefined || this.client.state === 'closed'
  }

  /**
   * Installs a permission for `host` (an IP literal) unless there is one or it is being
   * installed. Addresses of the other family, and permissions the server refuses (e.g.
   * 403 for addresses it does not relay to), are ignored: checks to them simply fail.
   */
  permit(host: string): void {
    const ip = peerIp(host)
    if (ip === undefined || this.closed || this.#permitted.has(ip) || this.#pending.has(ip)) return
    if (ip.includes(':') !== (this.relayed.family === 'IPv6')) return
    this.#pending.set(ip, [])
    // RFC 8656 §9.1: the server relays to and from a peer only once a permission for its IP exists.
    this.client.createPermission(ip).then(
      () => {
        const held = this.#pending.get(ip) ?? []
        this.#pending.delete(ip)
        this.#permitted.add(ip)
        for (const { data, port } of held) this.#sendNow(data, port, ip)
      },
      () => {
        this.#pending.delete(ip)
      },
    )
  }

  /** Sends one datagram to a peer through the relay (after its permission, see {@link TurnRelayEndpoint.permit}). */
  send(data: Uint8Array, port: number, host: string): void {
    const ip = peerIp(host)
    if (ip === undefined || this.closed) return
    if (this.#permitted.has(ip)) {
      this.#sendNow(data, port, ip)
      return
    }
    this.permit(ip)
    const held = this.#pending.get(ip)
    if (held !== undefined && held.length < MAX_HELD_DATAGRAMS) held.push({ data, port })
  }

  #sendNow(data: Uint8Array, port: number, ip: string): void {
    try {
      this.client.send(data, { host: ip, port })
    } catch {
      // A closed relay: the datagram is lost, as on UDP.
    }
  }

  /** Subscribes to datagrams peers sent to the relayed address; returns the unsubscribe function. */
  onMessage(listener: DatagramListener): () => void {
    return this.client.onData((data, peer) => listener(data, { host: peer.host, port: peer.port }))
  }

  /** The relayed address (the candidate's address and base). */
  localAddress(): TransportAddress {
    return { ...this.relayed }
  }

  /**
   * Binds a channel to `peer` (RFC 8656 §12): from then on datagrams to it go as
   * ChannelData (4 bytes of overhead instead of 36). Failures are ignored (Send
   * indications keep working).
   */
  bindChannel(peer: { host: string; port: number }): Promise<void> {
    const ip = peerIp(peer.host)
    if (ip === undefined || this.closed) return Promise.resolve()
    return this.client.bindChannel({ host: ip, port: peer.port }).then(
      () => {
        this.#permitted.add(ip) // RFC 8656 §12.2: a channel binding installs a permission too
      },
      () => {},
    )
  }

  /** Deallocates and closes the link to the server (never the peer's UDP socket). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.client.close().catch(() => {})
    this.#pending.clear()
    return this.#closing
  }
}
