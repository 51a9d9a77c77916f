/**
 * How a TURN client talks to its server: over UDP through a datagram socket it is given
 * (the peer's one `PeerSocket`, or a plain `node:dgram` socket), or over a TCP or
 * TLS connection it opens itself, where STUN messages and ChannelData follow each other
 * in one byte stream (RFC 8656 §12.5).
 *
 * Every variant hands the client whole frames from the server only: STUN messages to
 * `onStun` listeners, ChannelData to `onChannelData` listeners.
 *
 * @module
 */

import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import {
  AbortError,
  ConnectFailedError,
  InvalidArgumentError,
  SocketClosedError,
  StunMalformedError,
  throwIfAborted,
  type PeerlinkError,
} from '../errors.js'
import { checkCertificatePin, parseCertificateHash } from '../cert-pin.js'
import type { TurnTransport } from '../server-spec.js'
import { normalizeIp } from '../stun/address.js'
import type { TransportAddress } from '../stun/address.js'
import { resolveStunHost } from '../stun/binding-client.js'
import { isChannelData, isStunMessage } from '../stun/classify.js'
import type { DatagramEndpoint, DatagramListener, DatagramSource } from '../stun/datagram-endpoint.js'
import { streamFrameLength } from '../stun/stream-framing.js'
import { PeerSocket } from '../transport/peer-socket.js'
import { peerSocketEndpoint } from '../transport/peer-socket-endpoint.js'

/** Receives one whole frame (a STUN message or a ChannelData message) from the server. */
export type TurnFrameListener = (frame: Uint8Array) => void

/** Told once when a connection closes; `error` says why if the client did not close it. */
export type TurnConnectionCloseListener = (error: PeerlinkError | undefined) => void

/** A TURN server's IP address and port. */
export interface TurnServerAddress {
  /** IP address (or, where accepted, a DNS name). */
  host: string
  /** UDP or TCP port. */
  port: number
}

/** The client's link to one TURN server. */
export interface TurnServerConnection {
  /** `'udp'`, `'tcp'` or `'tls'`. */
  readonly transport: TurnTransport
  /** The server's IP address and port. */
  readonly server: TurnServerAddress
  /** Whether the transport is a reliable byte stream (TCP/TLS): no retransmissions, ChannelData padded. */
  readonly reliable: boolean
  /** Whether {@link TurnServerConnection.close} was called or the connection was lost. */
  readonly closed: boolean
  /** Sends one frame to the server. @throws SocketClosedError once closed. */
  send(frame: Uint8Array): void
  /** Subscribes to STUN messages from the server; returns the unsubscribe function. */
  onStun(listener: TurnFrameListener): () => void
  /** Subscribes to ChannelData messages from the server; returns the unsubscribe function. */
  onChannelData(listener: TurnFrameListener): () => void
  /** Subscribes to the end of the connection; returns the unsubscribe function. */
  onClose(listener: TurnConnectionCloseListener): () => void
  /** Our local address on this connection, if known. */
  localAddress(): TransportAddress | undefined
  /**
   * Stops delivering frames. Closes the TCP/TLS socket the connection opened; never
   * closes a UDP socket it was given.
   */
  close(): Promise<void>
}

/** TLS settings for TURN over TLS (`turns:`). */
export interface TurnTlsOptions {
  /**
   * Trusted CA certificates (PEM) instead of Node's default CA store.
   * @default undefined (Node's CA store)
   */
  ca?: string | Uint8Array | Array<string | Uint8Array>
  /**
   * Reject certificates that do not validate. Ignored when `certHash` is set: the pin
   * then replaces CA validation.
   * @default true
   */
  rejectUnauthorized?: boolean
  /**
   * Name sent in SNI and checked against the certificate.
   * @default the server host when it is a DNS name
   */
  servername?: string
  /**
   * Pin: base64url SHA-256 of the server's DER certificate (the `#CERT_HASH` of a
   * server spec). When set, exactly that certificate is accepted, self-signed or not.
   * @default undefined (CA validation)
   */
  certHash?: string
}

