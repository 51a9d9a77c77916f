/**
 * One client's WebSocket on a Beacon: the challenge and proof of key, the per-connection
 * limits (message size, messages per second, send buffer), and the ordered handling of
 * its requests. What the requests do is the {@link SessionHost}'s business.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { verifyBeaconHello } from '../../beacon/beacon-auth.js'
import {
  BEACON_NONCE_BYTES,
  BEACON_PROTOCOL_VERSION,
  type AnnounceMessage,
  type BeaconErrorReason,
  type BeaconLimits,
  type ClientMessage,
  type ServerMessage,
  type SignalRequest,
  type WithdrawMessage,
  decodeClientMessage,
  encodeServerMessage,
} from '../../beacon/beacon-messages.js'
import { BeaconProtocolError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'

/** A refusal a {@link SessionHost} reports to the client as an `error` message. */
export class SessionReplyError extends Error {
  /** The wire error code. */
  readonly reason: BeaconErrorReason
  constructor(reason: BeaconErrorReason, message: string) {
    super(message)
    this.reason = reason
  }
}

/** Limits a session enforces, besides those it announces. */
export interface SessionLimits extends BeaconLimits {
  /** Token bucket size for messages (the largest burst). */
  messageBurst: number
  /** A client whose unsent data exceeds this many bytes is disconnected (it does not read). */
  maxBufferedBytes: number
}

/** What a session asks of its server. */
export interface SessionHost {
  /** SHA-256 of the server's DER certificate, which clients sign over. */
  readonly certHash: Uint8Array
  /** The limits sessions enforce. */
  readonly limits: SessionLimits
  /** The session proved its key. */
  authenticated(session: BeaconSession): void
  /** Registers the session's PeerId token. */
  register(session: BeaconSession): Promise<void>
  /** Removes the session's PeerId token. */
  unregister(session: BeaconSession): Promise<void>
  /** Announces a rendezvous identifier and introduces the peers already there. */
  announce(session: BeaconSession, message: AnnounceMessage): Promise<void>
  /** Withdraws a rendezvous identifier. */
  withdraw(session: BeaconSession, message: WithdrawMessage): Promise<void>
  /** Forwards a signal; resolves with the target's observed addresses. */
  signal(session: BeaconSession, message: SignalRequest): Promise<TransportAddress[]>
  /** The session closed and its queued requests are done: remove its registrations. */
  closed(session: BeaconSession): Promise<void>
  /** A message was refused with `reason` (for counters and logs). */
  refused(session: BeaconSession, reason: BeaconErrorReason, error?: unknown): void
}

/** Where a session is in its life. */
export type SessionState = 'challenged' | 'ready' | 'closed'

/** Close codes the server uses (RFC 6455 §7.4.1). */
export const CLOSE_CODES = { normal: 1000, goingAway: 1001, protocol: 1002, policy: 1008, tooBig: 1009 } as const

/** The server side of one client connection. */
export class BeaconSession {
  /** Id, unique within its server instance. */
  readonly id: number
  /** The client's address as seen by the server. */
  readonly observed: TransportAddress
  /** When the connection was accepted (`performance.now()`). */
  readonly createdAt = performance.now()
  /** Registry keys the session holds (its PeerId token and its topics). */
  readonly keys = new Set<string>()
  /** Number of topic keys in {@link BeaconSession.keys}. */
  topics = 0
  /** Set by any sign of life; cleared by each heartbeat round. */
  alive = true
  readonly #ws: WebSocket
  readonly #host: SessionHost
  #state: SessionState = 'challenged'
  #peerId: string | undefined
  #nonce: Uint8Array | undefined
  #tokens: number
  #tokensAt = performance.now()
  #violations = 0
  #queue: Promise<void> = Promise.resolve()

  constructor(host: SessionHost, id: number, ws: WebSocket, observed: TransportAddress) {
    this.#host = host
    this.id = id
    this.#ws = ws
    this.observed = observed
    this.#tokens = host.limits.messageBurst
  }

  /** Current state. */
  get state(): SessionState {
    return this.#state
  }

  /** The authenticated PeerId (after `hello`). */
  get peerId(): string | undefined {
    return this.#peerId
  }

