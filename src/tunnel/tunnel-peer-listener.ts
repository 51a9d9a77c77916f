/**
 * A peer listening over the tunnel's peer path (see `docs/tunnel-protocol.md`, "Peer
 * path"): it keeps a socket to a tunnel server registered under its PeerId (logged in
 * with a signature of its identity, and a token if the server wants one). For each
 * `peer-connection` announced there it opens a transfer socket, which the server joins
 * to the connecting peer's socket, and runs the verified Noise handshake over it as the
 * responder, expecting the key of the PeerId the connecting peer gave. Verified
 * connections are emitted as `connection`.
 *
 * It reconnects by itself, as the tunnel client does: after a failure it tries the next
 * configured server, with exponential backoff and jitter. Refusals that retrying cannot
 * fix (credentials, protocol, a newer login of the same peer) stop it.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import type WebSocket from 'ws'
import type { BackoffOptions } from '../beacon/backoff.js'
import { AbortError, InvalidArgumentError, type PeerlinkError } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { isPeerId } from '../identity/peer-id.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../server-spec.js'
import { ReconnectLoop, startReconnecting } from './reconnect-loop.js'
import { transferProof } from './tunnel-auth.js'
import { type TunnelEndpoint, formatTunnelAddress, openTunnelSocket, tunnelEndpointUrl } from './tunnel-connect.js'
import { type TunnelSocketDialect, awaitTunnelWelcome, isReplacedError } from './tunnel-login.js'
import { TRANSFER_PATH, TUNNEL_MAX_MESSAGE_BYTES, TUNNEL_MAX_TOKEN_LENGTH, TUNNEL_PROTOCOL_VERSION, type TunnelAddress, type TunnelRejectReason } from './tunnel-messages.js'
import { signTunnelPeerListen } from './tunnel-peer-auth.js'
import { TUNNEL_PEER_MAX_FRAME } from './tunnel-peer-connector.js'
import {
  PEER_LISTEN_PATH,
  type TunnelPeerConnectionMessage,
  type TunnelPeerListenerMessage,
  type TunnelPeerWelcomeMessage,
  decodeTunnelPeerServerMessage,
  encodeTunnelPeerMessage,
} from './tunnel-peer-messages.js'
import { type TunnelSecureConnection, secureTunnelStream } from './tunnel-secure-connection.js'
import { serveTunnelSocket } from './tunnel-session.js'
import { WebSocketDuplex } from './websocket-duplex.js'

/** Who wants to connect (given to {@link TunnelPeerListenerOptions.accept}). */
export interface TunnelPeerRequest {
  /** The PeerId the connecting peer says it has (its handshake must prove it). */
  from: string
  /** Its address as the tunnel server sees it. */
  remote: TunnelAddress
}

