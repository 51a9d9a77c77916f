/**
 * Connecting to a peer over the tunnel's peer path (see `docs/tunnel-protocol.md`,
 * "Peer path"): a WebSocket to `…/v1/peer/connect?peer=PEERID&from=OURS` that the
 * server joins to a transfer socket of the listening peer — following `peer-moved` to
 * the fleet's server that holds the listener — then the verified Noise handshake over
 * it ({@link secureTunnelStream}), as the initiator.
 *
 * @module
 */
import type WebSocket from 'ws'
import {
  AbortError,
  ConnectFailedError,
  InvalidArgumentError,
  type PeerlinkError,
  TunnelLimitError,
  TunnelPeerNotFoundError,
  TunnelProtocolError,
  TunnelUnavailableError,
  throwIfAborted,
} from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { isPeerId } from '../identity/peer-id.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../server-spec.js'
import { type TunnelEndpoint, formatTunnelAddress, openTunnelSocket } from './tunnel-connect.js'
import { PEER_CONNECT_PATH, type TunnelPeerErrorMessage, type TunnelPeerServerMessage, decodeTunnelPeerServerMessage } from './tunnel-peer-messages.js'
import { type TunnelSecureConnection, secureTunnelStream } from './tunnel-secure-connection.js'
import { WebSocketDuplex } from './websocket-duplex.js'

/** `peer-moved` hops followed at most. */
export const MAX_PEER_MOVES = 5
/** Largest frame accepted on a peer-path stream. */
export const TUNNEL_PEER_MAX_FRAME = 4 * 1024 * 1024

/** Options of {@link openTunnelPeerStream}. */
export interface OpenTunnelPeerStreamOptions {
  /** The tunnel server (`ws://…`, `wss://…[#CERT_HASH]`, or parsed). */
  server: string | TunnelServerSpec
  /** The PeerId of the listening peer. */
  peerId: string
  /** Our PeerId (the listener checks that our handshake proves it). */
  from: string
  /**
   * Certificates to trust besides the system's CAs, for `wss://` without a pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds for each server's TCP, TLS, upgrade and the listener's join.
   * @default 10_000
   */
  timeout?: number
  /**
   * Cancels the attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Opens the raw (not yet secured) stream to a listening peer: resolves once the server
 * has joined it to the listener's transfer socket. Only {@link secureTunnelStream}
 * makes it safe to use; {@link TunnelPeerConnector} does both.
 *
 * @throws {@link TunnelPeerNotFoundError} (rejects) when no peer listens under `peerId` there.
 * @throws {@link TunnelUnavailableError}, {@link TunnelLimitError}, {@link TunnelProtocolError}, `ConnectFailedError`, `CertificatePinMismatchError` (rejects) for the other failures.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 *
 * @example
 * ```ts
 * import { openTunnelPeerStream, secureTunnelStream } from 'peerlink'
 *
 * const raw = await openTunnelPeerStream({ server: 'wss://tunnel.example.com:8443', peerId: remotePeerId, from: identity.peerId })
 * // Not safe yet: only the verified handshake makes it so.
 * const conn = await secureTunnelStream({ stream: raw, isInitiator: true, keyPair: identity.keyPair, expectedPeerId: remotePeerId })
 * ```
 */
export async function openTunnelPeerStream(options: OpenTunnelPeerStreamOptions): Promise<WebSocketDuplex> {
  const spec = typeof options.server === 'string' ? parseTunnelSpec(options.server) : options.server
  if (spec === null || typeof spec !== 'object' || spec.kind !== 'tunnel') throw new InvalidArgumentError('server must be a tunnel URL or a parsed tunnel spec')
  if (!isPeerId(options.peerId)) throw new InvalidArgumentError('peerId must be a PeerId')
  if (!isPeerId(options.from)) throw new InvalidArgumentError('from must be a PeerId')
  const timeout = options.timeout ?? 10_000
  if (!(Number.isFinite(timeout) && timeout > 0)) throw new InvalidArgumentError('timeout must be a positive number of milliseconds')
  const { signal } = options
  throwIfAborted(signal)
  const base = spec.path.endsWith('/') ? spec.path : `${spec.path}/`
  let endpoint: TunnelEndpoint = { secure: spec.secure, host: spec.host, port: spec.port, path: `${base}${PEER_CONNECT_PATH}?peer=${options.peerId}&from=${options.from}`, certHash: spec.certHash }
  for (let hop = 0; ; hop++) {
    const { ws } = await openTunnelSocket({ endpoint, maxPayload: TUNNEL_PEER_MAX_FRAME, timeout, ...(signal === undefined ? {} : { signal }), ...(options.ca === undefined ? {} : { ca: options.ca }) })
    const outcome = await firstMessage(ws, endpoint, options.peerId, timeout, signal)
    if (outcome instanceof WebSocketDuplex) return outcome
    if (hop >= MAX_PEER_MOVES) throw new ConnectFailedError(`more than ${MAX_PEER_MOVES} moves from tunnel server ${formatTunnelAddress(spec)}`)
    endpoint = movedTarget(endpoint, outcome.moved)
  }
}

/** Waits for the connect socket's one message: the joined stream, a move, or an error. */
function firstMessage(ws: WebSocket, endpoint: TunnelEndpoint, peerId: string, timeout: number, signal: AbortSignal | undefined): Promise<WebSocketDuplex | { moved: string }> {
  const where = formatTunnelAddress(endpoint)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new TunnelUnavailableError(`tunnel server ${where} did not join us to ${peerId} within ${timeout} ms`)), timeout)
    const onAbort = () => fail(new AbortError(undefined, { cause: signal?.reason }))
    const onClose = (code: number) => fail(new TunnelUnavailableError(`tunnel server ${where} closed the peer connection (${code})`))
    const onError = (err: Error) => fail(new TunnelUnavailableError(`peer connection to ${where} failed: ${err.message}`, { cause: err }))
    const onMessage = (data: Buffer, isBinary: boolean) => {
      let message: TunnelPeerServerMessage
      try {
        if (!isBinary) throw new TunnelProtocolError('expected a binary peer-path message')
        message = decodeTunnelPeerServerMessage(data)
      } catch (err) {
        return fail(err as PeerlinkError)
      }
      switch (message.type) {
        case 'peer-ready': {
          cleanup()
          // Created in this handler, so that no frame after peer-ready is missed.
          resolve(new WebSocketDuplex(ws))
          return
        }
        case 'peer-moved':
          cleanup()
          ws.on('error', ignore)
          ws.close(1000)
          resolve({ moved: message.url })
          return
        case 'peer-error':
          return fail(peerError(message, where, peerId))
        default:
          return fail(new TunnelProtocolError(`tunnel server ${where} sent ${message.type} on a peer connection`))
      }
    }
    function cleanup(): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      ws.off('message', onMessage)
      ws.off('close', onClose)
      ws.off('error', onError)
    }
    function fail(err: Error): void {
      cleanup()
      ws.on('error', ignore)
      ws.terminate()
      reject(err)
    }
    if (signal?.aborted === true) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    ws.on('message', onMessage)
    ws.once('close', onClose)
    ws.on('error', onError)
    ws.resume()
  })
}

