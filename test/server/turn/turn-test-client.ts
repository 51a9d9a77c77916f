/**
 * A small TURN client for the server tests: sends raw STUN/ChannelData over UDP or
 * TCP/TLS, does the long-term credential dance, and collects what comes back.
 * (The library's real TURN client lives in src/turn/; this one is deliberately dumb so
 * tests can send anything.)
 */
import dgram from 'node:dgram'
import net from 'node:net'
import tls from 'node:tls'
import {
  createTransactionId,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  longTermKey,
  streamFrameLength,
  type DecodedStunMessage,
  type StunAttribute,
  type StunMessage,
  type TransportAddress,
} from '../../../src/stun/index.js'

/** Something received that is not a response: a Data indication or ChannelData. */
export interface Received {
  kind: 'data-indication' | 'channel-data' | 'other'
  peer?: TransportAddress
  channel?: number
  data: Buffer
  raw: Buffer
}

export interface Target {
  host: string
  port: number
}

export class TestTurnClient {
  readonly transport: 'udp' | 'tcp' | 'tls'
  readonly #udp: dgram.Socket | undefined
  readonly #stream: net.Socket | undefined
  readonly #target: Target
  #pending = Buffer.alloc(0)
  readonly #waiters = new Map<string, (m: DecodedStunMessage) => void>()
  readonly received: Received[] = []
  #receivedWaiters: (() => void)[] = []
  /** Raw responses in order (for rate-limit counting). */
  readonly responses: DecodedStunMessage[] = []
  username: string | undefined
  password: string | undefined
  realm: string | undefined
  nonce: string | undefined
  streamClosed = false

  private constructor(transport: 'udp' | 'tcp' | 'tls', target: Target, udp?: dgram.Socket, stream?: net.Socket) {
    this.transport = transport
    this.#target = target
    this.#udp = udp
    this.#stream = stream
    udp?.on('message', (data) => this.#onDatagram(data))
    stream?.on('data', (chunk: Buffer) => this.#onChunk(chunk))
    stream?.on('error', () => {})
    stream?.on('close', () => {
      this.streamClosed = true
      this.#wake()
    })
  }

  static async udp(target: Target, bindHost = target.host.includes(':') ? '::1' : '127.0.0.1'): Promise<TestTurnClient> {
    const socket = dgram.createSocket(bindHost.includes(':') ? 'udp6' : 'udp4')
    await new Promise<void>((resolve) => socket.bind(0, bindHost, () => resolve()))
    return new TestTurnClient('udp', target, socket)
  }

  static async tcp(target: Target): Promise<TestTurnClient> {
    const socket = net.connect(target.port, target.host)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new TestTurnClient('tcp', target, undefined, socket)
  }

  static async tls(target: Target): Promise<TestTurnClient> {
    const socket = tls.connect({ port: target.port, host: target.host, rejectUnauthorized: false })
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    return new TestTurnClient('tls', target, undefined, socket)
  }

  get localAddress(): TransportAddress {
    if (this.#udp !== undefined) {
      const a = this.#udp.address()
      return { family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', host: a.address, port: a.port }
    }
    return { family: this.#stream!.localFamily === 'IPv6' ? 'IPv6' : 'IPv4', host: this.#stream!.localAddress!, port: this.#stream!.localPort! }
  }

  /** Sends raw bytes (one datagram, or bytes on the stream). */
  sendRaw(data: Uint8Array): void {
    if (this.#udp !== undefined) this.#udp.send(data, this.#target.port, this.#target.host)
    else this.#stream!.write(data)
  }

  #wake(): void {
    const waiters = this.#receivedWaiters
    this.#receivedWaiters = []
    for (const w of waiters) w()
  }

  #onDatagram(data: Buffer): void {
    this.#onFrame(data)
  }

  #onChunk(chunk: Buffer): void {
    this.#pending = Buffer.concat([this.#pending, chunk])
    for (;;) {
      const frame = streamFrameLength(this.#pending, { legacyChannelNumbers: true })
      if (frame === undefined || this.#pending.length < frame.length) return
      this.#onFrame(this.#pending.subarray(0, frame.length))
      this.#pending = this.#pending.subarray(frame.length)
    }
  }

  #onFrame(data: Buffer): void {
    const first = data[0]!
    if ((first & 0xc0) === 0x40) {
      const length = data.readUInt16BE(2)
      this.received.push({ kind: 'channel-data', channel: data.readUInt16BE(0), data: Buffer.from(data.subarray(4, 4 + length)), raw: Buffer.from(data) })
      this.#wake()
      return
    }
    let message: DecodedStunMessage
    try {
      message = decodeStunMessage(data)
    } catch {
      this.received.push({ kind: 'other', data: Buffer.from(data), raw: Buffer.from(data) })
      this.#wake()
      return
    }
    if (message.class === 'indication' && message.method === 'data') {
      this.received.push({
        kind: 'data-indication',
        peer: getAttribute(message, 'xor-peer-address')?.value,
        data: Buffer.from(getAttribute(message, 'data')?.value ?? new Uint8Array()),
        raw: Buffer.from(data),
      })
      this.#wake()
      return
    }
    this.responses.push(message)
    const key = Buffer.from(message.transactionId).toString('hex')
    const waiter = this.#waiters.get(key)
    if (waiter !== undefined) {
      this.#waiters.delete(key)
      waiter(message)
    }
  }

  /** Sends `message` and waits for the response with its transaction ID (undefined on timeout). */
  async transact(message: StunMessage, options: { integrity?: Uint8Array; integritySha256?: Uint8Array; timeoutMs?: number; retransmit?: boolean } = {}): Promise<DecodedStunMessage | undefined> {
    const bytes = encodeStunMessage(message, { integrity: options.integrity, integritySha256: options.integritySha256, fingerprint: true })
    const key = Buffer.from(message.transactionId).toString('hex')
    const timeoutMs = options.timeoutMs ?? 2000
    return new Promise((resolve) => {
      let resend: NodeJS.Timeout | undefined
      const timer = setTimeout(() => {
        this.#waiters.delete(key)
        clearInterval(resend)
        resolve(undefined)
      }, timeoutMs)
      this.#waiters.set(key, (m) => {
        clearTimeout(timer)
        clearInterval(resend)
        resolve(m)
      })
      this.sendRaw(bytes)
      // UDP: the server may drop a retransmission while it binds; resend like a real client.
      if (this.transport === 'udp' && options.retransmit !== false) resend = setInterval(() => this.sendRaw(bytes), 250)
    })
  }

  /** Sets the credentials used by {@link TestTurnClient.request}. */
  useCredentials(username: string, password: string): this {
    this.username = username
    this.password = password
    return this
  }

  get key(): Uint8Array {
    return longTermKey(this.username!, this.realm!, this.password!)
  }

  /** The authentication attributes for a request with the current nonce. */
  authAttributes(): StunAttribute[] {
    return [
      { type: 'username', value: this.username! },
      { type: 'realm', value: this.realm! },
      { type: 'nonce', value: this.nonce! },
    ]
  }

  /**
   * An authenticated request: learns REALM/NONCE from a 401 first if needed and follows
   * one 438. Returns the final response.
   */
  async request(method: StunMessage['method'], attributes: StunAttribute[] = [], options: { timeoutMs?: number } = {}): Promise<DecodedStunMessage> {
    if (this.username === undefined) {
      const r = await this.transact({ method, class: 'request', transactionId: createTransactionId(), attributes }, options)
      if (r === undefined) throw new Error(`no response to ${method}`)
      return r
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.nonce === undefined) {
        const challenge = await this.transact({ method, class: 'request', transactionId: createTransactionId(), attributes }, options)
        if (challenge === undefined) throw new Error(`no response to ${method}`)
        if (errorCode(challenge) !== 401) return challenge
        this.realm = getAttribute(challenge, 'realm')?.value
        this.nonce = getAttribute(challenge, 'nonce')?.value
      }
      const response = await this.transact(
        { method, class: 'request', transactionId: createTransactionId(), attributes: [...attributes, ...this.authAttributes()] },
        { ...options, integrity: this.key },
      )
      if (response === undefined) throw new Error(`no response to ${method}`)
      if (errorCode(response) === 438) {
        this.nonce = getAttribute(response, 'nonce')?.value
        continue
      }
      return response
    }
    throw new Error('nonce kept going stale')
  }

