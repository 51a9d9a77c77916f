/**
 * TURN over UDP: one socket per listening IP; each datagram is one STUN message or one
 * ChannelData message (RFC 8656 §12.5: padding optional). A client 5-tuple is the
 * datagram's source on this socket.
 *
 * @module
 */

import type dgram from 'node:dgram'
import { isIP } from 'node:net'
import { SocketBindError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import { ClientLink } from './client-link.js'
import { closeUdpSocket, createUdpSocket } from './relay-port-pool.js'
import type { TurnRequestHandler } from './turn-request-handler.js'
import type { TurnServerStats } from './turn-server-stats.js'

function noop(): void {}

/** Kernel buffers asked for on listening sockets, which carry every client's traffic. */
export const LISTENER_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

/** A client 5-tuple over UDP. */
class UdpClientLink extends ClientLink {
  readonly #listener: UdpListener
  readonly #socket: dgram.Socket

  constructor(listener: UdpListener, socket: dgram.Socket, rinfo: dgram.RemoteInfo) {
    super('udp', { family: rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4', host: rinfo.address, port: rinfo.port }, listener.address)
    this.#listener = listener
    this.#socket = socket
  }

  protected onStateChange(): void {
    this.#listener.track(this)
  }

  sendMessage(message: Uint8Array): void {
    try {
      this.#socket.send(message, this.client.port, this.client.host)
    } catch {
      // the listener is closing
    }
  }

  sendData(frame: Buffer): boolean {
    try {
      this.#socket.send(frame, this.client.port, this.client.host)
      return true
    } catch {
      return false
    }
  }
}

/** The UDP socket of one listening IP. */
export class UdpListener {
  /** The bound address. */
  readonly address: TransportAddress
  readonly #socket: dgram.Socket
  readonly #handler: TurnRequestHandler
  readonly #stats: TurnServerStats
  /** Links with an allocation (or an Allocate in progress): by port, then by IP. */
  readonly #links = new Map<number, Map<string, UdpClientLink>>()

  private constructor(socket: dgram.Socket, handler: TurnRequestHandler, stats: TurnServerStats) {
    const bound = socket.address()
    this.address = { family: bound.family === 'IPv6' ? 'IPv6' : 'IPv4', host: bound.address, port: bound.port }
    this.#socket = socket
    this.#handler = handler
    this.#stats = stats
    socket.on('message', this.#onMessage)
    // A send error (e.g. ICMP unreachable reported on Linux) must not kill the server.
    socket.on('error', noop)
  }

  /**
   * Binds a UDP socket on `host:port`.
   *
   * @throws SocketBindError if the address cannot be bound (`cause.code` tells why).
   */
  static async bind(host: string, port: number, handler: TurnRequestHandler, stats: TurnServerStats): Promise<UdpListener> {
    const socket = createUdpSocket(isIP(host) === 6, LISTENER_SOCKET_BUFFER_BYTES)
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(port, host, () => {
          socket.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      await closeUdpSocket(socket)
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

  readonly #onMessage = (data: Buffer, rinfo: dgram.RemoteInfo): void => {
    const first = data[0]
    if (first === undefined) {
      this.#stats.malformed++
      return
    }
    // RFC 8656 §12: the first two bits tell STUN (00) from ChannelData (01).
    if ((first & 0xc0) === 0x40) {
      const allocation = this.#links.get(rinfo.port)?.get(rinfo.address)?.allocation
      if (allocation === undefined || data.length < 4) this.#stats.droppedPackets++
      else allocation.onChannelData(data)
      return
    }
    if (first > 0x3f) {
      this.#stats.malformed++
      return
    }
    const link = this.#links.get(rinfo.port)?.get(rinfo.address) ?? new UdpClientLink(this, this.#socket, rinfo)
    this.#handler.onStunFrame(link, data)
  }

  /** Closes the socket. */
  close(): Promise<void> {
    this.#socket.off('message', this.#onMessage)
    this.#links.clear()
    return closeUdpSocket(this.#socket)
  }
}
