/**
 * The relay shim: how a udx-native stream runs over a TURN allocation.
 *
 * udx-native streams send straight from their socket and cannot add TURN framing, so
 * the side whose *local* candidate is relayed runs its stream on a second udx socket
 * bound to 127.0.0.1 whose remote is a local proxy socket; the proxy wraps each
 * datagram for the relay (ChannelData on the channel bound to the peer) and hands what
 * the peer sends through the relay back to the stream socket:
 *
 * ```text
 * udx stream ─▶ stream socket 127.0.0.1:a ─▶ proxy 127.0.0.1:b ─▶ TURN (ChannelData) ─▶ peer
 * udx stream ◀─ stream socket ◀─ proxy ◀─ TURN (ChannelData / Data indication) ◀─ peer
 * ```
 *
 * STUN from the peer (its consent checks) is left to the ICE agent. A side whose
 * *remote* candidate is relayed needs no shim: it sends to the relayed address from
 * its own socket.
 *
 * @module
 */

import { createSocket, type Socket as DgramSocket } from 'node:dgram'
import { InvalidArgumentError, SocketClosedError } from '../errors.js'
import { normalizeIp } from '../stun/address.js'
import { isStunMessage } from '../stun/classify.js'
import { PeerSocket } from '../transport/peer-socket.js'
import type { TurnRelayEndpoint } from './turn-relay-endpoint.js'

const LOOPBACK = '127.0.0.1'
/** How long a closing shim keeps relaying after its streams closed (their last packets). */
const LAST_PACKET_LINGER_MS = 100

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Counters of a {@link TurnRelayShim}. */
export interface TurnRelayShimStats {
  /** Datagrams from the stream sent through the relay. */
  sent: number
  /** Datagrams from the peer handed to the stream. */
  received: number
}

/**
 * A stream socket and its proxy for one relay (see the module notes). Open it before it
 * is needed ({@link TurnRelayShim.open} binds two loopback sockets), then
 * {@link TurnRelayShim.connect} it to the peer's address synchronously when the pair is
 * selected, and open the secure connection on {@link TurnRelayShim.socket} toward
 * {@link TurnRelayShim.proxyAddress}.
 *
 * @example
 * ```ts
 * const shim = await TurnRelayShim.open(relay)
 * shim.connect({ host: remote.address, port: remote.port })
 * const secure = await openSecureConnection({ socket: shim.socket, remote: shim.proxyAddress, … })
 * ```
 */
export class TurnRelayShim {
  /** The udx socket the stream runs on (bound to 127.0.0.1). */
  readonly socket: PeerSocket
  /** The relay the datagrams go through. */
  readonly relay: TurnRelayEndpoint
  readonly #proxy: DgramSocket
  readonly #proxyPort: number
  readonly #stats: TurnRelayShimStats = { sent: 0, received: 0 }
  #peer: { host: string; port: number } | undefined
  #unsubscribe: (() => void) | undefined
  #closing: Promise<void> | undefined

  private constructor(relay: TurnRelayEndpoint, socket: PeerSocket, proxy: DgramSocket) {
    this.relay = relay
    this.socket = socket
    this.#proxy = proxy
    this.#proxyPort = proxy.address().port
    proxy.on('message', (data, from) => {
      const peer = this.#peer
      // Only the stream socket may use the relay through the proxy.
      if (peer === undefined || from.port !== this.socket.port || from.address !== LOOPBACK) return
      this.#stats.sent++
      relay.send(data, peer.port, peer.host)
    })
    proxy.on('error', () => {})
  }

  /**
   * Binds the stream socket and the proxy (both on 127.0.0.1, ports chosen by the OS).
   * With `sibling` (the peer's socket) the stream socket shares its udx-native instance,
   * so a stream can later move between the relay and a direct path (`changeRemote`);
   * stream ids must then come from `sibling.allocateStreamId()`.
   *
   * @throws InvalidArgumentError (rejects) without an open relay; `SocketBindError` when a socket cannot be bound.
   */
  static async open(relay: TurnRelayEndpoint, options: { sibling?: PeerSocket } = {}): Promise<TurnRelayShim> {
    if (relay === null || typeof relay !== 'object' || typeof relay.onMessage !== 'function') throw new InvalidArgumentError('TurnRelayShim needs a TurnRelayEndpoint')
    if (relay.closed) throw new SocketClosedError('The relay is closed')
    const socket = options.sibling === undefined ? await PeerSocket.bind({ host: LOOPBACK }) : await options.sibling.bindSibling({ host: LOOPBACK })
    const proxy = createSocket('udp4')
    try {
      await new Promise<void>((resolve, reject) => {
        proxy.once('error', reject)
        proxy.bind(0, LOOPBACK, () => {
          proxy.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      await socket.close()
      proxy.close()
      throw err
    }
    return new TurnRelayShim(relay, socket, proxy)
  }

  /** Where the stream's remote is: the proxy. */
  get proxyAddress(): { host: string; port: number } {
    return { host: LOOPBACK, port: this.#proxyPort }
  }

  /** The peer the shim relays to, once connected. */
  get peer(): { host: string; port: number } | undefined {
    return this.#peer === undefined ? undefined : { ...this.#peer }
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<TurnRelayShimStats> {
    return { ...this.#stats }
  }

  /**
   * Relays between the stream socket and `peer` (the selected remote candidate) from now
   * on, and binds a TURN channel to it in the background. Synchronous, so the stream can
   * listen before the peer's first packet comes. May be called again to move to another
   * peer address.
   */
  connect(peer: { host: string; port: number }): void {
    if (this.#closing !== undefined) throw new SocketClosedError('The relay shim is closed')
    const host = normalizeIp(peer.host)
    if (host === undefined || !Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
      throw new InvalidArgumentError(`peer must be { host: IP, port }, got ${JSON.stringify(peer)}`)
    }
    this.#peer = { host, port: peer.port }
    this.#unsubscribe ??= this.relay.onMessage((data, from) => {
      const target = this.#peer
      if (target === undefined || from.port !== target.port || normalizeIp(from.host) !== target.host) return
      if (isStunMessage(data)) return // consent checks: the ICE agent's
      this.#stats.received++
      this.#proxy.send(data, this.socket.port, LOOPBACK)
    })
    void this.relay.bindChannel(this.#peer)
  }

  /**
   * Closes both loopback sockets; not the relay. Streams still open on the stream socket
   * get up to `grace` ms to close by themselves first, so their last packets (FIN, acks,
   * the go-away's answer) still pass through the proxy; then they are destroyed.
   * Idempotent.
   */
  close(options: { grace?: number } = {}): Promise<void> {
    const grace = options.grace ?? 0
    this.#closing ??= (async () => {
      if (grace > 0) {
        const deadline = performance.now() + grace
        while (this.socket.streamCount > 0 && performance.now() < deadline) await sleep(20)
        // A stream's last packet (its destroy or final ack) may still be on its way to the proxy.
        await sleep(Math.min(LAST_PACKET_LINGER_MS, grace))
      }
      this.#unsubscribe?.()
      this.#peer = undefined
      await new Promise<void>((resolve) => {
        try {
          this.#proxy.close(() => resolve())
        } catch {
          resolve()
        }
      })
      await this.socket.close()
    })()
    return this.#closing
  }
}