/** The error a connecting peer raises for a `peer-error` message. */
export function peerError(message: TunnelPeerErrorMessage, where: string, peerId: string): PeerlinkError {
  const text = `tunnel server ${where}: ${message.message}`
  switch (message.code) {
    case 'not-found':
      return new TunnelPeerNotFoundError(peerId, text)
    case 'limit':
      return new TunnelLimitError(text)
    case 'protocol':
      return new TunnelProtocolError(text)
    default:
      return new TunnelUnavailableError(`${text} (${message.code})`)
  }
}

/** The endpoint a `peer-moved` URL leads to: same pin, never from `wss://` to `ws://`. */
function movedTarget(from: TunnelEndpoint, location: string): TunnelEndpoint {
  let url: URL
  try {
    url = new URL(location)
  } catch (err) {
    throw new TunnelProtocolError(`tunnel server ${formatTunnelAddress(from)} moved us to an invalid URL`, { cause: err })
  }
  const secure = url.protocol === 'wss:'
  if (!secure && url.protocol !== 'ws:') throw new TunnelProtocolError(`tunnel server ${formatTunnelAddress(from)} moved us to a ${url.protocol} URL`)
  if (from.secure && !secure) throw new ConnectFailedError(`tunnel server ${formatTunnelAddress(from)} moved us from wss:// to plain ws://; refused`)
  if (!url.pathname.endsWith(`/${PEER_CONNECT_PATH}`)) throw new TunnelProtocolError(`tunnel server ${formatTunnelAddress(from)} moved us to ${JSON.stringify(location.slice(0, 200))}, not a peer connect path`)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  return { secure, host, port, path: `${url.pathname}${url.search}`, certHash: secure ? from.certHash : undefined }
}

