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
import { EventEmitter, setMaxListeners } from 'node:events'
import net from 'node:net'
import type WebSocket from 'ws'
import { checkBackoffOptions, reconnectDelay } from '../beacon/backoff.js'
import {
  AbortError,
  ConnectionClosedError,
  InvalidArgumentError,
  PeerlinkError,
  TunnelProtocolError,
  TunnelUnavailableError,
} from '../errors.js'
import { isPeerId } from '../identity/peer-id.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../server-spec.js'
import { joinStreams } from './join-streams.js'
import { transferProof } from './tunnel-auth.js'
import type {
  ExposedPort,
  TunnelClientEvents,
  TunnelClientOptions,
  TunnelClientState,
  TunnelEndpoints,
} from './tunnel-client-options.js'
import { type TunnelEndpoint, controlPath, formatTunnelAddress, openTransferSocket, transferPathFor, tunnelEndpointUrl } from './tunnel-connect.js'
import { isReplacedError, loginTunnel, tunnelErrorFromReply } from './tunnel-login.js'
import {
  TRANSFER_PATH,
  TUNNEL_MAX_PORTS,
  TUNNEL_MAX_TOKEN_LENGTH,
  type TunnelConnectionMessage,
  type TunnelRejectReason,
  type TunnelServerMessage,
  type TunnelWelcomeMessage,
  decodeTunnelServerMessage,
  encodeTunnelClientMessage,
} from './tunnel-messages.js'
import { normalizeTunnelName } from './tunnel-name.js'
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
  readonly #backoff: ReturnType<typeof checkBackoffOptions>
  readonly #signal: AbortSignal | undefined
  readonly #fixedName: string | undefined
  readonly #sockets = new Set<net.Socket>()
  readonly #streams = new Set<WebSocketStream>()
  readonly #life = lifeController()
  #name: string | undefined
  #state: TunnelClientState = 'idle'
  #specIndex = 0
  #failures = 0
  #session: Session | undefined
  #endpoints: TunnelEndpoints | undefined
  #loop: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #closeError: PeerlinkError | undefined
  readonly #onAbort = () => void this.close()

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
    this.#backoff = checkBackoffOptions(options)
    this.#signal = options.signal
  }

  /** Where the client is in its life. */
  get state(): TunnelClientState {
    return this.#state
  }

  /** The endpoints of the current (or last) login, `undefined` before the first. */
  get endpoints(): TunnelEndpoints | undefined {
    return this.#endpoints
  }

  get #closed(): boolean {
    return this.#state === 'closed'
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
    if (this.#state !== 'idle') return
    if (this.#signal?.aborted === true) {
      void this.close()
      return
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true })
    this.#loop = this.#run()
  }

  /**
   * Stops: closes the control socket (the server then keeps the name and ports for its
   * retention time) and every tunnelled connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const wasIdle = this.#state === 'idle'
    this.#state = 'closed'
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#life.abort()
    const session = this.#session
    if (session !== undefined) {
      const closed = new Promise<void>((resolve) => (session.ws.readyState === session.ws.CLOSED ? resolve() : session.ws.once('close', () => resolve())))
      session.ws.close(1000, 'closing')
      const timer = setTimeout(() => session.ws.terminate(), 1_000)
      await closed
      clearTimeout(timer)
    }
    for (const socket of this.#sockets) socket.destroy()
    const streamsClosed = [...this.#streams].map((stream) => new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve()))))
    for (const stream of this.#streams) stream.terminate()
    await Promise.all(streamsClosed)
    if (!wasIdle) await this.#loop
    this.emit('close', this.#closeError)
  }

  async #run(): Promise<void> {
    while (this.#state !== 'closed') {
      const spec = this.#specs[this.#specIndex]!
      this.#state = 'connecting'
      let error: PeerlinkError | undefined
      try {
        const session = await this.#login(spec)
        this.#failures = 0
        error = await this.#serve(session)
      } catch (err) {
        if (this.#closed) return
        error = err instanceof PeerlinkError ? err : new TunnelUnavailableError((err as Error).message, { cause: err })
        if (error.code === 'ERR_TUNNEL_NAME_TAKEN' && this.#fixedName === undefined && this.#name !== undefined) {
          // The name we were given lapsed and someone else has it now: take a new one.
          this.#name = undefined
        } else if (isFatal(error)) {
          this.#closeError = error
          this.emit('disconnected', error, undefined)
          void this.close()
          return
        }
        this.#failures++
        this.#specIndex = (this.#specIndex + 1) % this.#specs.length
      }
      if (this.#closed) return
      if (error !== undefined && isFatal(error)) {
        this.#closeError = error
        this.emit('disconnected', error, undefined)
        void this.close()
        return
      }
      const delay = reconnectDelay(this.#failures, this.#backoff)
      this.#state = 'waiting'
      this.emit('disconnected', error, delay)
      await sleep(delay, this.#life.signal)
    }
  }

  async #login(spec: TunnelServerSpec): Promise<Session> {
    const path = `${controlPath(spec.path)}${this.#name === undefined ? '' : `?name=${this.#name}`}`
    const endpoint: TunnelEndpoint = { secure: spec.secure, host: spec.host, port: spec.port, path, certHash: spec.certHash }
    const hello = { ports: [...this.#targets.keys()], ...(this.#http === this.#targets.keys().next().value ? {} : { http: this.#http }), ...(this.#name === undefined ? {} : { name: this.#name }) }
    const login = await loginTunnel({ endpoint, hello, token: this.#token, identity: this.#identity, ca: this.#ca, timeout: this.#connectTimeout, signal: this.#life.signal })
    if (this.#state === 'closed') {
      login.ws.terminate()
      throw new AbortError()
    }
    return { ...login, transferPath: transferPathFor(login.endpoint.path) }
  }

  /** Serves a logged-in session until its control socket closes; resolves with why. */
  #serve(session: Session): Promise<PeerlinkError | undefined> {
    const { ws, welcome } = session
    this.#session = session
    this.#name = welcome.name
    this.#state = 'connected'
    const host = welcome.host
    this.#endpoints = {
      server: tunnelEndpointUrl({ ...session.endpoint, path: session.transferPath.slice(0, -TRANSFER_PATH.length) }),
      name: welcome.name,
      httpUrl: welcome.httpUrl,
      host,
      ports: welcome.ports.map((p) => ({ local: p.local, public: p.public, address: `${host.includes(':') ? `[${host}]` : host}:${p.public}` })),
      resumed: welcome.resumed,
    }
    return new Promise<PeerlinkError | undefined>((resolve) => {
      let error: PeerlinkError | undefined
      let lastHeard = performance.now()
      const heartbeat = setInterval(() => {
        if (performance.now() - lastHeard > 2 * this.#heartbeatMs) {
          error ??= new TunnelUnavailableError(`tunnel server ${formatTunnelAddress(session.endpoint)} went silent`)
          ws.terminate()
          return
        }
        if (ws.readyState === ws.OPEN) ws.ping()
      }, this.#heartbeatMs)
      const heard = () => (lastHeard = performance.now())
      ws.on('ping', heard)
      ws.on('pong', heard)
      ws.on('error', () => {})
      session.attach((data: Buffer, isBinary: boolean) => {
        heard()
        let message: TunnelServerMessage
        try {
          if (!isBinary) throw new TunnelProtocolError('control messages are binary frames')
          message = decodeTunnelServerMessage(data)
        } catch (err) {
          error ??= err as PeerlinkError
          ws.close(1002, 'protocol error')
          return
        }
        switch (message.type) {
          case 'connection':
            this.#accept(session, message)
            return
          case 'ping':
            ws.send(encodeTunnelClientMessage({ type: 'pong', id: message.id }))
            return
          case 'error':
            if (message.code !== 'rate-limited') error ??= tunnelErrorFromReply(message, formatTunnelAddress(session.endpoint), this.#name)
            return
          case 'pong':
            return
          default:
            error ??= new TunnelProtocolError(`tunnel server sent ${message.type} after the login`)
            ws.close(1002, 'protocol error')
        }
      })
      const onClose = (code: number) => {
        clearInterval(heartbeat)
        if (this.#session === session) this.#session = undefined
        if (this.#state === 'closed') return resolve(undefined)
        resolve(error ?? new TunnelUnavailableError(`tunnel server ${formatTunnelAddress(session.endpoint)} closed the control socket (${code})`))
      }
      if (ws.readyState === ws.CLOSED) onClose(1006)
      else ws.once('close', onClose)
      this.emit('connected', this.#endpoints!)
    })
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
      openTransferSocket({ endpoint, timeout: this.#connectTimeout, signal: this.#life.signal, ...(this.#ca === undefined ? {} : { ca: this.#ca }) }).then(
        ({ socket, head }) => {
          // Over TLS, frames are masked with a zero key (nothing on the path can see them).
          const stream = new WebSocketStream(socket, { role: 'client', zeroMask: endpoint.secure, head, maxFrameBytes: MAX_TRANSFER_FRAME })
          if (this.#state === 'closed') {
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
  const client = new TunnelClient(options)
  let failures = 0
  const outcome = new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      client.off('connected', onConnected)
      client.off('disconnected', onDisconnected)
      client.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onConnected = () => done()
    const onDisconnected = (error: PeerlinkError | undefined) => {
      if (++failures >= client.serverCount || error === undefined) done(error ?? new TunnelUnavailableError('no tunnel server could be reached'))
    }
    const onClose = (error: PeerlinkError | undefined) => done(error ?? new AbortError('TunnelClient closed'))
    client.on('connected', onConnected)
    client.on('disconnected', onDisconnected)
    client.on('close', onClose)
  })
  client.start()
  try {
    await outcome
  } catch (err) {
    await client.close()
    throw err
  }
  return client
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The client's lifetime signal: every transfer socket being opened listens to it, so it has no listener limit. */
function lifeController(): AbortController {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal)
  return controller
}
