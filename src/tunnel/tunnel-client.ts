/**
 * The tunnel client: exposes local TCP services through a tunnel server. It keeps one
 * control WebSocket logged in; for each connection the server announces on it, it
 * connects to the local service and joins it to a transfer WebSocket of its own.
 *
 * It reconnects by itself: after a failure it tries the next configured server, with
 * exponential backoff and jitter; after a lost connection it first tries the same one
 * again (which kept its name and ports for the retention time). It keeps asking for the
 * name it was given, so the name survives reconnections. Refusals that retrying cannot
 * fix (bad credentials, a name held by someone else, another protocol version, a newer
 * login of the same device) stop it.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import type WebSocket from 'ws'
import { AbortError, ConnectionClosedError, InvalidArgumentError, type PeerlinkError } from '../errors.js'
import { isPeerId } from '../identity/peer-id.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../server-spec.js'
import { joinStreams } from './join-streams.js'
import { ReconnectLoop, startReconnecting } from './reconnect-loop.js'
import { transferProof } from './tunnel-auth.js'
import type {
  ExposedPort,
  TunnelClientEvents,
  TunnelClientOptions,
  TunnelClientState,
  TunnelEndpoints,
} from './tunnel-client-options.js'
import { type TunnelEndpoint, controlPath, formatTunnelAddress, openTransferSocket, transferPathFor, tunnelEndpointUrl } from './tunnel-connect.js'
import { CONTROL_DIALECT, isReplacedError, loginTunnel } from './tunnel-login.js'
import {
  TRANSFER_PATH,
  TUNNEL_MAX_PORTS,
  TUNNEL_MAX_TOKEN_LENGTH,
  type TunnelConnectionMessage,
  type TunnelRejectReason,
  type TunnelWelcomeMessage,
  encodeTunnelClientMessage,
} from './tunnel-messages.js'
import { normalizeTunnelName } from './tunnel-name.js'
import { serveTunnelSocket } from './tunnel-session.js'
import { WebSocketStream } from './websocket-stream.js'

export type * from './tunnel-client-options.js'

/** Largest frame accepted on a transfer socket. */
const MAX_TRANSFER_FRAME = 4 * 1024 * 1024

interface Session {
  ws: WebSocket
  endpoint: TunnelEndpoint
  welcome: TunnelWelcomeMessage
  transferPath: string
  attach: (onMessage: (data: Buffer, isBinary: boolean) => void) => void
}

/**
 * A tunnel client (see the module notes). Create it and {@link TunnelClient.start} it,
 * or use {@link exposeServices}; stop it with {@link TunnelClient.close}.
 *
 * @example
 * ```ts
 * import { TunnelClient } from 'peerlink'
 *
 * const tunnel = new TunnelClient({ servers: 'wss://tunnel.example.com:8443#weOs…', ports: [8080, 22], name: 'kitchen', token })
 * tunnel.on('connected', (e) => console.log(e.httpUrl, e.ports))
 * tunnel.start()
 * ```
 */
