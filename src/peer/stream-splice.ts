/**
 * The stream splice: what lets a live connection change path when the old path is dead.
 *
 * udx-native's `changeRemote` moves where a stream sends *new* packets, but packets sent
 * before the change are retransmitted to the old remote until the peer acks them (libudx
 * keeps each packet's destination). When the old path is dead they are never acked, the
 * change never completes and the stream times out. So the connection's stream does not
 * face the network itself: it runs to a local *relay pair* on the same udx-native
 * instance, and the outer relay stream (whose id is the one signalled to the peer) faces
 * the peer. udx relays packets natively (`relayTo`, no JS per packet, no reliability
 * state of its own), so moving the outer stream is immediate, and the inner stream's
 * retransmissions always reach it and follow it to the new path:
 *
 * ```text
 * secure stream (id s) ─▶ splice socket 127.0.0.1:x ─▶ inner relay (id r) ═relayTo═▶ outer relay (id L) ─▶ peer
 *                                                       (same udx instance)          on the peer socket,
 *                                                                                     or a relay shim's socket
 * ```
 *
 * @module
 */
import { createRequire } from 'node:module'
import type UDX from 'udx-native'
import type { PeerSocket } from '../transport/peer-socket.js'
import { findUdxStream } from './udx-handles.js'

/**
 * The largest packet (IP level, as udx counts its MTU) a spliced stream sends while it
 * may move to a TURN relay: a relay adds 4 (ChannelData) or 36 (Data indication) bytes
 * on one leg, and udx cannot re-packetize what it already sent, so packets sized for
 * the direct path (udx probes up to 1500) would never cross the relay after a failover.
 * 100 bytes below Ethernet's 1500 leave room for the relay's framing on slightly
 * smaller paths too.
 *
 * @example
 * ```ts
 * import { RELAY_SAFE_MTU } from 'peerlink'
 *
 * // Keep your own datagrams on a path that may move to a TURN relay below this size (IP level).
 * const maxUdpPayload = RELAY_SAFE_MTU - 20 - 8   // less the IPv4 and UDP headers
 * ```
 */
export const RELAY_SAFE_MTU = 1400

/** Byte offset of `mtu` in a udx stream's shared state (udx-native's binding). */
const MTU_OFFSET: number | undefined = (() => {
  try {
    const binding = createRequire(import.meta.url)('udx-native/binding') as { offsetof_udx_stream_t_mtu?: number }
    return binding.offsetof_udx_stream_t_mtu
  } catch {
    return undefined
  }
})()

const LOOPBACK = '127.0.0.1'
/** How long a closing splice keeps relaying after the secure stream closed (its last packets). */
const LAST_PACKET_LINGER_MS = 100

type RelayingStream = UDX.UDXStream & { relayTo(destination: UDX.UDXStream): void }

/** Where the secure connection runs: pass these to `openSecureConnection`. */
export interface SpliceEnd {
  /** The splice socket. */
  socket: PeerSocket
  /** The inner relay's address (the splice socket itself). */
  remote: { host: string; port: number }
  /** The secure stream's id. */
  localStreamId: number
  /** The inner relay's id. */
  remoteStreamId: number
}

/** See the module notes. One per connection. */
export class StreamSplice {
  /** The loopback socket the secure stream and the inner relay run on. */
  readonly socket: PeerSocket
  readonly #peerSocket: PeerSocket
  readonly #ids: number[]
  #inner: UDX.UDXStream | undefined
  #outer: UDX.UDXStream | undefined
  #closing: Promise<void> | undefined

  private constructor(peerSocket: PeerSocket, socket: PeerSocket) {
    this.#peerSocket = peerSocket
    this.socket = socket
    // Stream ids are unique per udx instance: both come from (and stay reserved on) the peer socket.
    this.#ids = [peerSocket.allocateStreamId(), peerSocket.allocateStreamId()]
  }

  /**
   * Binds the splice socket (127.0.0.1, a sibling of `peerSocket` on its udx-native
   * instance). Bind it before it is needed: {@link StreamSplice.connect} is synchronous.
   */
  static async open(peerSocket: PeerSocket): Promise<StreamSplice> {
    const socket = await peerSocket.bindSibling({ host: LOOPBACK })
    return new StreamSplice(peerSocket, socket)
  }

  /**
   * Creates the relay pair: the outer relay with id `localStreamId` on `outer.socket`
   * toward the peer's stream, the inner one on the splice socket toward the secure
   * stream. Returns where to open the secure connection. Synchronous, so it listens
   * before the peer's first packet comes.
   *
   * @throws when a stream cannot be created (a socket closed, an id in use).
   */
  connect(outer: { socket: PeerSocket; host: string; port: number; localStreamId: number; remoteStreamId: number }): SpliceEnd {
    const [secureId, innerId] = this.#ids as [number, number]
    const outerStream = outer.socket.connectStream(outer.localStreamId, outer.remoteStreamId, outer.port, outer.host) as RelayingStream
    let inner: RelayingStream
    try {
      inner = this.socket.connectStream(innerId, secureId, this.socket.port, LOOPBACK) as RelayingStream
    } catch (err) {
      outerStream.destroy()
      throw err
    }
    inner.relayTo(outerStream)
    outerStream.relayTo(inner)
    this.#inner = inner
    this.#outer = outerStream
    return { socket: this.socket, remote: { host: LOOPBACK, port: this.socket.port }, localStreamId: secureId, remoteStreamId: innerId }
  }

  /**
   * Caps the secure stream's packet size at `max` (udx's MTU, IP level; see
   * {@link RELAY_SAFE_MTU}). udx's path MTU probing may raise it again: call it
   * periodically. No-op when udx-native's layout is unknown.
   */
  clampMtu(max = RELAY_SAFE_MTU): void {
    if (MTU_OFFSET === undefined || this.#closing !== undefined) return
    const stream = findUdxStream([this.socket], this.#ids[0] as number) as (UDX.UDXStream & { _view16?: Uint16Array }) | undefined
    const view = stream?._view16
    const index = MTU_OFFSET >> 1
    if (view !== undefined && (view[index] ?? 0) > max) view[index] = max
  }

  /** The outer relay (the stream path recovery moves), once connected. */
  get outer(): UDX.UDXStream | undefined {
    return this.#outer
  }

  /**
   * Closes the relay pair and the splice socket. The secure stream gets up to `grace`
   * ms to close by itself first (its last packets still cross the relays). Idempotent.
   */
  close(options: { grace?: number } = {}): Promise<void> {
    const grace = options.grace ?? 0
    this.#closing ??= (async () => {
      if (grace > 0) {
        const deadline = performance.now() + grace
        // The inner relay is the one stream left once the secure stream has closed.
        while (this.socket.streamCount > (this.#inner === undefined || this.#inner.destroyed ? 0 : 1) && performance.now() < deadline) await sleep(20)
        await sleep(Math.min(LAST_PACKET_LINGER_MS, grace))
      }
      this.#inner?.destroy()
      this.#outer?.destroy()
      await this.socket.close()
      for (const id of this.#ids) this.#peerSocket.releaseStreamId(id)
    })()
    return this.#closing
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
