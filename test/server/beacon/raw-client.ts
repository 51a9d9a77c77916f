// A protocol-level Beacon client for the server tests: raw frames in, decoded messages out.
import { encode } from '@msgpack/msgpack'
import WebSocket from 'ws'
import { signBeaconChallenge } from '../../../src/beacon/beacon-auth.js'
import { type ClientMessage, type ServerMessage, decodeServerMessage, encodeClientMessage } from '../../../src/beacon/beacon-messages.js'
import type { Identity } from '../../../src/identity/index.js'
import type { BeaconServer } from '../../../src/server/beacon/index.js'

export class RawClient {
  readonly ws: WebSocket
  readonly closed: Promise<{ code: number; reason: string }>
  readonly #queue: ServerMessage[] = []
  readonly #waiters: Array<(message: ServerMessage) => void> = []

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data) => {
      const message = decodeServerMessage(data as Buffer)
      const waiter = this.#waiters.shift()
      if (waiter) waiter(message)
      else this.#queue.push(message)
    })
    ws.on('error', () => {})
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  /** Opens a WebSocket to `server` on 127.0.0.1 (any certificate accepted) and reads its challenge. */
  static async open(server: BeaconServer, options: WebSocket.ClientOptions = {}): Promise<{ client: RawClient; nonce: Uint8Array }> {
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}/`, { rejectUnauthorized: false, perMessageDeflate: false, ...options })
    const client = new RawClient(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const challenge = await client.next()
    if (challenge.type !== 'challenge') throw new Error(`expected a challenge, got ${challenge.type}`)
    return { client, nonce: challenge.nonce }
  }

  /** Opens a connection and proves `identity`; resolves after the welcome. */
  static async authenticated(server: BeaconServer, identity: Identity): Promise<RawClient> {
    const { client, nonce } = await RawClient.open(server)
    client.send({ type: 'hello', version: 1, peerId: identity.peerId, signature: signBeaconChallenge(identity, 1, nonce, certHashOf(server)) })
    const welcome = await client.next()
    if (welcome.type !== 'welcome') throw new Error(`expected a welcome, got ${JSON.stringify(welcome)}`)
    return client
  }

  /** The next message (waits up to `ms`). */
  next(ms = 3_000): Promise<ServerMessage> {
    const queued = this.#queue.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(new Error('no message in time'))
      }, ms)
      const waiter = (message: ServerMessage) => {
        clearTimeout(timer)
        resolve(message)
      }
      this.#waiters.push(waiter)
    })
  }

  /** Messages received and not read yet. */
  get queued(): readonly ServerMessage[] {
    return this.#queue
  }

  send(message: ClientMessage): void {
    this.ws.send(encodeClientMessage(message))
  }

  /** Sends any value MessagePack-encoded. */
  sendValue(value: unknown): void {
    this.ws.send(encode(value))
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data)
  }

  /** Sends a ping and reads messages until its pong; returns what came before it. */
  async roundTrip(id: number): Promise<ServerMessage[]> {
    this.send({ type: 'ping', id })
    const before: ServerMessage[] = []
    for (;;) {
      const message = await this.next()
      if (message.type === 'pong' && message.id === id) return before
      before.push(message)
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close()
    const timer = setTimeout(() => this.ws.terminate(), 1_000)
    await this.closed
    clearTimeout(timer)
  }
}

/** The server certificate's SHA-256 as bytes. */
export function certHashOf(server: BeaconServer): Uint8Array {
  return new Uint8Array(Buffer.from(server.certificateHash, 'base64url'))
}