/** Options of {@link TunnelPeerListener}. */
export interface TunnelPeerListenerOptions extends BackoffOptions {
  /** Tunnel servers (`ws://…`, `wss://…[#CERT_HASH]`, or parsed), tried in order. */
  servers: string | TunnelServerSpec | ReadonlyArray<string | TunnelServerSpec>
  /** Our identity: the PeerId we listen under, and the Noise static key. */
  identity: Identity
  /**
   * A device token, for servers that do not allow our PeerId by itself.
   * @default undefined
   */
  token?: string
  /**
   * Certificates to trust besides the system's CAs, for `wss://` without a pin.
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Decides, before anything is opened, whether to take a connection (refused ones get
   * `reject {reason: "refused"}`).
   * @default every connection is taken
   */
  accept?: (request: TunnelPeerRequest) => boolean
  /**
   * Milliseconds for TCP, TLS, the upgrade and the login of one attempt, and for a
   * transfer socket.
   * @default 10_000
   */
  connectTimeout?: number
  /**
   * Milliseconds for the Noise handshake of each connection.
   * @default 10_000
   */
  handshakeTimeout?: number
  /**
   * Milliseconds between our heartbeats; a socket silent for twice this is replaced.
   * @default 15_000
   */
  heartbeatMs?: number
  /**
   * Handshakes in progress at once; more connections are refused (`limit`).
   * @default 64
   */
  maxHandshakes?: number
  /**
   * Closes the listener when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Where a {@link TunnelPeerListener} is in its life. */
export type TunnelPeerListenerState = 'idle' | 'connecting' | 'listening' | 'waiting' | 'closed'

/** Events of a {@link TunnelPeerListener}. */
export interface TunnelPeerListenerEvents {
  /** Registered at a server (its URL). */
  listening: [server: string]
  /** A verified connection: its `remotePeerId` proved its key; `request` says where it came from. */
  connection: [connection: TunnelSecureConnection, request: TunnelPeerRequest]
  /** A connection failed before it was verified (`ERR_PEER_IDENTITY_MISMATCH`, a closed stream, …). */
  handshakeError: [error: PeerlinkError, request: TunnelPeerRequest]
  /** An attempt failed or the socket was lost; `retryInMs` until the next attempt (absent when closing). */
  disconnected: [error: PeerlinkError | undefined, retryInMs: number | undefined]
  /** The listener stopped: `close()`, its signal, or a refusal that retrying cannot fix (`error`). */
  close: [error: PeerlinkError | undefined]
}

interface Session {
  ws: WebSocket
  endpoint: TunnelEndpoint
  welcome: TunnelPeerWelcomeMessage
  transferPath: string
  /** Hands the socket's messages to `onMessage`, first those that arrived since the welcome. */
  attach: (onMessage: (data: Buffer, isBinary: boolean) => void) => void
}

/** The login of a listen socket. */
const LISTEN_DIALECT: TunnelSocketDialect<TunnelPeerWelcomeMessage> = {
  socket: 'listen',
  self: 'peer',
  textFrameError: 'messages are binary frames',
  welcome: 'peer-welcome',
  decode: decodeTunnelPeerServerMessage,
  pong: (id) => encodeTunnelPeerMessage({ type: 'pong', id }),
  closeDetail: (code) => `${code}`,
}

/**
 * A listening peer on the tunnel (see the module notes). Create it and
 * {@link TunnelPeerListener.start} it, or use {@link listenTunnelPeer}.
 *
 * @example
 * ```ts
 * import { TunnelPeerListener, loadOrCreateIdentity } from 'peerlink'
 *
 * const listener = new TunnelPeerListener({
 *   servers: 'wss://tunnel.example.com:8443',
 *   identity: await loadOrCreateIdentity('./peer.key'),
 *   accept: (request) => allowed.has(request.from),   // refuse others before any handshake
 * })
 * listener.on('connection', (conn, request) => conn.pipe(conn))   // verified: conn.remotePeerId === request.from
 * listener.start()
 * ```
 */
export class TunnelPeerListener extends EventEmitter<TunnelPeerListenerEvents> {
  readonly #specs: TunnelServerSpec[]
  readonly #identity: Identity
  readonly #token: string | undefined
  readonly #ca: TunnelPeerListenerOptions['ca']
  readonly #accept: (request: TunnelPeerRequest) => boolean
  readonly #connectTimeout: number
  readonly #handshakeTimeout: number
  readonly #heartbeatMs: number
  readonly #maxHandshakes: number
  readonly #handshakes = new Set<WebSocketDuplex>()
  readonly #loop: ReconnectLoop<TunnelServerSpec, Session>

