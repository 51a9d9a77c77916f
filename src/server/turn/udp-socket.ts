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
 * When the optional native data path is built ({@link nativeUdpRelay}), the sockets are
 * native instead, and ChannelData on bound channels of UDP clients is relayed in C
 * through the routes that {@link TurnUdpSocket.addChannelRoute} installs; everything
 * else reaches the same JavaScript listener as with udx-native.
 *
 * @module
 */

import UDX from 'udx-native'
import type { AddressFamily } from '../../stun/address.js'
import { nativeUdpRelay, type NativeSocketHandle } from './native-udp-relay.js'

/** Sender of a received datagram. */
export interface UdpRemote {
  /** IP address text (as udx-native gives it: IPv4 dotted, IPv6 compressed). */
  host: string
  /** UDP port. */
  port: number
  /** 4 or 6. */
  family: 4 | 6
}

/** A transport address in the text form of {@link UdpRemote}. */
export interface UdpRemoteAddress {
  /** IP address text. */
  host: string
  /** UDP port. */
  port: number
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

/** What a socket faces: clients (a listening socket) or peers (a relay socket). */
export type TurnUdpSocketRole = 'listener' | 'relay'

/** Counters of the native fast path through a listening socket (see {@link TurnUdpSocket.takeFastPathStats}). */
export interface FastPathStats {
  /** ChannelData packets relayed to peers. */
  packetsToPeers: number
  /** Their data bytes. */
  bytesToPeers: number
  /** Peer datagrams relayed to clients as ChannelData. */
  packetsFromPeers: number
  /** Their data bytes. */
  bytesFromPeers: number
  /** Packets the fast path could not send (kernel buffer full). */
  droppedPackets: number
}

/** A bound UDP socket of the TURN data path. */
export class TurnUdpSocket {
  /** The bound IP. */
  readonly host: string
  /** The bound port. */
  readonly port: number
  /** Address family of the bound IP. */
  readonly family: AddressFamily
  readonly #socket: UDX.UDXSocket | undefined
  readonly #native: NativeSocketHandle | undefined
  #listener: UdpMessageListener | undefined
  #closed: Promise<void> | undefined

  private constructor(backend: { socket?: UDX.UDXSocket; native?: NativeSocketHandle }, host: string, port: number) {
    this.#socket = backend.socket
    this.#native = backend.native
    this.host = host
    this.port = port
    this.family = host.includes(':') ? 'IPv6' : 'IPv4'
  }

  /** Whether packets of bound channels can be relayed natively through this socket. */
  get native(): boolean {
    return this.#native !== undefined
  }

  /**
   * Binds `host:port` (port 0: any free port), IPv6 sockets IPv6-only, without
   * SO_REUSEADDR (a port of the relay range is never shared), with kernel buffers of
   * `bufferBytes` (capped by `net.core.rmem_max`/`wmem_max`): large buffers ride out
   * short pauses of the event loop without dropping datagrams.
   *
   * @throws UdpBindError (synchronously) when the address cannot be bound.
   */
  static bind(host: string, port: number, bufferBytes: number, role: TurnUdpSocketRole = 'relay'): TurnUdpSocket {
    const addon = nativeUdpRelay
    if (addon !== undefined) {
      let self: TurnUdpSocket | undefined
      const native = addon.create((data, fromHost, fromPort, family) => {
        if (self !== undefined) self.#listener?.(data, { host: fromHost, port: fromPort, family })
      }, role === 'listener')
      let bound: number
      try {
        bound = addon.bind(native, host, port, bufferBytes)
      } catch (err) {
        addon.close(native, () => {})
        throw err as UdpBindError
      }
      self = new TurnUdpSocket({ native }, host, bound)
      return self
    }
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
    return new TurnUdpSocket({ socket }, host, bound?.port ?? port)
  }

  /** Sets the one listener of received datagrams (replacing the previous one). */
  onMessage(listener: UdpMessageListener): void {
    if (this.#listener !== undefined) this.#socket?.off('message', this.#listener)
    this.#listener = listener
    this.#socket?.on('message', listener)
  }

  /** Removes the listener set by {@link onMessage}, if it is `listener`. */
  offMessage(listener: UdpMessageListener): void {
    if (this.#listener !== listener) return
    this.#socket?.off('message', listener)
    this.#listener = undefined
  }

  /**
   * Installs a native route for a channel bound by a UDP client of this listening
   * socket: ChannelData from `client` on `channel` goes to `peer` from `relay`, and
   * datagrams from `peer` to `relay` go to `client` as ChannelData, for `ttlMs`.
   * Returns the route's id, or 0 when either socket is not native (or closed).
   */
  addChannelRoute(client: UdpRemoteAddress, channel: number, relay: TurnUdpSocket, peer: UdpRemoteAddress, ttlMs: number): number {
    const addon = nativeUdpRelay
    if (addon === undefined || this.#native === undefined || relay.#native === undefined) return 0
    if (this.#closed !== undefined || relay.#closed !== undefined) return 0
    return addon.addRoute(this.#native, client.host, client.port, channel, relay.#native, peer.host, peer.port, ttlMs)
  }

  /** Sets the remaining lifetime of a route of {@link addChannelRoute}. */
  static refreshChannelRoute(id: number, ttlMs: number): void {
    nativeUdpRelay?.setRouteTtl(id, ttlMs)
  }

  /** Removes a route of {@link addChannelRoute} (before either of its sockets closes). */
  static removeChannelRoute(id: number): void {
    nativeUdpRelay?.removeRoute(id)
  }

  /** Counters of the native fast path through this listening socket since the last call. */
  takeFastPathStats(): FastPathStats | undefined {
    if (nativeUdpRelay === undefined || this.#native === undefined) return undefined
    const [packetsToPeers, bytesToPeers, packetsFromPeers, bytesFromPeers, droppedPackets] = nativeUdpRelay.takeStats(this.#native)
    return { packetsToPeers, bytesToPeers, packetsFromPeers, bytesFromPeers, droppedPackets }
  }

  /**
   * Queues `data` to `host:port` (an IP literal of the socket's family). Returns false
   * when the socket is closed or the address is refused; delivery is never confirmed
   * (UDP). `data` must stay unchanged after the call.
   */
  send(data: Uint8Array, port: number, host: string): boolean {
    if (this.#closed !== undefined) return false
    if (this.#native !== undefined) return (nativeUdpRelay as NonNullable<typeof nativeUdpRelay>).send(this.#native, data, port, host)
    try {
      ;(this.#socket as UDX.UDXSocket).trySend(data, port, host)
      return true
    } catch {
      return false
    }
  }

  /** Closes the socket (idempotent); resolves once it is closed. */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      if (this.#listener !== undefined) this.#socket?.off('message', this.#listener)
      this.#listener = undefined
      const native = this.#native
      if (native !== undefined) {
        this.#closed = new Promise((resolve) => (nativeUdpRelay as NonNullable<typeof nativeUdpRelay>).close(native, resolve))
      } else {
        this.#closed = (this.#socket as UDX.UDXSocket).close().then(
          () => {},
          () => {},
        )
      }
    }
    return this.#closed
  }
}
