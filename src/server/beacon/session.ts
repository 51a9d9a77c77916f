/**
 * One client's WebSocket on a Beacon: the challenge and proof of key, the per-connection
 * limits (message size, messages per second, send buffer), and the ordered handling of
 * its requests. What the requests do is the {@link SessionHost}'s business.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { verifyBeaconHello } from '../../beacon/beacon-auth.js'
import { tapBinaryFrames } from '../../beacon/binary-frame-tap.js'
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
} from '../../beacon/beacon-messages.js'
import { BeaconProtocolError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import { encodeServerFrame } from './server-frame.js'
import { closeWebSocket } from '../close-websocket.js'

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

/**
 * What a session asks of its server. A request may be done when the method returns (a
 * plain value: the in-memory registry) or later (a promise: Redis); a session runs its
 * requests one after the other either way.
 */
export interface SessionHost {
  /** SHA-256 of the server's DER certificate, which clients sign over. */
  readonly certHash: Uint8Array
  /** The limits sessions enforce. */
  readonly limits: SessionLimits
  /** The session proved its key. */
  authenticated(session: BeaconSession): void
  /** Registers the session's PeerId token. */
  register(session: BeaconSession): void | Promise<void>
  /** Removes the session's PeerId token. */
  unregister(session: BeaconSession): void | Promise<void>
  /** Announces a rendezvous identifier and introduces the peers already there. */
  announce(session: BeaconSession, message: AnnounceMessage): void | Promise<void>
  /** Withdraws a rendezvous identifier. */
  withdraw(session: BeaconSession, message: WithdrawMessage): void | Promise<void>
  /** Forwards a signal; returns (or resolves with) the target's observed addresses. */
  signal(session: BeaconSession, message: SignalRequest): TransportAddress[] | Promise<TransportAddress[]>
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
  readonly #socket: Socket
  readonly #host: SessionHost
  #state: SessionState = 'challenged'
  #peerId: string | undefined
  #nonce: Uint8Array | undefined
  #tokens: number
  #tokensAt = performance.now()
  #violations = 0
  /** Requests not done yet (running or waiting behind one that is); 0: the next one runs at once. */
  #inFlight = 0
  /** Settles when the last request started so far is done. */
  #queue: Promise<void> = Promise.resolve()
  #peerKey: string | undefined
  /** Frames held back while a request runs (see `#run`). */
  #batch: Uint8Array[] | undefined

