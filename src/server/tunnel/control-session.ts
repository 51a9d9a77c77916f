/**
 * One device's control WebSocket on a tunnel server: the challenge, the per-socket
 * limits (message size, messages per second, send buffer), the `hello` handed to the
 * server for admission, and the few messages a device sends afterwards (`reject`,
 * `ping`, `pong`). What admission means is the {@link ControlSessionHost}'s business.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { TunnelProtocolError } from '../../errors.js'
import {
  TUNNEL_NONCE_BYTES,
  TUNNEL_PROTOCOL_VERSION,
  type TunnelHelloMessage,
  type TunnelClientMessage,
  type TunnelErrorReason,
  type TunnelRejectReason,
  type TunnelServerMessage,
  type TunnelWelcomeMessage,
  decodeTunnelClientMessage,
  encodeTunnelServerMessage,
} from '../../tunnel/tunnel-messages.js'
import { closeWebSocket } from '../close-websocket.js'

/** A refusal the host reports to the device as an `error` message. */
export class ControlReplyError extends Error {
  /** The wire error code. */
  readonly reason: TunnelErrorReason
  constructor(reason: TunnelErrorReason, message: string) {
    super(message)
    this.reason = reason
  }
}

/** Close codes the server uses (RFC 6455 §7.4.1), and 4001 for a device replaced by a newer login. */
export const CONTROL_CLOSE_CODES = { normal: 1000, goingAway: 1001, protocol: 1002, policy: 1008, tooBig: 1009, replaced: 4001 } as const

/** What a session asks of its server. */
export interface ControlSessionHost {
  /** Limits of a control socket. */
  readonly limits: {
    readonly maxMessageBytes: number
    readonly messagesPerSecond: number
    readonly messageBurst: number
    readonly maxBufferedBytes: number
  }
  /** This server's id (sent in the challenge). */
  readonly serverId: string
  /** Admits a device: resolves with its welcome, or rejects with a {@link ControlReplyError}. */
  admit(session: ControlSession, hello: TunnelHelloMessage, nonce: Uint8Array): Promise<TunnelWelcomeMessage>
  /** The device could not take an announced connection. */
  rejected(session: ControlSession, id: Uint8Array, reason: TunnelRejectReason): void
  /** The socket closed. */
  closed(session: ControlSession): void
  /** A message was refused (for counters). */
  refused(session: ControlSession, reason: TunnelErrorReason): void
}

/** Where a session is in its life. */
export type ControlSessionState = 'challenged' | 'admitting' | 'ready' | 'closed'

/** The server side of one control WebSocket. */
export class ControlSession {
  /** Id, unique within its server. */
  readonly id: number
  /** The device's IP address as the server sees it. */
  readonly remoteHost: string
  /** When the socket was accepted (`performance.now()`). */
  readonly createdAt = performance.now()
  /** Set by any sign of life; cleared by each heartbeat round. */
  alive = true
  /** The device key once admitted. */
  device: string | undefined
  /** The session secret that proves transfer sockets, once admitted. */
  secret: Uint8Array | undefined
  readonly #ws: WebSocket
  readonly #host: ControlSessionHost
  #state: ControlSessionState = 'challenged'
  #nonce: Uint8Array | undefined
  #tokens: number
  #tokensAt = performance.now()
  #violations = 0

  constructor(host: ControlSessionHost, id: number, ws: WebSocket, remoteHost: string) {
    this.#host = host
    this.id = id
    this.#ws = ws
    this.remoteHost = remoteHost
    this.#tokens = host.limits.messageBurst
  }

  /** Current state. */
  get state(): ControlSessionState {
    return this.#state
  }

