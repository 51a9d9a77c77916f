/**
 * The minimal datagram socket the STUN client needs, so it runs over a plain
 * `node:dgram` socket (the CLI) as well as over the transport layer's shared udx socket.
 *
 * @module
 */

import type { Socket as DgramSocket, RemoteInfo } from 'node:dgram'
import { InvalidArgumentError } from '../errors.js'
import type { TransportAddress } from './address.js'

/** Where a datagram came from. */
export interface DatagramSource {
  /** Sender IP address. */
  host: string
  /** Sender port. */
  port: number
}

/** Receives every datagram the endpoint gets (STUN or not: listeners filter). */
export type DatagramListener = (data: Uint8Array, from: DatagramSource) => void

/**
 * A datagram socket as the STUN client sees it.
 *
 * @example
 * ```ts
 * import { createUdxEndpoint } from 'peerlink'
 *
 * // a udx-native socket (non-stream datagrams arrive as 'message' events)
 * const endpoint = createUdxEndpoint(udxSocket)
 * ```
 */
export interface DatagramEndpoint {
  /** Sends one datagram; must not throw for ordinary network errors (UDP is lossy). */
  send(data: Uint8Array, port: number, host: string): void
  /** Subscribes to incoming datagrams; returns the unsubscribe function. */
  onMessage(listener: DatagramListener): () => void
  /** The local address the socket is bound to, if known (used to detect "no NAT"). */
  localAddress?(): TransportAddress | undefined
}

function familyName(family: string | number): 'IPv4' | 'IPv6' {
  return family === 'IPv6' || family === 6 ? 'IPv6' : 'IPv4'
}

/**
 * Wraps a bound `node:dgram` socket. Send errors are ignored (a lost datagram is what
 * retransmission is for); sending on a closed socket throws, which the transaction
 * manager reports as `SocketClosedError`.
 *
 * @example
 * ```ts
 * import dgram from 'node:dgram'
 * import { createDgramEndpoint, stunBinding } from 'peerlink'
 *
 * const socket = dgram.createSocket('udp4')
 * socket.bind(0)
 * const { mapped } = await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: 'stun.example.com', port: 3478 } })
 * socket.close()
 * ```
 */
export function createDgramEndpoint(socket: DgramSocket): DatagramEndpoint {
  if (socket === null || typeof socket !== 'object' || typeof socket.send !== 'function') {
    throw new InvalidArgumentError('createDgramEndpoint needs a node:dgram socket')
  }
  return {
    send(data, port, host) {
      socket.send(data, port, host, () => {
        // UDP send errors (e.g. ICMP unreachable reported later) are ignored on purpose.
      })
    },
    onMessage(listener) {
      const handler = (msg: Buffer, rinfo: RemoteInfo): void => listener(msg, { host: rinfo.address, port: rinfo.port })
      socket.on('message', handler)
      return () => socket.off('message', handler)
    },
    localAddress() {
      try {
        const a = socket.address()
        return { family: familyName(a.family), host: a.address, port: a.port }
      } catch {
        return undefined // not bound or already closed
      }
    },
  }
}

/**
 * The part of a udx-native `UDXSocket` that {@link createUdxEndpoint} uses: non-stream
 * datagrams arrive as `'message'` events and are sent with `trySend`.
 */
export interface UdxLikeSocket {
  /** Subscribes to datagrams that belong to no udx stream. */
  on(event: 'message', listener: (buf: Uint8Array, from: { host: string; port: number; family: number }) => void): unknown
  /** Unsubscribes. */
  off(event: 'message', listener: (buf: Uint8Array, from: { host: string; port: number; family: number }) => void): unknown
  /** Sends a datagram without waiting for completion (host must be an IP literal). */
  trySend(buffer: Uint8Array, port: number, host: string): unknown
  /** The bound address (`null` before binding). */
  address(): { host: string; port: number; family: number } | null
}

/**
 * Wraps a udx-native socket (or anything shaped like {@link UdxLikeSocket}).
 *
 * @example
 * ```ts
 * import UDX from 'udx-native'
 * import { createUdxEndpoint, stunBinding } from 'peerlink'
 *
 * const socket = new UDX().createSocket()
 * socket.bind(0, '0.0.0.0')
 * const { mapped } = await stunBinding({ endpoint: createUdxEndpoint(socket), server: { host: '192.0.2.1', port: 3478 } })
 * await socket.close()
 * ```
 */
export function createUdxEndpoint(socket: UdxLikeSocket): DatagramEndpoint {
  if (socket === null || typeof socket !== 'object' || typeof socket.trySend !== 'function') {
    throw new InvalidArgumentError('createUdxEndpoint needs a udx-native socket')
  }
  return {
    send(data, port, host) {
      socket.trySend(data, port, host)
    },
    onMessage(listener) {
      const handler = (buf: Uint8Array, from: { host: string; port: number }): void =>
        listener(buf, { host: from.host, port: from.port })
      socket.on('message', handler)
      return () => socket.off('message', handler)
    },
    localAddress() {
      try {
        const a = socket.address()
        return a === null ? undefined : { family: familyName(a.family), host: a.host, port: a.port }
      } catch {
        return undefined
      }
    },
  }
}