export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  readonly #specs: TunnelServerSpec[]
  readonly #targets: Map<number, { host: string; port: number }>
  readonly #http: number
  readonly #token: string | undefined
  readonly #identity: TunnelClientOptions['identity']
  readonly #ca: TunnelClientOptions['ca']
  readonly #connectTimeout: number
  readonly #localConnectTimeout: number
  readonly #heartbeatMs: number
  readonly #maxConnections: number
  readonly #fixedName: string | undefined
  readonly #sockets = new Set<net.Socket>()
  readonly #streams = new Set<WebSocketStream>()
  readonly #loop: ReconnectLoop<TunnelServerSpec, Session>
  #name: string | undefined
  #endpoints: TunnelEndpoints | undefined

  /** @throws {@link InvalidArgumentError} or `InvalidServerSpecError` for bad options. */
  constructor(options: TunnelClientOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('TunnelClient needs options')
    const servers = Array.isArray(options.servers) ? (options.servers as ReadonlyArray<string | TunnelServerSpec>) : [options.servers as string | TunnelServerSpec]
    if (servers.length === 0) throw new InvalidArgumentError('servers must name at least one tunnel server')
    this.#specs = servers.map((server) => (typeof server === 'string' ? parseTunnelSpec(server) : checkSpec(server)))
    const localHost = options.localHost ?? '127.0.0.1'
    if (typeof localHost !== 'string' || localHost.length === 0) throw new InvalidArgumentError('localHost must be a host name or an IP address')
    if (!Array.isArray(options.ports) || options.ports.length === 0 || options.ports.length > TUNNEL_MAX_PORTS) {
      throw new InvalidArgumentError(`ports must list 1 to ${TUNNEL_MAX_PORTS} local ports`)
    }
    this.#targets = new Map()
    for (const item of options.ports as ReadonlyArray<number | ExposedPort>) {
      const port = typeof item === 'number' ? item : item?.port
      const host = typeof item === 'number' ? localHost : item?.host ?? localHost
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('ports must be port numbers from 1 to 65535 (or { port, host })')
      if (typeof host !== 'string' || host.length === 0) throw new InvalidArgumentError('a port host must be a host name or an IP address')
      if (this.#targets.has(port)) throw new InvalidArgumentError(`port ${port} is listed twice`)
      this.#targets.set(port, { host, port })
    }
    const first = this.#targets.keys().next().value as number
    if (options.http === false) this.#http = 0
    else if (options.http === undefined) this.#http = first
    else if (this.#targets.has(options.http)) this.#http = options.http
    else throw new InvalidArgumentError('http must be one of the exposed ports, or false')
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length === 0 || options.token.length > TUNNEL_MAX_TOKEN_LENGTH)) {
      throw new InvalidArgumentError(`token must be a string of 1 to ${TUNNEL_MAX_TOKEN_LENGTH} characters`)
    }
    const { identity } = options
    if (identity !== undefined && (identity === null || typeof identity !== 'object' || !isPeerId(identity.peerId))) throw new InvalidArgumentError('identity must be an Identity')
    if (options.token === undefined && identity === undefined) throw new InvalidArgumentError('give a token, an identity, or both')
    this.#token = options.token
    this.#identity = identity
    this.#fixedName = options.name === undefined ? undefined : normalizeTunnelName(options.name)
    this.#name = this.#fixedName
    this.#ca = options.ca
    this.#connectTimeout = positive(options.connectTimeout, 10_000, 'connectTimeout')
    this.#localConnectTimeout = positive(options.localConnectTimeout, 5_000, 'localConnectTimeout')
    this.#heartbeatMs = positive(options.heartbeatMs, 15_000, 'heartbeatMs')
    const maxConnections = options.maxConnections ?? 1_000
    if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new InvalidArgumentError('maxConnections must be a positive integer')
    this.#maxConnections = maxConnections
    this.#loop = new ReconnectLoop(this.#specs, options, {
      login: (spec) => this.#login(spec),
      serve: (session) => this.#serve(session),
      attemptFailed: (error) => {
        // The name we were given lapsed and someone else has it now: take a new one.
        if (error.code === 'ERR_TUNNEL_NAME_TAKEN' && this.#fixedName === undefined && this.#name !== undefined) this.#name = undefined
      },
      // A name the server gave us and someone took while we were away is not fatal
      // (attemptFailed has dropped it: the next attempt asks for a new one); a name the
      // user fixed is.
      isFatal: (error) => (error.code === 'ERR_TUNNEL_NAME_TAKEN' ? this.#fixedName !== undefined : isFatal(error)),
      disconnected: (error, retryInMs) => this.emit('disconnected', error, retryInMs),
      release: () => this.#release(),
      closed: (error) => this.emit('close', error),
    })
  }

  /** Where the client is in its life. */
  get state(): TunnelClientState {
    const state = this.#loop.state
    return state === 'serving' ? 'connected' : state
  }

  /** The endpoints of the current (or last) login, `undefined` before the first. */
  get endpoints(): TunnelEndpoints | undefined {
    return this.#endpoints
  }

  get #closed(): boolean {
    return this.#loop.state === 'closed'
  }

  /** How many servers the client was given. */
  get serverCount(): number {
    return this.#specs.length
  }

  /** Tunnelled connections open now. */
  get activeConnections(): number {
    return this.#streams.size
  }

  /** Starts connecting (and reconnecting). Idempotent. */
  start(): void {
    this.#loop.start()
  }

  /**
   * Stops: closes the control socket (the server then keeps the name and ports for its
   * retention time) and every tunnelled connection. Idempotent.
   */
  close(): Promise<void> {
    return this.#loop.close()
  }

  async #release(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    const streamsClosed = [...this.#streams].map((stream) => new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve()))))
    for (const stream of this.#streams) stream.terminate()
    await Promise.all(streamsClosed)
  }

  async #login(spec: TunnelServerSpec): Promise<Session> {
    const path = `${controlPath(spec.path)}${this.#name === undefined ? '' : `?name=${this.#name}`}`
    const endpoint: TunnelEndpoint = { secure: spec.secure, host: spec.host, port: spec.port, path, certHash: spec.certHash }
    const hello = { ports: [...this.#targets.keys()], ...(this.#http === this.#targets.keys().next().value ? {} : { http: this.#http }), ...(this.#name === undefined ? {} : { name: this.#name }) }
    const login = await loginTunnel({ endpoint, hello, token: this.#token, identity: this.#identity, ca: this.#ca, timeout: this.#connectTimeout, signal: this.#loop.signal })
    if (this.#closed) {
      login.ws.terminate()
      throw new AbortError()
    }
    return { ...login, transferPath: transferPathFor(login.endpoint.path) }
  }

  /** Serves a logged-in session until its control socket closes; resolves with why. */
  #serve(session: Session): Promise<PeerlinkError | undefined> {
    const { ws, welcome } = session
    this.#name = welcome.name
    const host = welcome.host
    this.#endpoints = {
      server: tunnelEndpointUrl({ ...session.endpoint, path: session.transferPath.slice(0, -TRANSFER_PATH.length) }),
      name: welcome.name,
      httpUrl: welcome.httpUrl,
      host,
      ports: welcome.ports.map((p) => ({ local: p.local, public: p.public, address: `${host.includes(':') ? `[${host}]` : host}:${p.public}` })),
      resumed: welcome.resumed,
    }
    const ended = serveTunnelSocket({
      ws,
      attach: session.attach,
      dialect: CONTROL_DIALECT,
      where: formatTunnelAddress(session.endpoint),
      name: this.#name,
      heartbeatMs: this.#heartbeatMs,
      dispatch: (message) => {
        if (message.type !== 'connection') return false
        this.#accept(session, message)
        return true
      },
      signal: this.#loop.signal,
    })
    this.emit('connected', this.#endpoints)
    return ended
  }

  /** Joins an announced connection to its local service. */
  #accept(session: Session, message: TunnelConnectionMessage): void {
    const reject = (reason: TunnelRejectReason) => {
      if (session.ws.readyState === session.ws.OPEN) session.ws.send(encodeTunnelClientMessage({ type: 'reject', id: message.id, reason }))
    }
    const target = this.#targets.get(message.port)
    if (target === undefined) return reject('unreachable')
    if (this.#sockets.size >= this.#maxConnections) return reject('limit')
    this.emit('connection', { port: message.port, remote: message.remote })
    const local = net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
    this.#sockets.add(local)
    local.once('close', () => this.#sockets.delete(local))
    local.setTimeout(this.#localConnectTimeout, () => local.destroy(new ConnectionClosedError('local service did not accept in time')))
    const onError = (err: NodeJS.ErrnoException) => reject(err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable')
    local.once('error', onError)
    local.once('connect', () => {
      local.setTimeout(0)
      local.setNoDelay(true)
      local.off('error', onError)
      local.on('error', () => {})
      const proof = transferProof(session.welcome.secret, message.id)
      const endpoint: TunnelEndpoint = {
        ...session.endpoint,
        path: `${session.transferPath}?id=${Buffer.from(message.id).toString('base64url')}&proof=${proof.toString('base64url')}`,
      }
      openTransferSocket({ endpoint, timeout: this.#connectTimeout, signal: this.#loop.signal, ...(this.#ca === undefined ? {} : { ca: this.#ca }) }).then(
        ({ socket, head }) => {
          // Over TLS, frames are masked with a zero key (nothing on the path can see them).
          const stream = new WebSocketStream(socket, { role: 'client', zeroMask: endpoint.secure, head, maxFrameBytes: MAX_TRANSFER_FRAME })
          if (this.#closed) {
            stream.terminate()
            local.destroy()
            return
          }
          this.#streams.add(stream)
          stream.once('close', () => this.#streams.delete(stream))
          joinStreams(local, stream)
        },
        () => local.destroy(),
      )
    })
  }
}

/**
 * Exposes local services: creates a {@link TunnelClient}, starts it, and resolves once it
 * is logged in (`client.endpoints` then says where the services are). After that it
 * reconnects by itself.
 *
 * @throws `TunnelAuthError`, `TunnelNameTakenError`, `TunnelProtocolError` (rejects) when the server refuses.
 * @throws `ConnectFailedError`, `TunnelUnavailableError`, … (rejects) when every server failed once; the client is closed.
 * @throws `AbortError` (rejects) when `options.signal` fires first.
 *
 * @example
 * ```ts
 * import { exposeServices } from 'peerlink'
 *
 * const tunnel = await exposeServices({
 *   servers: 'wss://tunnel.example.com:8443#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk',
 *   ports: [8080, { port: 22, host: '192.168.1.20' }],
 *   name: 'kitchen',
 *   token: process.env.TUNNEL_TOKEN,
 * })
 * console.log(tunnel.endpoints?.httpUrl)   // e.g. https://kitchen.tunnel.example.com/
 * ```
 */
export async function exposeServices(options: TunnelClientOptions): Promise<TunnelClient> {
  return startReconnecting(new TunnelClient(options), 'connected', 'TunnelClient')
}

function isFatal(error: PeerlinkError): boolean {
  return (
    error.code === 'ERR_TUNNEL_AUTH' ||
    error.code === 'ERR_TUNNEL_NAME_TAKEN' ||
    error.code === 'ERR_TUNNEL_PROTOCOL' ||
    error.code === 'ERR_INVALID_ARGUMENT' ||
    isReplacedError(error)
  )
}

function checkSpec(spec: TunnelServerSpec): TunnelServerSpec {
  if (spec === null || typeof spec !== 'object' || spec.kind !== 'tunnel') throw new InvalidArgumentError('servers must be tunnel URLs or parsed tunnel specs')
  return spec
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const result = value ?? fallback
  if (!(Number.isFinite(result) && result > 0)) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`)
  return result
}
