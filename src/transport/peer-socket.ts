/**
 * The one UDP socket a peer uses for everything: udx-native streams (handled natively),
 * STUN and TURN ChannelData datagrams (dispatched to listeners), and nothing else.
 *
 * @module
 */
import { isIP } from 'node:net'
import { getRandomValues } from 'node:crypto'
import UDX from 'udx-native'
import {
  InvalidArgumentError,
  SocketBindError,
  SocketClosedError,
  throwIfAborted,
  type AbortError,
} from '../errors.js'
import { classifyDatagram } from './packet-demux.js'
import { createUdxStream } from './udx-stream.js'

/**
 * Largest datagram udx-native can hand to JavaScript: it truncates longer datagrams to
 * 2048 bytes without telling (measured with udx-native 1.21).
 *
 * @example
 * ```ts
 * import { MAX_DELIVERABLE_DATAGRAM, PeerSocket } from 'peerlink'
 *
 * // Drop anything over 1500 bytes (the default, and the most, is MAX_DELIVERABLE_DATAGRAM = 2048).
 * const socket = await PeerSocket.bind({ host: '127.0.0.1', maxDatagramSize: Math.min(1500, MAX_DELIVERABLE_DATAGRAM) })
 * ```
 */
export const MAX_DELIVERABLE_DATAGRAM = 2048

/** Options of {@link PeerSocket.bind}. */
export interface PeerSocketOptions {
  /**
   * Local IP address to bind (an IP literal; `'::'` binds IPv6 dual-stack).
   * @default '0.0.0.0'
   */
  host?: string
  /**
   * Local UDP port; 0 lets the OS pick one.
   * @default 0
   */
  port?: number
  /**
   * Datagrams longer than this are dropped (counted in `oversizeDatagrams`) instead of
   * dispatched. At most {@link MAX_DELIVERABLE_DATAGRAM}.
   * @default 2048
   */
  maxDatagramSize?: number
  /**
   * Called when a STUN / ChannelData listener throws. The other listeners still receive
   * the datagram.
   * @default re-throws the error asynchronously (an uncaught exception, as from an event listener)
   */
  onListenerError?: (err: unknown) => void
  /** Cancels the bind (checked before binding). */
  signal?: AbortSignal
}

/** Where a datagram came from (or a socket's own bound address). */
export interface DatagramAddress {
  /** IP address (IPv4-mapped IPv6 form when an IPv4 datagram reaches a dual-stack socket). */
  host: string
  /** UDP port. */
  port: number
  /** Address family. */
  family: 4 | 6
}

/**
 * Receives one dispatched datagram. `data` is a view into a larger buffer owned by the
 * socket's receive path; copy it (`Buffer.from(data)`) if you keep it for long.
 */
export type DatagramListener = (data: Buffer, from: DatagramAddress) => void

/** Counters of a {@link PeerSocket}; they only grow. */
export interface PeerSocketStats {
  /** Datagrams dispatched as STUN. */
  stunDatagrams: number
  /** Datagrams dispatched as TURN ChannelData. */
  channelDataDatagrams: number
  /** Datagrams dropped: not STUN, not ChannelData, or too long (includes `oversizeDatagrams`). */
  droppedDatagrams: number
  /** Datagrams dropped because they exceeded `maxDatagramSize`. */
  oversizeDatagrams: number
  /** Exceptions thrown by listeners (reported through `onListenerError`). */
  listenerErrors: number
}

// Assigned in the class's static block: the only way to construct a PeerSocket.
let createPeerSocket: (
  udx: UDX,
  socket: UDX.UDXSocket,
  maxDatagramSize: number,
  onListenerError: (err: unknown) => void,
) => PeerSocket

/**
 * One UDP socket (one udx-native instance) shared by streams and raw datagrams.
 *
 * Datagrams that are not udx stream packets are classified with
 * {@link classifyDatagram}: STUN goes to {@link PeerSocket.onStun} listeners, ChannelData
 * to {@link PeerSocket.onChannelData} listeners, everything else is dropped and counted
 * in {@link PeerSocket.stats}.
 *
 * @example
 * ```ts
 * import { PeerSocket } from 'peerlink'
 *
 * const socket = await PeerSocket.bind({ host: '127.0.0.1' })
 * const off = socket.onStun((msg, from) => console.log('STUN from', from.host, from.port))
 * await socket.send(request, 3478, '192.0.2.1')
 * off()
 * await socket.close()
 * ```
 */