/** Options of {@link connectTurnServer}. */
export interface ConnectTurnServerOptions extends TurnServerAddress {
  /**
   * Transport to the server.
   * @default 'udp'
   */
  transport?: TurnTransport
  /**
   * For UDP: the socket to send from. Pass the `PeerSocket` itself (not a
   * `peerSocketEndpoint()` of it, which only carries STUN) so ChannelData reaches the
   * client too. A plain endpoint (e.g. `createDgramEndpoint`) must deliver every datagram.
   * Required for UDP, ignored otherwise.
   * @default undefined
   */
  endpoint?: DatagramEndpoint | PeerSocket
  /**
   * TLS settings (for `transport: 'tls'`).
   * @default {}
   */
  tls?: TurnTlsOptions
  /**
   * Give up connecting over TCP/TLS after this many ms.
   * @default 10000
   */
  connectTimeout?: number
  /**
   * Cancels the DNS lookup and the connection attempt.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Options of {@link udpTurnConnection}. */
export interface UdpTurnConnectionOptions {
  /**
   * Subscribes to ChannelData datagrams when `endpoint.onMessage` does not deliver them
   * (as with `PeerSocket.onChannelData`). Without it, ChannelData is picked out of
   * `endpoint.onMessage`.
   * @default undefined
   */
  onChannelData?: (listener: DatagramListener) => () => void
}

/** The IP text form used to compare addresses: normalised, IPv4-mapped IPv6 as plain IPv4. */
export function comparableIp(host: string): string {
  const ip = normalizeIp(host) ?? host
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip
}

function checkServer(server: TurnServerAddress, where: string): void {
  if (server === null || typeof server !== 'object' || typeof server.host !== 'string' || server.host === '') {
    throw new InvalidArgumentError(`${where} needs a server { host, port }`)
  }
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 0xffff) {
    throw new InvalidArgumentError(`${where}: invalid server port ${String(server.port)}`)
  }
}

function checkEndpoint(endpoint: DatagramEndpoint, where: string): void {
  if (endpoint === null || typeof endpoint !== 'object' || typeof endpoint.send !== 'function' || typeof endpoint.onMessage !== 'function') {
    throw new InvalidArgumentError(`${where} needs a DatagramEndpoint or a PeerSocket`)
  }
}

/** Listener sets and close bookkeeping shared by the connection kinds. */
class Listeners {
  readonly stun = new Set<TurnFrameListener>()
  readonly channelData = new Set<TurnFrameListener>()
  readonly close = new Set<TurnConnectionCloseListener>()

  add<T>(set: Set<T>, listener: T): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function')
    const entry = ((...args: unknown[]) => (listener as (...a: unknown[]) => void)(...args)) as T
    set.add(entry)
    return () => {
      set.delete(entry)
    }
  }

  emit(set: Set<TurnFrameListener>, frame: Uint8Array): void {
    for (const listener of [...set]) listener(frame)
  }

  closed(error: PeerlinkError | undefined): void {
    const listeners = [...this.close]
    this.stun.clear()
    this.channelData.clear()
    this.close.clear()
    for (const listener of listeners) listener(error)
  }
}

/**
 * TURN over UDP through a datagram endpoint the caller owns: only datagrams from
 * `server` are delivered; closing the connection unsubscribes and leaves the socket open.
 *
 * @param server - the server's IP address (not a DNS name) and port.
 *
 * @example
 * ```ts
 * import dgram from 'node:dgram'
 * import { TurnClient, createDgramEndpoint, udpTurnConnection } from 'peerlink'
 *
 * const socket = dgram.createSocket('udp4')
 * socket.bind(0)
 * const connection = udpTurnConnection(createDgramEndpoint(socket), { host: '192.0.2.10', port: 3478 })
 * const client = new TurnClient({ connection, credentials: { username: 'alice', password: 's3cret' } })
 * const { relayed } = await client.allocate()
 * ```
 */
export function udpTurnConnection(
  endpoint: DatagramEndpoint,
  server: TurnServerAddress,
  options: UdpTurnConnectionOptions = {},
): TurnServerConnection {
  checkEndpoint(endpoint, 'udpTurnConnection')
  checkServer(server, 'udpTurnConnection')
  if (isIP(server.host) === 0) throw new InvalidArgumentError(`udpTurnConnection needs the server's IP address, got ${JSON.stringify(server.host)}`)
  const serverIp = comparableIp(server.host)
  const fromServer = (from: DatagramSource): boolean => from.port === server.port && comparableIp(from.host) === serverIp
  const listeners = new Listeners()
  const subscriptions: Array<() => void> = []
  let closed = false
  const separateChannelData = options.onChannelData
  subscriptions.push(
    endpoint.onMessage((data, from) => {
      if (!fromServer(from)) return
      if (isStunMessage(data)) listeners.emit(listeners.stun, data)
      else if (separateChannelData === undefined && isChannelData(data)) listeners.emit(listeners.channelData, data)
    }),
  )
  if (separateChannelData !== undefined) {
    subscriptions.push(
      separateChannelData((data, from) => {
        if (fromServer(from)) listeners.emit(listeners.channelData, data)
      }),
    )
  }
  return {
    transport: 'udp',
    server: { host: server.host, port: server.port },
    reliable: false,
    get closed() {
      return closed
    },
    send(frame) {
      if (closed) throw new SocketClosedError('The TURN connection is closed')
      endpoint.send(frame, server.port, server.host)
    },
    onStun: (listener) => listeners.add(listeners.stun, listener),
    onChannelData: (listener) => listeners.add(listeners.channelData, listener),
    onClose: (listener) => listeners.add(listeners.close, listener),
    localAddress: () => endpoint.localAddress?.(),
    close() {
      if (!closed) {
        closed = true
        for (const unsubscribe of subscriptions) unsubscribe()
        listeners.closed(undefined)
      }
      return Promise.resolve()
    },
  }
}