  /** Sends the challenge and starts handling messages. */
  start(): void {
    const ws = this.#ws
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary))
    ws.on('pong', () => (this.alive = true))
    ws.on('ping', () => (this.alive = true))
    ws.on('error', ignore) // 'close' follows
    ws.once('close', () => {
      this.#state = 'closed'
      this.#host.closed(this)
    })
    this.#nonce = randomBytes(TUNNEL_NONCE_BYTES)
    this.send({ type: 'challenge', version: TUNNEL_PROTOCOL_VERSION, nonce: this.#nonce, server: this.#host.serverId })
  }

  /** Encodes and sends a message; false when the socket is gone. Drops devices that do not read. */
  send(message: TunnelServerMessage): boolean {
    const ws = this.#ws
    if (ws.readyState !== ws.OPEN) return false
    if (ws.bufferedAmount > this.#host.limits.maxBufferedBytes) {
      ws.terminate()
      return false
    }
    ws.send(encodeTunnelServerMessage(message))
    return true
  }

  /** Sends an `error` message. */
  reply(code: TunnelErrorReason, message: string): void {
    this.send({ type: 'error', code, message: message.slice(0, 256) })
  }

  /** Starts the closing handshake; the socket is destroyed if it has not closed after `graceMs`. */
  close(code: number, reason: string, graceMs = 2_000): void {
    closeWebSocket(this.#ws, code, reason, graceMs)
  }

  /** Destroys the socket at once. */
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

  #refuse(reason: TunnelErrorReason, text: string): void {
    this.#host.refused(this, reason)
    this.reply(reason, text)
    // Before admission every refusal is final.
    if (this.#state === 'challenged') this.close(CONTROL_CLOSE_CODES.policy, reason)
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    this.alive = true
    if (this.#state === 'closed') return
    if (!this.#take()) {
      this.#host.refused(this, 'rate-limited')
      if (++this.#violations > 10 * this.#host.limits.messageBurst) {
        this.close(CONTROL_CLOSE_CODES.policy, 'rate limit')
        return
      }
      this.reply('rate-limited', `more than ${this.#host.limits.messagesPerSecond} messages per second`)
      return
    }
    this.#violations = 0
    if (!isBinary) return this.#refuse('protocol', 'control messages are binary frames')
    if (data.byteLength > this.#host.limits.maxMessageBytes) {
      return this.#refuse('too-large', `message of ${data.byteLength} bytes exceeds ${this.#host.limits.maxMessageBytes}`)
    }
    let message: TunnelClientMessage
    try {
      message = decodeTunnelClientMessage(data)
    } catch (err) {
      const text = err instanceof TunnelProtocolError ? err.message : 'malformed message'
      return this.#refuse('protocol', text.slice(0, 200))
    }
    switch (message.type) {
      case 'hello':
        return this.#hello(message)
      case 'ping':
        this.send({ type: 'pong', id: message.id })
        return
      case 'pong':
        return
      case 'reject':
        if (this.#state !== 'ready') return this.#refuse('protocol', 'reject before welcome')
        this.#host.rejected(this, message.id, message.reason)
        return
    }
  }

  #hello(hello: TunnelHelloMessage): void {
    if (this.#state !== 'challenged') return this.#refuse('protocol', 'hello was already sent')
    if (hello.version !== TUNNEL_PROTOCOL_VERSION) {
      this.#host.refused(this, 'version')
      this.reply('version', `this server speaks tunnel protocol version ${TUNNEL_PROTOCOL_VERSION}, not ${hello.version}`)
      return this.close(CONTROL_CLOSE_CODES.protocol, 'unsupported version')
    }
    this.#state = 'admitting'
    const nonce = this.#nonce!
    this.#nonce = undefined
    this.#host.admit(this, hello, nonce).then(
      (welcome) => {
        if (this.#state !== 'admitting') return
        this.#state = 'ready'
        this.send(welcome)
      },
      (err: unknown) => {
        if (this.#state === 'closed') return
        const reason = err instanceof ControlReplyError ? err.reason : 'unavailable'
        const text = err instanceof ControlReplyError ? err.message : 'the tunnel server cannot admit devices now'
        this.#state = 'challenged'
        this.#refuse(reason, text)
      },
    )
  }
}

function ignore(): void {}
