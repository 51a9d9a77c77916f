/**
 * A client of one Beacon: a connection that comes back by itself (exponential backoff
 * with jitter) and restores what it had set up — the PeerId registration and the
 * announced rendezvous identifiers — after every reconnection.
 *
 * A Beacon may be given as several alternative addresses (instances of one fleet): each
 * reconnection attempt moves to the next one after a failure.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import type { SecureContext, TLSSocket } from 'node:tls'
import type WebSocket from 'ws'
import { AbortError, BeaconProtocolError, BeaconUnavailableError, InvalidArgumentError, throwIfAborted } from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { isPeerId } from '../identity/peer-id.js'
import { type BeaconServerSpec, parseBeaconSpec } from '../server-spec.js'
import type { TransportAddress } from '../stun/address.js'
import type {
  BeaconAddress,
  BeaconClientEvents,
  BeaconClientOptions,
  BeaconClientState,
  BeaconRequestOptions,
  OutgoingSignal,
  SignalResult,
} from './beacon-client-options.js'
import { beaconTopicKey } from './beacon-auth.js'
import { beaconSecureContext, connectBeacon, errorFromReply, formatBeaconAddress } from './beacon-connect.js'
import {
  BEACON_ID_BYTES,
  BEACON_MAX_MESSAGE_BYTES,
  BEACON_MAX_PAYLOAD_BYTES,
  BEACON_SIGNAL_KINDS,
  type BeaconLimits,
  type ClientMessage,
  type ServerMessage,
  decodeServerMessage,
  hasPeerIdForm,
} from './beacon-messages.js'
import { type BackoffOptions, checkBackoffOptions, reconnectDelay } from './backoff.js'
import { tapBinaryFrames } from './binary-frame-tap.js'
import { clientPongFrame, encodeClientFrame } from './client-frame.js'
import { type DeadlineOwner, watchDeadlines } from './deadline-sweeper.js'
import { randomId } from './random-id.js'

export type * from './beacon-client-options.js'

interface Pending {
  resolve: (message: ServerMessage) => void
  reject: (error: Error) => void
  /** `performance.now()` after which it fails (see `deadline-sweeper.ts`). */
  deadline: number
  type: ClientMessage['type']
  /** The PeerId a signal is for. */
  target: string | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/**
 * A client of one Beacon (see the module notes). Create it, {@link BeaconClient.start}
 * it (or use {@link BeaconClient.connect}), and close it with {@link BeaconClient.close}.
 *
 * @example
 * ```ts
 * import { BeaconClient } from 'peerlink'
 *
 * const beacon = await BeaconClient.connect({ identity, server: 'beacon.example.com:4264#weOs…' })
 * beacon.on('signal', (s) => console.log(s.from, s.kind, s.payload))
 * await beacon.listen()                                   // reachable by PeerId
 * await beacon.signal(otherPeerId, { kind: 'offer', session, payload })
 * ```
 */
export class BeaconClient extends EventEmitter<BeaconClientEvents> {
  readonly #identity: Identity
  readonly #specs: BeaconServerSpec[]
  readonly #ca: BeaconClientOptions['ca']
  #secureContext: SecureContext | undefined
  readonly #connectTimeout: number
  readonly #requestTimeout: number
  readonly #heartbeatMs: number
  readonly #backoff: Required<BackoffOptions>
  readonly #signal: AbortSignal | undefined
  readonly #topics = new Map<string, { topic: Uint8Array; payload: Uint8Array | undefined }>()
  readonly #pending = new Map<number, Pending>()
  #state: BeaconClientState = 'idle'
  #listening = false
  #specIndex = 0
  #failures = 0
  #nextId = 0
  #ws: WebSocket | undefined
  #socket: TLSSocket | undefined
  #server = ''
  #observed: TransportAddress | undefined
  #limits: BeaconLimits | undefined
  #attempt: AbortController | undefined
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined
  #lastHeard = 0
  #closing: Promise<void> | undefined
  readonly #onAbort = () => void this.close()
  readonly #deadlines: DeadlineOwner = { sweep: (now) => this.#sweep(now) }