/**
 * TURN over UDP from the peer's one `PeerSocket`: STUN from its demultiplexer's
 * STUN path, ChannelData from its ChannelData path, sends from the same port.
 *
 * @example
 * ```ts
 * import { PeerSocket, TurnClient, peerSocketTurnConnection } from 'peerlink'
 *
 * const socket = await PeerSocket.bind()
 * // The relay is allocated from the same port ICE uses for its host candidate.
 * const connection = peerSocketTurnConnection(socket, { host: '192.0.2.10', port: 3478 })
 * const client = new TurnClient({ connection, credentials: { username: 'alice', password: 's3cret' } })
 * await client.allocate()
 * ```
 */
export function peerSocketTurnConnection(socket: PeerSocket, server: TurnServerAddress): TurnServerConnection {
  if (!(socket instanceof PeerSocket)) throw new InvalidArgumentError('peerSocketTurnConnection needs a PeerSocket')
  return udpTurnConnection(peerSocketEndpoint(socket), server, { onChannelData: (listener) => socket.onChannelData(listener) })
}

/** TURN over a connected TCP or TLS socket, framed with `streamFrameLength`. */
class StreamTurnConnection implements TurnServerConnection {
  readonly transport: TurnTransport
  readonly server: TurnServerAddress
  readonly reliable = true
  readonly #socket: Socket
  readonly #listeners = new Listeners()
  #buffer: Buffer = Buffer.alloc(0)
  #closed = false
  #error: PeerlinkError | undefined
  readonly #whenClosed: Promise<void>