/** Options of {@link TunnelPeerConnector}. */
export interface TunnelPeerConnectorOptions {
  /** Tunnel servers (`ws://…`, `wss://…[#CERT_HASH]`, or parsed), tried in order. */
  servers: string | TunnelServerSpec | ReadonlyArray<string | TunnelServerSpec>
  /** Our identity: the Noise static key, and the PeerId the listener expects. */
  identity: Identity
  /**
   * Certificates to trust besides the system's CAs, for `wss://` without a pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds for each server's TCP, TLS, upgrade and the listener's join.
   * @default 10_000
   */
  connectTimeout?: number
  /**
   * Milliseconds for the Noise handshake.
   * @default 10_000
   */
  handshakeTimeout?: number
}

/** Options of {@link TunnelPeerConnector.connectPeer}. */
export interface ConnectTunnelPeerOptions {
  /**
   * Cancels the attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Connects to peers by PeerId over the tunnel's peer path.
 *
 * @example
 * ```ts
 * import { TunnelPeerConnector } from 'peerlink'
 *
 * const connector = new TunnelPeerConnector({ servers: 'wss://tunnel.example.com:8443#weOs…', identity })
 * const conn = await connector.connectPeer('12D3KooW…')   // verified: conn.remotePeerId
 * ```
 */
export class TunnelPeerConnector {
  readonly #specs: TunnelServerSpec[]
  readonly #identity: Identity
  readonly #ca: TunnelPeerConnectorOptions['ca']
  readonly #connectTimeout: number
  readonly #handshakeTimeout: number

  /** @throws {@link InvalidArgumentError} or `InvalidServerSpecError` for bad options. */
  constructor(options: TunnelPeerConnectorOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TunnelPeerConnector needs options')
    const servers = Array.isArray(options.servers) ? (options.servers as ReadonlyArray<string | TunnelServerSpec>) : [options.servers as string | TunnelServerSpec]
    if (servers.length === 0) throw new InvalidArgumentError('servers must name at least one tunnel server')
    this.#specs = servers.map((server) => (typeof server === 'string' ? parseTunnelSpec(server) : server))
    const { identity } = options
    if (identity === null || typeof identity !== 'object' || !isPeerId(identity.peerId)) throw new InvalidArgumentError('identity must be an Identity')
    this.#identity = identity
    this.#ca = options.ca
    this.#connectTimeout = positive(options.connectTimeout, 'connectTimeout')
    this.#handshakeTimeout = positive(options.handshakeTimeout, 'handshakeTimeout')
  }

  /**
   * Connects to `peerId`: resolves with an encrypted stream whose remote has proved
   * that key (and has verified ours). Servers are tried in order until one joins us.
   *
   * @throws {@link InvalidArgumentError} at once when `peerId` is not a PeerId.
   * @throws `PeerIdentityMismatchError` (rejects, `ERR_PEER_IDENTITY_MISMATCH`) when the far end proves another key.
   * @throws {@link TunnelPeerNotFoundError} (rejects) when no server knows a listener of that PeerId.
   * @throws `ConnectionClosedError`, `HandshakeTimeoutError`, {@link TunnelUnavailableError}, … (rejects) for the other failures.
   * @throws {@link AbortError} (rejects) when `signal` fires first.
   */
  connectPeer(peerId: string, options: ConnectTunnelPeerOptions = {}): Promise<TunnelSecureConnection> {
    if (!isPeerId(peerId)) throw new InvalidArgumentError('peerId must be a PeerId')
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
    return this.#connect(peerId, options.signal)
  }

  async #connect(peerId: string, signal: AbortSignal | undefined): Promise<TunnelSecureConnection> {
    throwIfAborted(signal)
    const errors: PeerlinkError[] = []
    for (const server of this.#specs) {
      let stream: WebSocketDuplex
      try {
        stream = await openTunnelPeerStream({ server, peerId, from: this.#identity.peerId, timeout: this.#connectTimeout, ...(this.#ca === undefined ? {} : { ca: this.#ca }), ...(signal === undefined ? {} : { signal }) })
      } catch (err) {
        if (err instanceof AbortError || signal?.aborted === true) throw err
        errors.push(err as PeerlinkError)
        continue
      }
      return secureTunnelStream({ stream, isInitiator: true, keyPair: this.#identity.keyPair, expectedPeerId: peerId, handshakeTimeout: this.#handshakeTimeout, ...(signal === undefined ? {} : { signal }) })
    }
    throw errors.find((e) => e instanceof TunnelPeerNotFoundError) ?? errors.at(-1)!
  }
}

function positive(value: number | undefined, name: string): number {
  const result = value ?? 10_000
  if (!(Number.isFinite(result) && result > 0)) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`)
  return result
}

function ignore(): void {}
