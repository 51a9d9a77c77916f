/**
 * The server side of one client 5-tuple (RFC 8656 §2: client address, server address,
 * transport): how the TURN server answers a client and delivers relayed data to it,
 * over UDP (one datagram per message) or a TCP/TLS byte stream.
 *
 * @module
 */

import type { TransportAddress } from '../../stun/address.js'
import type { Allocation } from './allocation.js'
import type { TurnUdpSocket } from './udp-socket.js'

/** Transport between a client and the TURN server. */
export type ClientTransport = 'udp' | 'tcp' | 'tls'

/**
 * One client 5-tuple: holds its allocation (at most one, RFC 8656 §2.2) and sends to
 * the client. Listeners subclass it.
 */
export abstract class ClientLink {
  /** Transport to the client. */
  readonly transport: ClientTransport
  /** Whether ChannelData to this client must be padded to 4 bytes (TCP/TLS, RFC 8656 §12.5). */
  readonly stream: boolean
  /** The client's transport address (as seen by the server). */
  readonly client: TransportAddress
  /** The server's transport address the client reached. */
  readonly local: TransportAddress
  #allocation: Allocation | undefined
  #allocating = false
  /** Set once the connection is gone (streams); a late Allocate then releases what it bound. */
  closed = false

  constructor(transport: ClientTransport, client: TransportAddress, local: TransportAddress) {
    this.transport = transport
    this.stream = transport !== 'udp'
    this.client = client
    this.local = local
  }

  /**
   * The listening socket whose native fast path can carry this client's ChannelData
   * (UDP clients only), or undefined.
   */
  fastPathSocket(): TurnUdpSocket | undefined {
    return undefined
  }

  /** The allocation of this 5-tuple, if any. */
  get allocation(): Allocation | undefined {
    return this.#allocation
  }

  /** Whether an Allocate of this 5-tuple is binding its relay socket right now. */
  get allocating(): boolean {
    return this.#allocating
  }

  /** Sets or clears the allocation of this 5-tuple. */
  setAllocation(allocation: Allocation | undefined): void {
    this.#allocation = allocation
    this.onStateChange()
  }

  /** Marks an Allocate in progress (retransmissions are dropped meanwhile). */
  setAllocating(allocating: boolean): void {
    this.#allocating = allocating
    this.onStateChange()
  }

  /** Called when the allocation or allocating state changes (UDP keeps a table of links). */
  protected abstract onStateChange(): void

  /** Sends one whole STUN message to the client. */
  abstract sendMessage(message: Uint8Array): void

  /**
   * Sends relayed data to the client: one whole ChannelData message or Data indication,
   * which the link may hold until it is sent (the caller must not reuse it). Returns
   * false when dropped (a stream client that does not read).
   */
  abstract sendData(frame: Buffer): boolean
}