  /** @throws {@link InvalidArgumentError} or `InvalidServerSpecError` for bad options. */
  constructor(options: TunnelPeerListenerOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TunnelPeerListener needs options')
    const servers = Array.isArray(options.servers) ? (options.servers as ReadonlyArray<string | TunnelServerSpec>) : [options.servers as string | TunnelServerSpec]
    if (servers.length === 0) throw new InvalidArgumentError('servers must name at least one tunnel server')
    this.#specs = servers.map((server) => (typeof server === 'string' ? parseTunnelSpec(server) : server))
    const { identity } = options
    if (identity === null || typeof identity !== 'object' || !isPeerId(identity.peerId)) throw new InvalidArgumentError('identity must be an Identity')
    this.#identity = identity
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length === 0 || options.token.length > TUNNEL_MAX_TOKEN_LENGTH)) {
      throw new InvalidArgumentError(`token must be a string of 1 to ${TUNNEL_MAX_TOKEN_LENGTH} characters`)
    }
    this.#token = options.token
    this.#ca = options.ca
    if (options.accept !== undefined && typeof options.accept !== 'function') throw new InvalidArgumentError('accept must be a function')
    this.#accept = options.accept ?? (() => true)
    this.#connectTimeout = positive(options.connectTimeout, 10_000, 'connectTimeout')
    this.#handshakeTimeout = positive(options.handshakeTimeout, 10_000, 'handshakeTimeout')
    this.#heartbeatMs = positive(options.heartbeatMs, 15_000, 'heartbeatMs')
    const maxHandshakes = options.maxHandshakes ?? 64
    if (!Number.isInteger(maxHandshakes) || maxHandshakes < 1) throw new InvalidArgumentError('maxHandshakes must be a positive integer')
    this.#maxHandshakes = maxHandshakes
    this.#loop = new ReconnectLoop(this.#specs, options, {
      login: (spec) => this.#login(spec),
      serve: (session) => this.#serve(session),
      isFatal,
      disconnected: (error, retryInMs) => this.emit('disconnected', error, retryInMs),
      release: () => this.#release(),
      closed: (error) => this.emit('close', error),
    })
  }

  /** Where the listener is in its life. */
  get state(): TunnelPeerListenerState {
    const state = this.#loop.state
    return state === 'serving' ? 'listening' : state
  }

  get #closed(): boolean {
    return this.#loop.state === 'closed'
  }

  /** The PeerId we listen under. */
  get peerId(): string {
    return this.#identity.peerId
  }

  /** The URL of the server we are registered at now, `undefined` when not registered. */
  get server(): string | undefined {
    const session = this.#loop.session
    return session === undefined ? undefined : tunnelEndpointUrl({ ...session.endpoint, path: session.transferPath.slice(0, -TRANSFER_PATH.length) })
  }

  /** How many servers the listener was given. */
  get serverCount(): number {
    return this.#specs.length
  }

  /** Starts listening (and reconnecting). Idempotent. */
  start(): void {
    this.#loop.start()
  }

  /**
   * Stops listening: closes the socket (the server drops the registration) and aborts
   * handshakes in progress. Verified connections already emitted stay open. Idempotent.
   */
  close(): Promise<void> {
    return this.#loop.close()
  }

  #release(): void {
    for (const stream of this.#handshakes) {
      stream.destroy()
      stream.webSocket.terminate()
    }
  }

  async #login(spec: TunnelServerSpec): Promise<Session> {
    const base = spec.path.endsWith('/') ? spec.path : `${spec.path}/`
    const endpoint: TunnelEndpoint = { secure: spec.secure, host: spec.host, port: spec.port, path: `${base}${PEER_LISTEN_PATH}`, certHash: spec.certHash }
    const opened = await openTunnelSocket({
      endpoint,
      maxPayload: TUNNEL_MAX_MESSAGE_BYTES * 4,
      timeout: this.#connectTimeout,
      signal: this.#loop.signal,
      ...(this.#ca === undefined ? {} : { ca: this.#ca }),
    })
    try {
      const { welcome, attach } = await awaitTunnelWelcome(opened.ws, {
        dialect: LISTEN_DIALECT,
        answer: (nonce) => {
          const signature = signTunnelPeerListen(this.#identity, TUNNEL_PROTOCOL_VERSION, nonce, opened.binding)
          return encodeTunnelPeerMessage({ type: 'peer-listen', version: TUNNEL_PROTOCOL_VERSION, peerId: this.#identity.peerId, signature, ...(this.#token === undefined ? {} : { token: this.#token }) })
        },
        where: formatTunnelAddress(endpoint),
        timeout: this.#connectTimeout,
        signal: this.#loop.signal,
      })
      if (this.#closed) throw new AbortError()
      return { ws: opened.ws, endpoint, welcome, attach, transferPath: `${base}${TRANSFER_PATH}` }
    } catch (err) {
      opened.ws.on('error', ignore)
      opened.ws.terminate()
      throw err
    }
  }

  /** Serves a registered session until its socket closes; resolves with why. */
  #serve(session: Session): Promise<PeerlinkError | undefined> {
    const ended = serveTunnelSocket({
      ws: session.ws,
      attach: session.attach,
      dialect: LISTEN_DIALECT,
      where: formatTunnelAddress(session.endpoint),
      heartbeatMs: this.#heartbeatMs,
      dispatch: (message) => {
        if (message.type !== 'peer-connection') return false
        this.#take(session, message)
        return true
      },
      signal: this.#loop.signal,
    })
    this.emit('listening', this.server!)
    return ended
  }

  /** Takes an announced connection: transfer socket, then the verified handshake. */
  #take(session: Session, message: TunnelPeerConnectionMessage): void {
    const request: TunnelPeerRequest = { from: message.from, remote: message.remote }
    const reject = (reason: TunnelRejectReason) => send(session.ws, { type: 'reject', id: message.id, reason })
    let wanted = false
    try {
      wanted = this.#accept(request) === true
    } catch {
      wanted = false
    }
    if (!wanted) return reject('refused')
    if (this.#handshakes.size >= this.#maxHandshakes) return reject('limit')
    const proof = transferProof(session.welcome.secret, message.id)
    const endpoint: TunnelEndpoint = { ...session.endpoint, path: `${session.transferPath}?id=${Buffer.from(message.id).toString('base64url')}&proof=${proof.toString('base64url')}` }
    openTunnelSocket({ endpoint, maxPayload: TUNNEL_PEER_MAX_FRAME, timeout: this.#connectTimeout, signal: this.#loop.signal, ...(this.#ca === undefined ? {} : { ca: this.#ca }) }).then(
      ({ ws }) => {
        const stream = new WebSocketDuplex(ws)
        if (this.#closed) {
          stream.destroy()
          ws.terminate()
          return
        }
        this.#handshakes.add(stream)
        secureTunnelStream({ stream, isInitiator: false, keyPair: this.#identity.keyPair, expectedPeerId: message.from, handshakeTimeout: this.#handshakeTimeout, signal: this.#loop.signal }).then(
          (connection) => {
            this.#handshakes.delete(stream)
            // Nobody to take it (no 'connection' listener): close it rather than leak it.
            if (this.#closed || !this.emit('connection', connection, request)) connection.destroy()
          },
          (err: unknown) => {
            this.#handshakes.delete(stream)
            if (!this.#closed) this.emit('handshakeError', err as PeerlinkError, request)
          },
        )
      },
      (err: unknown) => {
        if (!this.#closed) this.emit('handshakeError', err as PeerlinkError, request)
      },
    )
  }
}

/**
 * Starts a {@link TunnelPeerListener} and resolves once it is registered at a server.
 * After that it reconnects by itself.
 *
 * @throws `TunnelAuthError`, `TunnelProtocolError` (rejects) when the server refuses.
 * @throws `ConnectFailedError`, `TunnelUnavailableError`, … (rejects) when every server failed once; the listener is closed.
 * @throws {@link AbortError} (rejects) when `options.signal` fires first.
 *
 * @example
 * ```ts
 * import { listenTunnelPeer, loadOrCreateIdentity } from 'peerlink'
 *
 * const listener = await listenTunnelPeer({ servers: 'wss://tunnel.example.com:8443', identity: await loadOrCreateIdentity('./peer.key') })
 * listener.on('connection', (conn) => conn.end(`hello ${conn.remotePeerId}\n`))
 * process.once('SIGINT', () => listener.close())
 * ```
 */
export async function listenTunnelPeer(options: TunnelPeerListenerOptions): Promise<TunnelPeerListener> {
  return startReconnecting(new TunnelPeerListener(options), 'listening', 'TunnelPeerListener')
}

function send(ws: WebSocket, message: TunnelPeerListenerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(encodeTunnelPeerMessage(message))
}

function isFatal(error: PeerlinkError): boolean {
  return error.code === 'ERR_TUNNEL_AUTH' || error.code === 'ERR_TUNNEL_PROTOCOL' || error.code === 'ERR_INVALID_ARGUMENT' || isReplacedError(error)
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const result = value ?? fallback
  if (!(Number.isFinite(result) && result > 0)) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`)
  return result
}

function ignore(): void {}
