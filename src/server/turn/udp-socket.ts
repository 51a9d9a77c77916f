/**
 * The UDP sockets of the TURN server's data path (listening sockets and relay sockets),
 * on udx-native rather than `node:dgram`.
 *
 * Why: relaying is one receive and one send per packet, and Node's dgram costs about
 * 12 µs of CPU per forwarded datagram on the reference machine against about 8.5 µs
 * for udx-native (`node bench/udp-forward.mjs`): dgram allocates a 64 KiB buffer per
 * receive, builds the sender's address object in C++ and goes through a lookup and a
 * send-request object per send, where udx-native receives into a shared slab and
 * queues sends that it flushes together when the socket is writable. A socket with no
 * udx stream delivers every datagram as a message, including ones that look like udx
 * packets (peerlink peers relaying their own streams), so nothing is lost to it.
 *
 * Sends are fire-and-forget: the datagram is queued and its buffer must not be changed
 * afterwards (the data path only sends buffers it received or built for that send).
 *
 * @module
 */

import UDX from 'udx-native'
import type { AddressFamily } from '../../stun/address.js'

/** Sender of a received datagram. */
export interface UdpRemote {
  /** IP address text (as udx-native gives it: IPv4 dotted, IPv6 compressed). */
  host: string
  /** UDP port. */
  port: number
  /** 4 or 6. */
  family: 4 | 6
}

/** Receives one datagram. */
export type UdpMessageListener = (data: Buffer, from: UdpRemote) => void

/** An error of {@link TurnUdpSocket.bind}, with the system's `code` (`EADDRINUSE`, …). */
export type UdpBindError = Error & { code?: string }

let sharedUdx: UDX | undefined

/** One udx-native instance serves every socket of the process (it holds no handle itself). */
function udx(): UDX {
  sharedUdx ??= new UDX()
  return sharedUdx
}

/** A bound UDP socket of the TURN data path. */
export class TurnUdpSocket {
  /** The bound IP. */
  readonly host: string
  /** The bound port. */
  readonly port: number
  /** Address family of the bound IP. */
  readonly family: AddressFamily
  readonly #socket: UDX.UDXSocket
  #listener: UdpMessageListener | undefined
  #closed: Promise<void> | undefined

  private constructor(socket: UDX.UDXSocket, host: string, port: number) {
    this.#socket = socket
    this.host = host
    this.port = port
    this.family = host.includes(':') ? 'IPv6' : 'IPv4'
  }

  /**
   * Binds `host:port` (port 0: any free port), IPv6 sockets IPv6-only, without
   * SO_REUSEADDR (a port of the relay range is never shared), with kernel buffers of
   * `bufferBytes` (capped by `net.core.rmem_max`/`wmem_max`): large buffers ride out
   * short pauses of the event loop without dropping datagrams.
   *
   * @throws UdpBindError (synchronously) when the address cannot be bound.
   */
  static bind(host: string, port: number, bufferBytes: number): TurnUdpSocket {
    const socket = udx().createSocket({ ipv6Only: host.includes(':') })
    try {
      socket.bind(port, host)
    } catch (err) {
      void socket.close()
      throw err as UdpBindError
    }
    try {
      socket.setRecvBufferSize(bufferBytes)
      socket.setSendBufferSize(bufferBytes)
    } catch {
      // Best effort: the kernel's defaults still work, with less slack.
    }
    const bound = socket.address()
    return new TurnUdpSocket(socket, host, bound?.port ?? port)
  }

  /** Sets the one listener of received datagrams (replacing the previous one). */
  onMessage(listener: UdpMessageListener): void {
    if (this.#listener !== undefined) this.#socket.off('message', this.#listener)
    this.#listener = listener
    this.#socket.on('message', listener)
  }

  /** Removes the listener set by {@link onMessage}, if it is `listener`. */
  offMessage(listener: UdpMessageListener): void {
    if (this.#listener !== listener) return
    this.#socket.off('message', listener)
    this.#listener = undefined
  }

  /**
   * Queues `data` to `host:port` (an IP literal of the socket's family). Returns false
   * when the socket is closed or the address is refused; delivery is never confirmed
   * (UDP). `data` must stay unchanged after the call.
   */
  send(data: Uint8Array, port: number, host: string): boolean {
    if (this.#closed !== undefined) return false
    try {
      this.#socket.trySend(data, port, host)
      return true
    } catch {
      return false
    }
  }

  /** Closes the socket (idempotent); resolves once it is closed. */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      if (this.#listener !== undefined) this.#socket.off('message', this.#listener)
      this.#listener = undefined
      this.#closed = this.#socket.close().then(
        () => {},
        () => {},
      )
    }
    return this.#closed
  }
}