  /**
   * @param socket - the TLS socket under `ws`: the session writes its frames to it
   *   directly (see {@link BeaconSession.sendFrame}).
   */
  constructor(host: SessionHost, id: number, ws: WebSocket, socket: Socket, observed: TransportAddress) {
    this.#host = host
    this.id = id
    this.#ws = ws
    this.#socket = socket
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

  /** The registry key of this session's PeerId token, computed once (by `compute`). */
  peerKey(compute: (peerId: string) => string): string {
    return (this.#peerKey ??= compute(this.#peerId!))
  }

  /** Sends the challenge and starts handling messages. */
  start(): void {
    const ws = this.#ws
    // Binary frames come straight from the socket; ws reads the rest (binary-frame-tap.ts).
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary))
    tapBinaryFrames(ws, this.#socket, {
      masked: true,
      maxPayload: this.#host.limits.maxMessageBytes,
      onMessage: (data) => this.#onMessage(data, true),
      onPong: () => (this.alive = true),
    })
    ws.on('pong', () => (this.alive = true))
    ws.on('error', ignore) // 'close' follows
    ws.once('close', () => this.#onClose())
    this.#nonce = randomBytes(BEACON_NONCE_BYTES)
    this.send({ type: 'challenge', version: BEACON_PROTOCOL_VERSION, nonce: this.#nonce })
  }

  /** Encodes and sends a message; false when the connection is gone. */
  send(message: ServerMessage): boolean {
    return this.#ws.readyState === this.#ws.OPEN && this.sendFrame(encodeServerFrame(message))
  }

  /**
   * Sends a complete WebSocket frame (from `server-frame.ts`); false when the connection
   * is gone. Drops clients that do not read.
   *
   * The frame goes straight to the socket: `ws` writes to it synchronously too (its
   * sender only queues while compressing, and there is no permessage-deflate here), so
   * frames keep their order with its pings and close frames; and nothing is written once
   * `ws` has started closing.
   */
  sendFrame(frame: Uint8Array): boolean {
    const ws = this.#ws
    if (ws.readyState !== ws.OPEN) return false
    const socket = this.#socket
    if (socket.writableLength > this.#host.limits.maxBufferedBytes) {
      ws.terminate()
      return false
    }
    if (this.#batch !== undefined) this.#batch.push(frame)
    else socket.write(frame)
    return true
  }

  /** Writes the frames gathered while a request ran, in one write (one TLS record, one segment). */
  #flush(): void {
    const batch = this.#batch
    this.#batch = undefined
    if (batch === undefined || batch.length === 0 || this.#ws.readyState !== this.#ws.OPEN) return
    this.#socket.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch))
  }

  /** Sends an `error` message. */
  reply(reason: BeaconErrorReason, message: string, id?: number): void {
    this.send(id === undefined ? { type: 'error', code: reason, message } : { type: 'error', id, code: reason, message })
  }

  /** Starts the closing handshake; the connection is destroyed if it has not closed after `graceMs`. */
  close(code: number, reason: string, graceMs = 2_000): void {
    closeWebSocket(this.#ws, code, reason, graceMs)
  }

  /** Destroys the connection at once. */
  terminate(): void {
    this.#ws.terminate()
  }

  /** Sends a WebSocket ping (heartbeat): an empty ping frame, straight to the socket like {@link BeaconSession.sendFrame}. */
  ping(): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#socket.write(PING_FRAME)
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
    // Requests run one after the other, so that (say) announce then withdraw end withdrawn:
    // at once when none is in flight (and then, with the in-memory registry, to the end
    // before this returns), otherwise behind the last one.
    if (this.#inFlight === 0) {
      const pending = this.#run(message)
      if (pending !== undefined) this.#track(pending)
    } else {
      this.#track(this.#queue.then(() => this.#run(message)))
    }
  }

  #track(pending: Promise<void>): void {
    this.#inFlight++
    this.#queue = pending.then(() => {
      this.#inFlight--
    })
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

  /** Runs a request; returns a promise when it is not done yet (never rejects). */
  #run(message: Request): Promise<void> | undefined {
    if (this.#state === 'closed') return undefined
    // What this session is sent while the request runs at once (an introduction, then
    // the `ok`) leaves in one write.
    this.#batch = []
    let result: TransportAddress[] | void | Promise<TransportAddress[] | void>
    try {
      result = this.#call(message)
    } catch (err) {
      this.#fail(message, err)
      this.#flush()
      return undefined
    }
    if (result instanceof Promise) {
      this.#flush()
      return result.then(
        (value) => this.#done(message, value),
        (err: unknown) => this.#fail(message, err),
      )
    }
    this.#done(message, result)
    this.#flush()
    return undefined
  }

  #call(message: Request): TransportAddress[] | void | Promise<TransportAddress[] | void> {
    switch (message.type) {
      case 'register':
        return this.#host.register(this)
      case 'unregister':
        return this.#host.unregister(this)
      case 'announce':
        return this.#host.announce(this, message)
      case 'withdraw':
        return this.#host.withdraw(this, message)
      case 'signal':
        return this.#host.signal(this, message)
    }
  }

  #done(message: Request, value: TransportAddress[] | void): void {
    this.send(message.type === 'signal' ? { type: 'ok', id: message.id, observed: value ?? [] } : { type: 'ok', id: message.id })
  }

  #fail(message: Request, err: unknown): void {
    if (err instanceof SessionReplyError) {
      this.#host.refused(this, err.reason)
      this.reply(err.reason, err.message, message.id)
    } else {
      this.#host.refused(this, 'unavailable', err)
      this.reply('unavailable', 'the Beacon cannot serve this request now', message.id)
    }
  }

  #onClose(): void {
    this.#state = 'closed'
    // After the requests in flight, so that none re-adds a registration after the cleanup.
    if (this.#inFlight === 0) void this.#host.closed(this)
    else this.#queue = this.#queue.then(() => this.#host.closed(this))
  }
}

/** A request: a client message that gets `ok` or `error` once done. */
type Request = Exclude<ClientMessage, { type: 'hello' | 'ping' }>

function ignore(): void {}

/** A final ping frame without payload (RFC 6455 §5.5.2); one buffer, written as is to every socket. */
const PING_FRAME = Buffer.from([0x89, 0x00])