  /** Allocate with REQUESTED-TRANSPORT UDP plus `extra`. */
  allocate(extra: StunAttribute[] = []): Promise<DecodedStunMessage> {
    return this.request('allocate', [{ type: 'requested-transport', value: 17 }, ...extra])
  }

  /** Sends a Send indication. */
  sendIndication(peer: TransportAddress, data: Uint8Array): void {
    this.sendRaw(
      encodeStunMessage({
        method: 'send',
        class: 'indication',
        transactionId: createTransactionId(),
        attributes: [
          { type: 'xor-peer-address', value: peer },
          { type: 'data', value: data },
        ],
      }),
    )
  }

  /** Sends ChannelData (padded over streams). */
  sendChannelData(channel: number, data: Uint8Array, pad = this.transport !== 'udp'): void {
    const length = 4 + (pad ? (data.length + 3) & ~3 : data.length)
    const out = Buffer.alloc(length)
    out.writeUInt16BE(channel, 0)
    out.writeUInt16BE(data.length, 2)
    out.set(data, 4)
    this.sendRaw(out)
  }

  /** Waits until `count` non-response messages have arrived (or the timeout). */
  async waitReceived(count: number, timeoutMs = 2000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < count && Date.now() < deadline && !this.streamClosed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.#receivedWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.received
  }

  async close(): Promise<void> {
    for (const waiter of this.#receivedWaiters) waiter()
    if (this.#udp !== undefined) await new Promise<void>((resolve) => this.#udp!.close(() => resolve()))
    if (this.#stream !== undefined && !this.streamClosed) {
      const closed = new Promise<void>((resolve) => this.#stream!.once('close', () => resolve()))
      this.#stream.destroy()
      await closed
    }
  }
}

/** The ERROR-CODE of a response, or undefined for success. */
export function errorCode(message: DecodedStunMessage): number | undefined {
  return getAttribute(message, 'error-code')?.value.code
}

/** A UDP peer on loopback that records what it receives. */
export class TestPeer {
  readonly socket: dgram.Socket
  readonly received: { data: Buffer; from: dgram.RemoteInfo }[] = []

  private constructor(socket: dgram.Socket) {
    this.socket = socket
    socket.on('message', (data, from) => this.received.push({ data, from }))
  }

  static async create(host = '127.0.0.1'): Promise<TestPeer> {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()))
    return new TestPeer(socket)
  }

  get address(): TransportAddress {
    const a = this.socket.address()
    return { family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', host: a.address, port: a.port }
  }

  send(data: Uint8Array, to: TransportAddress): void {
    this.socket.send(data, to.port, to.host)
  }

  async waitReceived(count: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