  /** @throws {@link InvalidArgumentError} or `InvalidServerSpecError` for bad options. */
  constructor(options: BeaconClientOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('BeaconClient needs options')
    const { identity } = options
    if (identity === null || typeof identity !== 'object' || !isPeerId(identity.peerId)) throw new InvalidArgumentError('identity must be an Identity')
    const servers = Array.isArray(options.server) ? (options.server as readonly BeaconAddress[]) : [options.server as BeaconAddress]
    if (servers.length === 0) throw new InvalidArgumentError('server must name at least one Beacon')
    this.#specs = servers.map((server) => (typeof server === 'string' ? parseBeaconSpec(server) : checkSpec(server)))
    this.#identity = identity
    this.#ca = options.ca
    this.#connectTimeout = positive(options.connectTimeout, 10_000, 'connectTimeout')
    this.#requestTimeout = positive(options.requestTimeout, 10_000, 'requestTimeout')
    this.#heartbeatMs = positive(options.heartbeatMs, 20_000, 'heartbeatMs')
    this.#backoff = checkBackoffOptions(options)
    this.#signal = options.signal
    this.#server = formatBeaconAddress(this.#specs[0]!)
  }

  /**
   * Creates a client and resolves once its first connection is authenticated; after
   * that it reconnects by itself.
   *
   * @throws `BeaconCertMismatchError`, `ConnectFailedError`, `BeaconAuthError`, … (rejects) when the first attempt fails; the client is closed.
   */
  static async connect(options: BeaconClientOptions): Promise<BeaconClient> {
    const client = new BeaconClient(options)
    const outcome = new Promise<void>((resolve, reject) => {
      const onConnected = () => {
        client.off('disconnected', onDisconnected)
        resolve()
      }
      const onDisconnected = (error: Error | undefined) => {
        client.off('connected', onConnected)
        reject(error ?? new BeaconUnavailableError('Beacon connection closed'))
      }
      client.once('connected', onConnected)
      client.once('disconnected', onDisconnected)
      client.once('close', () => onDisconnected(new AbortError('BeaconClient closed')))
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

  /** Current state. */
  get state(): BeaconClientState {
    return this.#state
  }

  /** The Beacon in use (or tried last), `HOST:PORT`. */
  get server(): string {
    return this.#server
  }

  /** This client's address as the Beacon sees it (after the first connection). */
  get observed(): TransportAddress | undefined {
    return this.#observed
  }

  /** The limits the Beacon announced (after the first connection). */
  get limits(): BeaconLimits | undefined {
    return this.#limits
  }

  /** The identity this client proves. */
  get peerId(): string {
    return this.#identity.peerId
  }

  /** Starts connecting (and reconnecting until {@link BeaconClient.close}); idempotent. */
  start(): this {
    if (this.#state !== 'idle') return this
    if (this.#signal?.aborted === true) {
      void this.close()
      return this
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true })
    void this.#connect()
    return this
  }

  /**
   * Resolves when the client is connected (at once if it is).
   *
   * @throws `AbortError` (rejects) when `signal` fires or the client closes first.
   */
  ready(options: BeaconRequestOptions = {}): Promise<void> {
    const { signal } = options
    if (this.#state === 'connected') return Promise.resolve()
    if (this.#state === 'closed') return Promise.reject(new AbortError('BeaconClient closed'))
    throwIfAborted(signal)
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.off('connected', onConnected)
        this.off('close', onClose)
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onConnected = () => done()
      const onClose = () => done(new AbortError('BeaconClient closed'))
      const onAbort = () => done(new AbortError(undefined, { cause: signal?.reason }))
      this.on('connected', onConnected)
      this.on('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Registers this peer's PeerId token, so that others can signal it by PeerId; kept
   * across reconnections until {@link BeaconClient.unlisten}. Resolves when the Beacon
   * confirmed (at once when not connected: it is registered on connection).
   */
  async listen(options: BeaconRequestOptions = {}): Promise<void> {
    this.#listening = true
    if (this.#state === 'connected') await this.#request({ type: 'register', id: 0 }, options)
  }

  /** Removes the PeerId registration. */
  async unlisten(options: BeaconRequestOptions = {}): Promise<void> {
    this.#listening = false
    if (this.#state === 'connected') await this.#request({ type: 'unregister', id: 0 }, options)
  }

  /**
   * Announces a rendezvous identifier (symmetric mode; a string is UTF-8 encoded, 1 to
   * 64 bytes): every peer that announced it, now or later while this one is connected,
   * is introduced ({@link BeaconClientEvents.introduction}). Kept across reconnections
   * until {@link BeaconClient.withdraw}.
   *
   * @throws {@link InvalidArgumentError} at once for a bad topic or payload.
   * @throws `BeaconLimitError` (rejects) when the connection announced too many identifiers.
   */
  async announce(topic: Uint8Array | string, options: BeaconRequestOptions & { payload?: Uint8Array; mid?: Uint8Array } = {}): Promise<void> {
    const bytes = topicBytes(topic)
    const key = beaconTopicKey(bytes)
    const { payload, mid = randomId(BEACON_ID_BYTES) } = options
    if (payload !== undefined) checkBytes(payload, 0, BEACON_MAX_PAYLOAD_BYTES, 'payload')
    checkBytes(mid, BEACON_ID_BYTES, BEACON_ID_BYTES, 'mid')
    this.#topics.set(key, { topic: bytes, payload })
    if (this.#state !== 'connected') return
    try {
      await this.#request({ type: 'announce', id: 0, topic: bytes, mid, ...(payload === undefined ? {} : { payload }) }, options)
    } catch (err) {
      if (!(err instanceof BeaconUnavailableError) && this.#topics.get(key)?.topic === bytes) this.#topics.delete(key)
      throw err
    }
  }

  /** Withdraws an announced identifier. */
  async withdraw(topic: Uint8Array | string, options: BeaconRequestOptions = {}): Promise<void> {
    const bytes = topicBytes(topic)
    if (!this.#topics.delete(beaconTopicKey(bytes))) return
    if (this.#state === 'connected') await this.#request({ type: 'withdraw', id: 0, topic: bytes }, options)
  }

  /**
   * Sends a signal to the peer `to` (connect-by-PeerId).
   *
   * @throws {@link InvalidArgumentError} at once for a signal or a `to` that is not in PeerId form.
   * @throws `BeaconPeerNotFoundError` (rejects) when the peer is not registered at this Beacon.
   * @throws `BeaconUnavailableError` (rejects) when not connected, or the connection is lost first.
   */
  async signal(to: string, message: OutgoingSignal, options: BeaconRequestOptions = {}): Promise<SignalResult> {
    if (!hasPeerIdForm(to)) throw new InvalidArgumentError('to must be an Ed25519 PeerId')
    if (message === null || typeof message !== 'object' || !BEACON_SIGNAL_KINDS.includes(message.kind)) {
      throw new InvalidArgumentError(`kind must be one of ${BEACON_SIGNAL_KINDS.join(', ')}`)
    }
    checkBytes(message.session, BEACON_ID_BYTES, BEACON_ID_BYTES, 'session')
    checkBytes(message.payload, 0, BEACON_MAX_PAYLOAD_BYTES, 'payload')
    const mid = message.mid ?? randomId(BEACON_ID_BYTES)
    checkBytes(mid, BEACON_ID_BYTES, BEACON_ID_BYTES, 'mid')
    const server = this.#server
    const reply = await this.#request({ type: 'signal', id: 0, to, kind: message.kind, session: message.session, mid, payload: message.payload }, options, to)
    return { observed: reply.type === 'ok' ? (reply.observed ?? []) : [], server }
  }

  /** Measures the round trip to the Beacon in milliseconds. */
  async ping(options: BeaconRequestOptions = {}): Promise<number> {
    const start = performance.now()
    await this.#request({ type: 'ping', id: 0 }, options)
    return performance.now() - start
  }

  /** Closes the connection and stops reconnecting; pending requests reject. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#state = 'closed'
    this.#signal?.removeEventListener('abort', this.#onAbort)
    clearTimeout(this.#retryTimer)
    this.#attempt?.abort()
    this.#stopHeartbeat()
    const ws = this.#ws
    this.#ws = undefined
    this.#socket = undefined
    this.#rejectAll(new BeaconUnavailableError('BeaconClient closed'))
    if (ws !== undefined && ws.readyState !== ws.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => ws.terminate(), 1_000)
        ws.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
        ws.close(1000, 'client closing')
      })
    }
    this.emit('close')
  }

  async #connect(): Promise<void> {
    if (this.#state === 'closed') return
    this.#state = 'connecting'
    const spec = this.#specs[this.#specIndex % this.#specs.length]!
    this.#server = formatBeaconAddress(spec)
    const attempt = new AbortController()
    this.#attempt = attempt
    try {
      const { ws, socket, welcome } = await connectBeacon({
        identity: this.#identity,
        spec,
        timeout: this.#connectTimeout,
        signal: attempt.signal,
        ...(this.#ca === undefined ? {} : { secureContext: (this.#secureContext ??= beaconSecureContext(this.#ca)) }),
      })
      if (this.#closed()) {
        ws.terminate()
        return
      }
      this.#ws = ws
      this.#socket = socket
      this.#observed = welcome.observed
      this.#limits = welcome.limits
      this.#failures = 0
      this.#state = 'connected'
      this.#lastHeard = performance.now()
      // Binary frames come straight from the socket; ws reads the rest (binary-frame-tap.ts).
      ws.on('message', (data, isBinary) => this.#onMessage(ws, data as Buffer, isBinary))
      tapBinaryFrames(ws, socket, {
        masked: false,
        maxPayload: BEACON_MAX_MESSAGE_BYTES,
        onMessage: (data) => this.#onMessage(ws, data, true),
        onPing: (data) => {
          this.#lastHeard = performance.now()
          socket.write(clientPongFrame(data))
        },
      })
      ws.on('ping', () => (this.#lastHeard = performance.now()))
      ws.on('error', () => {}) // 'close' follows
      ws.once('close', (code, reason) => this.#onClose(ws, code, reason.toString()))
      this.#startHeartbeat()
      this.emit('connected', { server: this.#server, observed: welcome.observed })
      void this.#resync()
    } catch (err) {
      if (this.#closed()) return
      this.#specIndex++
      this.#scheduleRetry(err as Error)
    } finally {
      if (this.#attempt === attempt) this.#attempt = undefined
    }
  }

  /** State checks the compiler cannot narrow (the state changes across awaits). */
  #closed(): boolean {
    return this.#state === 'closed'
  }

  /** Restores the registration and the announcements on a new connection. */
  async #resync(): Promise<void> {
    const requests: Array<Promise<unknown>> = []
    if (this.#listening) requests.push(this.#request({ type: 'register', id: 0 }))
    for (const { topic, payload } of this.#topics.values()) {
      const mid = randomId(BEACON_ID_BYTES)
      requests.push(this.#request({ type: 'announce', id: 0, topic, mid, ...(payload === undefined ? {} : { payload }) }))
    }
    for (const result of await Promise.allSettled(requests)) {
      if (result.status === 'rejected' && this.#state === 'connected') this.emit('sync-error', result.reason as Error)
    }
  }

  #scheduleRetry(error: Error | undefined): void {
    this.#state = 'waiting'
    const delay = reconnectDelay(this.#failures++, this.#backoff)
    this.emit('disconnected', error)
    if (this.#state !== 'waiting') return // closed by a listener
    this.#retryTimer = setTimeout(() => void this.#connect(), delay)
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.#ws !== ws) return
    this.#ws = undefined
    this.#socket = undefined
    this.#stopHeartbeat()
    const error = new BeaconUnavailableError(`connection to Beacon ${this.#server} lost (${code}${reason ? ` ${reason}` : ''})`)
    this.#rejectAll(error)
    if (this.#state === 'closed') return
    this.#scheduleRetry(error)
  }

  #onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    this.#lastHeard = performance.now()
    let message: ServerMessage
    try {
      if (!isBinary) throw new BeaconProtocolError('Beacon messages are binary frames')
      message = decodeServerMessage(data)
    } catch {
      ws.terminate() // a Beacon that breaks the protocol: reconnect
      return
    }
    switch (message.type) {
      case 'ok':
      case 'pong':
        return this.#settle(message.id, message)
      case 'error': {
        const pending = message.id === undefined ? undefined : this.#take(message.id)
        if (pending === undefined) return
        return pending.reject(errorFromReply(message, this.#server, pending.target))
      }
      case 'signal': {
        const { from, kind, session, mid, payload, observed } = message
        this.emit('signal', { from, kind, session, mid, payload, observed, server: this.#server })
        return
      }
      case 'introduction': {
        const { topic, peerId, observed, payload, mid } = message
        this.emit('introduction', { topic, peerId, observed, payload, mid, server: this.#server })
        return
      }
      default:
        ws.terminate()
    }
  }

  #settle(id: number, message: ServerMessage): void {
    this.#take(id)?.resolve(message)
  }

  /** Removes and returns a pending request (and its abort listener). */
  #take(id: number): Pending | undefined {
    const pending = this.#pending.get(id)
    if (pending === undefined) return undefined
    this.#pending.delete(id)
    if (pending.onAbort !== undefined) pending.signal!.removeEventListener('abort', pending.onAbort)
    return pending
  }

  #request(message: ClientMessage & { id: number }, options: BeaconRequestOptions = {}, target?: string): Promise<ServerMessage> {
    const { signal } = options
    throwIfAborted(signal)
    const ws = this.#ws
    const socket = this.#socket
    if (this.#state !== 'connected' || ws === undefined || socket === undefined) {
      return Promise.reject(new BeaconUnavailableError(`not connected to Beacon ${this.#server}`))
    }
    const id = (this.#nextId = (this.#nextId + 1) >>> 0)
    message.id = id
    return new Promise<ServerMessage>((resolve, reject) => {
      const pending: Pending = { resolve, reject, deadline: performance.now() + this.#requestTimeout, type: message.type, target, signal, onAbort: undefined }
      if (signal !== undefined) {
        pending.onAbort = () => {
          if (this.#take(id) === pending) reject(new AbortError(undefined, { cause: signal.reason }))
        }
        signal.addEventListener('abort', pending.onAbort, { once: true })
      }
      this.#pending.set(id, pending)
      watchDeadlines(this.#deadlines)
      // One complete frame, straight to the socket (like `ws`, which writes synchronously
      // too, so frames keep their order with its pongs and close frame); like `ws.send`,
      // nothing once the WebSocket is closing (the request fails with the connection).
      if (ws.readyState === ws.OPEN) socket.write(encodeClientFrame(message))
    })
  }

  /** Fails the requests past their deadline; true while any is left (see `deadline-sweeper.ts`). */
  #sweep(now: number): boolean {
    // Every request gets the same timeout: insertion order is deadline order.
    for (const [id, pending] of this.#pending) {
      if (pending.deadline > now) break
      this.#take(id)
      pending.reject(new BeaconUnavailableError(`Beacon ${this.#server} did not answer ${pending.type} within ${this.#requestTimeout} ms`))
    }
    return this.#pending.size > 0
  }

  #rejectAll(error: Error): void {
    const pending = [...this.#pending.keys()]
    for (const id of pending) this.#take(id)?.reject(error)
  }

  #startHeartbeat(): void {
    // The Beacon pings every client; the client pings only when it has heard nothing
    // for a heartbeat, and gives up after two silent ones.
    this.#heartbeatTimer = setInterval(() => {
      const silent = performance.now() - this.#lastHeard
      if (silent > 2 * this.#heartbeatMs) {
        this.#ws?.terminate() // the Beacon is gone: 'close' reconnects
        return
      }
      if (silent >= this.#heartbeatMs) this.#request({ type: 'ping', id: 0 }).catch(() => {})
    }, this.#heartbeatMs / 2)
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeatTimer)
    this.#heartbeatTimer = undefined
  }
}

function topicBytes(topic: Uint8Array | string): Uint8Array {
  if (typeof topic === 'string') return new TextEncoder().encode(topic)
  if (!(topic instanceof Uint8Array)) throw new InvalidArgumentError('a rendezvous identifier must be a string or a Uint8Array')
  return Uint8Array.from(topic)
}

function checkBytes(value: unknown, min: number, max: number, name: string): void {
  if (!(value instanceof Uint8Array) || value.byteLength < min || value.byteLength > max) {
    throw new InvalidArgumentError(min === max ? `${name} must be ${min} bytes` : `${name} must be a Uint8Array of ${min} to ${max} bytes`)
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const result = value ?? fallback
  if (!(Number.isFinite(result) && result > 0)) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`)
  return result
}

function checkSpec(spec: BeaconServerSpec): BeaconServerSpec {
  if (spec === null || typeof spec !== 'object' || spec.kind !== 'beacon') throw new InvalidArgumentError('server must be a Beacon spec string or a parsed Beacon spec')
  return spec
}
