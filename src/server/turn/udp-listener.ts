/**
 * TURN over UDP: one socket per listening IP; each datagram is one STUN message or one
 * ChannelData message (RFC 8656 §12.5: padding optional). A client 5-tuple is the
 * datagram's source on this socket.
 *
 * @module
 */

import { SocketBindError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import { ClientLink } from './client-link.js'
import type { TurnRequestHandler } from './turn-request-handler.js'
import type { TurnServerStats } from './turn-server-stats.js'
import { TurnUdpSocket, type UdpRemote } from './udp-socket.js'

/** Kernel buffers asked for on listening sockets, which carry every client's traffic. */
export const LISTENER_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

/** A client 5-tuple over UDP. */
class UdpClientLink extends ClientLink {
  readonly #listener: UdpListener
  readonly #socket: TurnUdpSocket

  constructor(listener: UdpListener, socket: TurnUdpSocket, from: UdpRemote) {
    super('udp', { family: from.family === 6 ? 'IPv6' : 'IPv4', host: from.host, port: from.port }, listener.address)
    this.#listener = listener
    this.#socket = socket
  }

  protected onStateChange(): void {
    this.#listener.track(this)
  }

  override fastPathSocket(): TurnUdpSocket | undefined {
    return this.#socket.native ? this.#socket : undefined
  }

  sendMessage(message: Uint8Array): void {
    this.#socket.send(message, this.client.port, this.client.host)
  }

  sendData(frame: Buffer): boolean {
    return this.#socket.send(frame, this.client.port, this.client.host)
  }
}

/** The UDP socket of one listening IP. */
export class UdpListener {
  /** The bound address. */
  readonly address: TransportAddress
  readonly #socket: TurnUdpSocket
  readonly #handler: TurnRequestHandler
  readonly #stats: TurnServerStats
  /** Links with an allocation (or an Allocate in progress): by port, then by IP. */
  readonly #links = new Map<number, Map<string, UdpClientLink>>()

  private constructor(socket: TurnUdpSocket, handler: TurnRequestHandler, stats: TurnServerStats) {
    this.address = { family: socket.family, host: socket.host, port: socket.port }
    this.#socket = socket
    this.#handler = handler
    this.#stats = stats
    socket.onMessage(this.#onMessage)
  }

  /**
   * Binds a UDP socket on `host:port`.
   *
   * @throws SocketBindError if the address cannot be bound (`cause.code` tells why).
   */
  static async bind(host: string, port: number, handler: TurnRequestHandler, stats: TurnServerStats): Promise<UdpListener> {
    let socket: TurnUdpSocket
    try {
      socket = TurnUdpSocket.bind(host, port, LISTENER_SOCKET_BUFFER_BYTES, 'listener')
    } catch (err) {
      throw new SocketBindError(`Cannot listen on UDP ${host}:${port}: ${(err as Error).message}`, { cause: err })
    }
    return new UdpListener(socket, handler, stats)
  }

  /** Registers or forgets a link as its allocation state changes. */
  track(link: UdpClientLink): void {
    const { port, host } = link.client
    if (link.allocation !== undefined || link.allocating) {
      let byIp = this.#links.get(port)
      if (byIp === undefined) {
        byIp = new Map()
        this.#links.set(port, byIp)
      }
      byIp.set(host, link)
    } else {
      const byIp = this.#links.get(port)
      if (byIp?.get(host) === link) {
        byIp.delete(host)
        if (byIp.size === 0) this.#links.delete(port)
      }
    }
  }

  readonly #onMessage = (data: Buffer, rinfo: UdpRemote): void => {
    const first = data[0]
    if (first === undefined) {
      this.#stats.malformed++
      return
    }
    // RFC 8656 §12: the first two bits tell STUN (00) from ChannelData (01).
    if ((first & 0xc0) === 0x40) {
      const allocation = this.#links.get(rinfo.port)?.get(rinfo.host)?.allocation
      if (allocation === undefined || data.length < 4) this.#stats.droppedPackets++
      else allocation.onChannelData(data)
      return
    }
    if (first > 0x3f) {
      this.#stats.malformed++
      return
    }
    const link = this.#links.get(rinfo.port)?.get(rinfo.host) ?? new UdpClientLink(this, this.#socket, rinfo)
    this.#handler.onStunFrame(link, data)
  }

  /** Adds what the native fast path relayed since the last call to the server's counters. */
  foldFastPathStats(): void {
    const fast = this.#socket.takeFastPathStats()
    if (fast === undefined) return
    const stats = this.#stats
    stats.packetsToPeers += fast.packetsToPeers
    stats.bytesToPeers += fast.bytesToPeers
    stats.packetsFromPeers += fast.packetsFromPeers
    stats.bytesFromPeers += fast.bytesFromPeers
    stats.droppedPackets += fast.droppedPackets
  }

  /** Closes the socket. */
  close(): Promise<void> {
    this.foldFastPathStats()
    this.#links.clear()
    return this.#socket.close()
  }
}