  constructor(socket: Socket, transport: TurnTransport, server: TurnServerAddress) {
    this.#socket = socket
    this.transport = transport
    this.server = server
    this.#whenClosed = new Promise((resolve) => {
      socket.once('close', () => {
        const wasClosed = this.#closed
        this.#closed = true
        this.#listeners.closed(wasClosed ? undefined : (this.#error ?? new SocketClosedError('The TURN server closed the connection')))
        resolve()
      })
    })
    socket.on('error', (err) => {
      this.#error ??= new SocketClosedError(`TURN connection error: ${err.message}`, { cause: err })
    })
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
  }

  get closed(): boolean {
    return this.#closed
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    while (!this.#closed) {
      let frame
      try {
        frame = streamFrameLength(this.#buffer)
      } catch (err) {
        // RFC 8656 §12.5: a stream that is neither STUN nor ChannelData cannot be resynchronised.
        this.#error = err instanceof StunMalformedError ? err : new StunMalformedError('Bad TURN stream framing', { cause: err })
        this.#socket.destroy()
        return
      }
      if (frame === undefined || this.#buffer.length < frame.length) return
      const bytes = new Uint8Array(this.#buffer.subarray(0, frame.length))
      this.#buffer = this.#buffer.subarray(frame.length)
      this.#listeners.emit(frame.kind === 'stun' ? this.#listeners.stun : this.#listeners.channelData, bytes)
    }
  }

  send(frame: Uint8Array): void {
    if (this.#closed || this.#socket.destroyed) throw new SocketClosedError('The TURN connection is closed')
    this.#socket.write(frame)
  }

  onStun(listener: TurnFrameListener): () => void {
    return this.#listeners.add(this.#listeners.stun, listener)
  }

  onChannelData(listener: TurnFrameListener): () => void {
    return this.#listeners.add(this.#listeners.channelData, listener)
  }

  onClose(listener: TurnConnectionCloseListener): () => void {
    return this.#listeners.add(this.#listeners.close, listener)
  }

  localAddress(): TransportAddress | undefined {
    const { localAddress, localPort, localFamily } = this.#socket
    if (localAddress === undefined || localPort === undefined) return undefined
    return { family: localFamily === 'IPv6' ? 'IPv6' : 'IPv4', host: localAddress, port: localPort }
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      // Flush what was written (e.g. a last Refresh), send FIN / TLS close_notify, then destroy.
      this.#socket.destroySoon()
    }
    return this.#whenClosed
  }
}

function connectStream(
  transport: 'tcp' | 'tls',
  host: string,
  port: number,
  tls: TurnTlsOptions,
  connectTimeout: number,
  signal: AbortSignal | undefined,
): Promise<TurnServerConnection> {
  try {
    throwIfAborted(signal)
  } catch (err) {
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    let socket: Socket
    if (transport === 'tls') {
      const pinned = tls.certHash !== undefined
      socket = tlsConnect({
        host,
        port,
        ...(tls.servername !== undefined ? { servername: tls.servername } : isIP(host) === 0 ? { servername: host } : {}),
        ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | Array<string | Buffer> }),
        // The pin replaces CA validation (a peerlink server's certificate is self-signed).
        rejectUnauthorized: pinned ? false : tls.rejectUnauthorized !== false,
      })
    } else {
      socket = netConnect({ host, port })
    }
    const where = `${transport.toUpperCase()} ${host.includes(':') ? `[${host}]` : host}:${port}`
    const timer = setTimeout(() => fail(new ConnectFailedError(`Connecting to the TURN server over ${where} timed out after ${connectTimeout} ms`)), connectTimeout)
    const onAbort = (): void => fail(new AbortError(undefined, { cause: signal?.reason }))
    const onError = (err: Error): void =>
      fail(new ConnectFailedError(`Cannot connect to the TURN server over ${where}: ${err.message}`, { cause: err }))
    const cleanup = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off('error', onError)
    }
    function fail(err: PeerlinkError): void {
      cleanup()
      socket.destroy()
      reject(err)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('error', onError)
    socket.once(transport === 'tls' ? 'secureConnect' : 'connect', () => {
      if (transport === 'tls' && tls.certHash !== undefined) {
        const mismatch = checkCertificatePin((socket as TLSSocket).getPeerCertificate(true)?.raw, tls.certHash)
        if (mismatch !== undefined) {
          fail(mismatch)
          return
        }
      }
      cleanup()
      socket.setNoDelay(true)
      resolve(new StreamTurnConnection(socket, transport, { host: socket.remoteAddress ?? host, port }))
    })
  })
}

/**
 * Opens the link to a TURN server: over UDP through `endpoint` (the host name is
 * resolved first), or a new TCP or TLS connection.
 *
 * Rejects with `HostUnresolvedError`, `ConnectFailedError` (refused, timed out, TLS
 * validation failed), `CertificatePinMismatchError` or `AbortError`.
 *
 * @example
 * ```ts
 * import { connectTurnServer } from 'peerlink'
 *
 * const connection = await connectTurnServer({ host: 'turn.example.com', port: 5349, transport: 'tls' })
 * ```
 * @throws InvalidArgumentError at once on bad options (e.g. UDP without an endpoint).
 */
export function connectTurnServer(options: ConnectTurnServerOptions): Promise<TurnServerConnection> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('connectTurnServer needs options')
  checkServer(options, 'connectTurnServer')
  const transport = options.transport ?? 'udp'
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') {
    throw new InvalidArgumentError(`transport must be 'udp', 'tcp' or 'tls', got ${JSON.stringify(transport)}`)
  }
  const connectTimeout = options.connectTimeout ?? 10_000
  if (!Number.isFinite(connectTimeout) || connectTimeout <= 0) throw new InvalidArgumentError('connectTimeout must be a positive number of ms')
  const tls = options.tls ?? {}
  if (tls.certHash !== undefined) parseCertificateHash(tls.certHash)
  const { endpoint, signal } = options
  if (transport !== 'udp') return connectStream(transport, options.host, options.port, tls, connectTimeout, signal)
  if (endpoint === undefined) throw new InvalidArgumentError('TURN over UDP needs an endpoint (a PeerSocket or a DatagramEndpoint)')
  if (!(endpoint instanceof PeerSocket)) checkEndpoint(endpoint, 'connectTurnServer')
  const family = endpoint instanceof PeerSocket ? (endpoint.address().family === 6 ? 'IPv6' : 'IPv4') : endpoint.localAddress?.()?.family
  return resolveStunHost(options.host, family, signal).then((host) => {
    const server = { host, port: options.port }
    return endpoint instanceof PeerSocket ? peerSocketTurnConnection(endpoint, server) : udpTurnConnection(endpoint, server)
  })
}