export class PeerSocket {
  readonly #udx: UDX
  readonly #socket: UDX.UDXSocket
  readonly #address: DatagramAddress
  readonly #maxDatagramSize: number
  readonly #onListenerError: (err: unknown) => void
  readonly #stun = new Set<DatagramListener>()
  readonly #channelData = new Set<DatagramListener>()
  readonly #streams = new Map<number, UDX.UDXStream>()
  readonly #reserved = new Set<number>()
  readonly #stats: PeerSocketStats = {
    stunDatagrams: 0,
    channelDataDatagrams: 0,
    droppedDatagrams: 0,
    oversizeDatagrams: 0,
    listenerErrors: 0,
  }
  #closing: Promise<void> | null = null

  private constructor(udx: UDX, socket: UDX.UDXSocket, maxDatagramSize: number, onListenerError: (err: unknown) => void) {
    this.#udx = udx
    this.#socket = socket
    this.#maxDatagramSize = maxDatagramSize
    this.#onListenerError = onListenerError
    const address = socket.address()
    if (address === null) throw new SocketBindError('udx socket reports no address after bind')
    this.#address = { host: address.host, port: address.port, family: address.family }
    socket.on('message', this.#onMessage)
  }

  /**
   * Bind a new socket. Throws {@link InvalidArgumentError} at once for a bad host, port or
   * size; rejects with {@link SocketBindError} when the OS refuses the address and with
   * {@link AbortError} when `signal` is already aborted.
   */
  static bind(options: PeerSocketOptions = {}): Promise<PeerSocket> {
    const { host = '0.0.0.0', port = 0, maxDatagramSize = MAX_DELIVERABLE_DATAGRAM, signal } = options
    if (typeof host !== 'string' || isIP(host) === 0) {
      throw new InvalidArgumentError(`host must be an IP address literal, got ${JSON.stringify(host)}`)
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InvalidArgumentError(`port must be an integer in 0..65535, got ${String(port)}`)
    }
    if (!Number.isInteger(maxDatagramSize) || maxDatagramSize < 1 || maxDatagramSize > MAX_DELIVERABLE_DATAGRAM) {
      throw new InvalidArgumentError(
        `maxDatagramSize must be an integer in 1..${MAX_DELIVERABLE_DATAGRAM}, got ${String(maxDatagramSize)}`,
      )
    }
    const onListenerError = options.onListenerError ?? rethrowAsync
    if (typeof onListenerError !== 'function') throw new InvalidArgumentError('onListenerError must be a function')
    return bindSocket(host, port, maxDatagramSize, onListenerError, signal)
  }

  /**
   * Binds another socket on this socket's udx-native instance: a udx stream can then move
   * between the two with `changeRemote` (udx-native refuses sockets of another instance).
   * The relay shim runs its stream on one. Stream ids are unique per instance: take them
   * from {@link PeerSocket.allocateStreamId} of this socket.
   *
   * @throws InvalidArgumentError at once for a bad host or port; rejects like {@link PeerSocket.bind}.
   */
  bindSibling(options: Omit<PeerSocketOptions, 'onListenerError'> = {}): Promise<PeerSocket> {
    const { host = '127.0.0.1', port = 0, maxDatagramSize = this.#maxDatagramSize, signal } = options
    if (typeof host !== 'string' || isIP(host) === 0) throw new InvalidArgumentError(`host must be an IP address literal, got ${JSON.stringify(host)}`)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`port must be an integer in 0..65535, got ${String(port)}`)
    if (this.#closing !== null) return Promise.reject(new SocketClosedError('The socket is closed'))
    return bindSocket(host, port, maxDatagramSize, this.#onListenerError, signal, this.#udx)
  }

  /** The bound local address (the real port when bound to port 0). */
  address(): DatagramAddress {
    return { ...this.#address }
  }

  /** The bound local UDP port. */
  get port(): number {
    return this.#address.port
  }

  /** True once {@link PeerSocket.close} has been called. */
  get closed(): boolean {
    return this.#closing !== null
  }

  /** A snapshot of the counters. */
  get stats(): Readonly<PeerSocketStats> {
    return { ...this.#stats }
  }

  /** Number of udx streams currently open on this socket. */
  get streamCount(): number {
    return this.#streams.size
  }

  /** Listen for STUN datagrams; returns a function that removes the listener. */
  onStun(listener: DatagramListener): () => void {
    return this.#addListener(this.#stun, listener)
  }

  /** Listen for TURN ChannelData datagrams; returns a function that removes the listener. */
  onChannelData(listener: DatagramListener): () => void {
    return this.#addListener(this.#channelData, listener)
  }

  /**
   * Send one datagram. Throws {@link InvalidArgumentError} at once for a bad address or
   * data; rejects with {@link SocketClosedError} after {@link PeerSocket.close}. Resolves
   * `true` once the datagram was handed to the OS, `false` if the OS refused it (for
   * example no route to the host): UDP delivery failures are normal, not exceptions.
   * Do not modify `data` until the promise settles.
   */
  send(data: Uint8Array, port: number, host: string): Promise<boolean> {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data must be a Uint8Array')
    validateRemote(host, port)
    if (this.#closing !== null) return Promise.reject(new SocketClosedError('Cannot send: the socket is closed'))
    return this.#socket.send(data, port, host)
  }

  /**
   * Reserve a random, non-zero 32-bit udx stream id that no stream on this socket uses.
   * Hand it to the remote out of band, then pass it as `localStreamId` to
   * `openSecureConnection`. Release it with {@link PeerSocket.releaseStreamId} if unused.
   */
  allocateStreamId(): number {
    if (this.#closing !== null) throw new SocketClosedError('Cannot allocate a stream id: the socket is closed')
    const word = new Uint32Array(1)
    for (;;) {
      getRandomValues(word)
      const id = word[0]!
      if (id !== 0 && !this.#streams.has(id) && !this.#reserved.has(id)) {
        this.#reserved.add(id)
        return id
      }
    }
  }

  /** Give back an id from {@link PeerSocket.allocateStreamId} that will not be used. */
  releaseStreamId(id: number): void {
    this.#reserved.delete(id)
  }

  /**
   * Whether `id` can be used as a local stream id now (not used by an open stream).
   * Reserved ids are usable (by whoever reserved them).
   */
  isStreamIdFree(id: number): boolean {
    return !this.#streams.has(id)
  }

  /**
   * Create a udx stream with local id `id` and connect it to the remote stream.
   * Throws if the id is in use or the socket is closed.
   *
   * @internal
   */
  connectStream(id: number, remoteId: number, port: number, host: string): UDX.UDXStream {
    if (this.#closing !== null) throw new SocketClosedError('The socket is closed')
    if (this.#streams.has(id)) throw new InvalidArgumentError(`stream id ${id} is already in use on this socket`)
    this.#reserved.delete(id)
    const stream = createUdxStream(this.#udx, id)
    // The stream's owner (secret-stream) listens for errors too; this only keeps an
    // error on a stream nobody has taken over yet from becoming an uncaught exception.
    stream.on('error', noop)
    this.#streams.set(id, stream)
    stream.once('close', () => {
      if (this.#streams.get(id) === stream) this.#streams.delete(id)
    })
    try {
      stream.connect(this.#socket, remoteId, port, host)
    } catch (err) {
      stream.destroy()
      throw err
    }
    return stream
  }

  /**
   * Close every stream on the socket, then the socket. Resolves when udx-native has
   * released every native handle. Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing
    this.#stun.clear()
    this.#channelData.clear()
    this.#reserved.clear()
    const streams = [...this.#streams.values()]
    const streamsClosed = Promise.all(streams.map(waitForClose))
    for (const stream of streams) stream.destroy()
    this.#closing = Promise.all([streamsClosed, this.#socket.close()]).then(() => {
      this.#socket.off('message', this.#onMessage)
    })
    return this.#closing
  }

  #addListener(set: Set<DatagramListener>, listener: DatagramListener): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function')
    if (this.#closing !== null) throw new SocketClosedError('Cannot listen: the socket is closed')
    // Wrap so that the same function may be added twice and removed independently.
    const entry: DatagramListener = (data, from) => listener(data, from)
    set.add(entry)
    return () => {
      set.delete(entry)
    }
  }

  readonly #onMessage = (data: Buffer, from: UDX.UDXAddress): void => {
    if (data.length > this.#maxDatagramSize) {
      this.#stats.oversizeDatagrams++
      this.#stats.droppedDatagrams++
      return
    }
    const kind = classifyDatagram(data)
    let listeners: Set<DatagramListener>
    if (kind === 'stun') {
      this.#stats.stunDatagrams++
      listeners = this.#stun
    } else if (kind === 'channel-data') {
      this.#stats.channelDataDatagrams++
      listeners = this.#channelData
    } else {
      this.#stats.droppedDatagrams++
      return
    }
    if (listeners.size === 0) return
    const address: DatagramAddress = { host: from.host, port: from.port, family: from.family }
    for (const listener of listeners) {
      try {
        listener(data, address)
      } catch (err) {
        this.#stats.listenerErrors++
        this.#onListenerError(err)
      }
    }
  }

  static {
    createPeerSocket = (udx, socket, maxDatagramSize, onListenerError) =>
      new PeerSocket(udx, socket, maxDatagramSize, onListenerError)
  }
}

async function bindSocket(
  host: string,
  port: number,
  maxDatagramSize: number,
  onListenerError: (err: unknown) => void,
  signal: AbortSignal | undefined,
  shared?: UDX,
): Promise<PeerSocket> {
  throwIfAborted(signal)
  const udx = shared ?? new UDX()
  const socket = udx.createSocket()
  try {
    socket.bind(port, host)
  } catch (err) {
    await socket.close()
    const code = (err as { code?: unknown }).code
    throw new SocketBindError(
      `Cannot bind UDP ${host.includes(':') ? `[${host}]` : host}:${port}: ${(err as Error).message}` +
        (typeof code === 'string' ? ` (${code})` : ''),
      { cause: err },
    )
  }
  return createPeerSocket(udx, socket, maxDatagramSize, onListenerError)
}

/**
 * Validate a remote UDP endpoint; throws {@link InvalidArgumentError}.
 *
 * @internal
 */
export function validateRemote(host: unknown, port: unknown): void {
  if (typeof host !== 'string' || isIP(host) === 0) {
    throw new InvalidArgumentError(`host must be an IP address literal, got ${JSON.stringify(host)}`)
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`port must be an integer in 1..65535, got ${String(port)}`)
  }
}

function waitForClose(stream: UDX.UDXStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) resolve()
    else stream.once('close', () => resolve())
  })
}

function noop(): void {}

function rethrowAsync(err: unknown): void {
  queueMicrotask(() => {
    throw err
  })
}