  /** Sends the challenge and starts handling messages. */
  start(): void {
    const ws = this.#ws
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary))
    ws.on('pong', () => (this.alive = true))
    ws.on('error', ignore) // 'close' follows
    ws.once('close', () => this.#onClose())
    this.#nonce = randomBytes(BEACON_NONCE_BYTES)
    this.send({ type: 'challenge', version: BEACON_PROTOCOL_VERSION, nonce: this.#nonce })
  }

  /** Encodes and sends a message; false when the connection is gone. */
  send(message: ServerMessage): boolean {
    return this.sendRaw(encodeServerMessage(message))
  }

  /** Sends an encoded message; false when the connection is gone. Drops clients that do not read. */
  sendRaw(data: Uint8Array): boolean {
    const ws = this.#ws
    if (ws.readyState !== ws.OPEN) return false
    if (ws.bufferedAmount > this.#host.limits.maxBufferedBytes) {
      ws.terminate()
      return false
    }
    ws.send(data)
    return true
  }

  /** Sends an `error` message. */
  reply(reason: BeaconErrorReason, message: string, id?: number): void {
    this.send(id === undefined ? { type: 'error', code: reason, message } : { type: 'error', id, code: reason, message })
  }

  /** Starts the closing handshake; the connection is destroyed if it has not closed after `graceMs`. */
  close(code: number, reason: string, graceMs = 2_000): void {
    const ws = this.#ws
    if (ws.readyState === ws.CLOSED) return
    ws.close(code, reason)
    const timer = setTimeout(() => ws.terminate(), graceMs)
    ws.once('close', () => clearTimeout(timer))
  }

  /** Destroys the connection at once. */
  terminate(): void {
    this.#ws.terminate()
  }

  /** Sends a WebSocket ping (heartbeat). */
  ping(): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.ping()
  }

  #take(): boolean {
    const now = performance.now()
    const { messagesPerSecond, messageBurst } = this.#host.limits
    this.#tokens = Math.min(messageBurst, this.#tokens + ((now - this.#tokensAt) / 1000) * messagesPerSecond)
    this.#tokensAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.alive = true
    if (this.#state === 'closed') return
    let message: ClientMessage | undefined
    let refusal: { reason: BeaconErrorReason; text: string; id?: number | undefined; error?: unknown } | undefined
    if (!isBinary) {
      refusal = { reason: 'protocol', text: 'Beacon messages are binary frames' }
    } else if (data.byteLength > this.#host.limits.maxMessageBytes) {
      refusal = { reason: 'too-large', text: `message of ${data.byteLength} bytes exceeds ${this.#host.limits.maxMessageBytes}` }
    } else {
      try {
        message = decodeClientMessage(data)
      } catch (err) {
        const id = err instanceof BeaconProtocolError ? err.requestId : undefined
        refusal = { reason: 'protocol', text: (err as Error).message.slice(0, 200), id, error: err }
      }
    }
    if (!this.#take()) {
      this.#host.refused(this, 'rate-limited')
      // A client that keeps flooding after being told is cut off.
      if (++this.#violations > 10 * this.#host.limits.messageBurst) {
        this.close(CLOSE_CODES.policy, 'rate limit')
        return
      }
      this.reply('rate-limited', `more than ${this.#host.limits.messagesPerSecond} messages per second`, message !== undefined && 'id' in message ? message.id : refusal?.id)
      return
    }
    this.#violations = 0
    if (refusal !== undefined) {
      this.#host.refused(this, refusal.reason, refusal.error)
      this.reply(refusal.reason, refusal.text, refusal.id)
      return
    }
    this.#dispatch(message!)
  }

  #dispatch(message: ClientMessage): void {
    if (message.type === 'hello') return this.#hello(message.version, message.peerId, message.signature)
    if (this.#state !== 'ready') {
      this.#host.refused(this, 'auth')
      return this.reply('auth', 'send hello first', message.id)
    }
    if (message.type === 'ping') {
      this.send({ type: 'pong', id: message.id })
      return
    }
    // Requests run one after the other, so that (say) announce then withdraw end withdrawn.
    this.#queue = this.#queue.then(() => this.#run(message))
  }

  #hello(version: number, peerId: string, signature: Uint8Array): void {
    if (this.#state !== 'challenged') {
      this.#host.refused(this, 'protocol')
      return this.reply('protocol', 'already authenticated')
    }
    if (version !== BEACON_PROTOCOL_VERSION) {
      this.#host.refused(this, 'version')
      this.reply('version', `this Beacon speaks protocol version ${BEACON_PROTOCOL_VERSION}, not ${version}`)
      return this.close(CLOSE_CODES.protocol, 'unsupported version')
    }
    if (!verifyBeaconHello(peerId, signature, version, this.#nonce!, this.#host.certHash)) {
      this.#host.refused(this, 'auth')
      this.reply('auth', 'the signature does not prove the key of this PeerId for this Beacon')
      return this.close(CLOSE_CODES.policy, 'authentication failed')
    }
    this.#peerId = peerId
    this.#nonce = undefined
    this.#state = 'ready'
    this.#host.authenticated(this)
    const { maxMessageBytes, maxTopics, messagesPerSecond, heartbeatMs } = this.#host.limits
    this.send({ type: 'welcome', version, peerId, observed: this.observed, limits: { maxMessageBytes, maxTopics, messagesPerSecond, heartbeatMs } })
  }

  async #run(message: Exclude<ClientMessage, { type: 'hello' | 'ping' }>): Promise<void> {
    if (this.#state === 'closed') return
    try {
      switch (message.type) {
        case 'register':
          await this.#host.register(this)
          break
        case 'unregister':
          await this.#host.unregister(this)
          break
        case 'announce':
          await this.#host.announce(this, message)
          break
        case 'withdraw':
          await this.#host.withdraw(this, message)
          break
        case 'signal': {
          const observed = await this.#host.signal(this, message)
          this.send({ type: 'ok', id: message.id, observed })
          return
        }
      }
      this.send({ type: 'ok', id: message.id })
    } catch (err) {
      if (err instanceof SessionReplyError) {
        this.#host.refused(this, err.reason)
        this.reply(err.reason, err.message, message.id)
      } else {
        this.#host.refused(this, 'unavailable', err)
        this.reply('unavailable', 'the Beacon cannot serve this request now', message.id)
      }
    }
  }

  #onClose(): void {
    this.#state = 'closed'
    this.#queue = this.#queue.then(() => this.#host.closed(this))
  }
}

function ignore(): void {}
