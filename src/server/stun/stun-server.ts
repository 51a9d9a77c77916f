/**
 * A STUN server (RFC 8489 Binding) with RFC 5780 NAT behaviour discovery support.
 *
 * With an alternate address it listens on four UDP sockets: (primary host, primary port),
 * (primary host, alternate port), (alternate host, primary port) and (alternate host,
 * alternate port), and answers CHANGE-REQUEST from the socket it asks for — what a
 * client needs to learn its NAT's mapping and filtering behaviour.
 *
 * The TURN server (STUN Binding for everyone) and the Beacon (STUN on its UDP port)
 * build on this responder.
 *
 * @module
 */
import dgram from 'node:dgram'
import { isIP } from 'node:net'
import { AbortError, InvalidArgumentError, SocketBindError } from '../../errors.js'
import type { TransportAddress } from '../../stun/address.js'
import type { StunAttribute } from '../../stun/attribute.js'
import { decodeStunMessage, encodeStunMessage, getAttribute, type DecodedStunMessage } from '../../stun/message.js'
import { isStunMessage } from '../../stun/classify.js'
import { RateLimiter } from './rate-limiter.js'

/**
 * Options of {@link StunServer.listen}.
 *
 * @example
 * ```ts
 * import { StunServer } from 'peerlink/server'
 *
 * const stun = await StunServer.listen({
 *   host: '203.0.113.5',
 *   port: 3478,
 *   alternateHost: '203.0.113.6',   // a second IP of this machine: enables RFC 5780
 *   requestsPerSecondPerIp: 20,
 * })
 * ```
 */
export interface StunServerOptions {
  /**
   * Address to listen on.
   * @default '0.0.0.0'
   */
  host?: string
  /**
   * UDP port (0: let the system pick).
   * @default 3478
   */
  port?: number
  /**
   * A second IP address of this machine. With it the server supports RFC 5780
   * (OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST); without it, CHANGE-REQUEST gets
   * 420 as RFC 5780 §6.1 requires.
   * @default undefined (no RFC 5780)
   */
  alternateHost?: string
  /**
   * The alternate port for RFC 5780 (0: let the system pick).
   * @default port + 1 (or a system-picked port when `port` is 0)
   */
  alternatePort?: number
  /**
   * SOFTWARE attribute in responses; empty string for none.
   * @default 'peerlink'
   */
  software?: string
  /**
   * Requests answered per second from one source IP (a token bucket; excess is dropped
   * silently, as a reflector must not amplify floods).
   * @default 50
   */
  requestsPerSecondPerIp?: number
  /**
   * Burst size of the per-IP token bucket.
   * @default 100
   */
  burstPerIp?: number
  /**
   * Cancels a `listen` that is still binding.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Counters of a running {@link StunServer}. */
export interface StunServerStats {
  /** Binding requests answered with a success response. */
  bindingResponses: number
  /** Requests answered with an error response (400, 420). */
  errorResponses: number
  /** Datagrams that were not well-formed STUN (dropped). */
  malformed: number
  /** Requests dropped by the per-IP rate limit. */
  rateLimited: number
}

interface Listener {
  socket: dgram.Socket
  address: TransportAddress
  /** Index bits: 1 = alternate host, 2 = alternate port. */
  index: number
}

/**
 * A running STUN server. Create one with {@link StunServer.listen}; stop it with
 * {@link StunServer.close}.
 *
 * @example
 * ```ts
 * import { StunServer } from 'peerlink/server'
 *
 * const server = await StunServer.listen({ host: '127.0.0.1', port: 0, alternateHost: '127.0.0.2' })
 * console.log(server.primary, server.other)   // stun:127.0.0.1:PORT, RFC 5780 enabled
 * await server.close()
 * ```
 */
export class StunServer {
  /** Counters since start. */
  readonly stats: StunServerStats = { bindingResponses: 0, errorResponses: 0, malformed: 0, rateLimited: 0 }
  readonly #listeners: Listener[]
  readonly #software: string
  readonly #limiter: RateLimiter
  #closed: Promise<void> | undefined

  private constructor(listeners: Listener[], software: string, limiter: RateLimiter) {
    this.#listeners = listeners
    this.#software = software
    this.#limiter = limiter
    for (const listener of listeners) {
      listener.socket.on('message', (data, rinfo) => this.#onMessage(listener, data, rinfo))
      // A send error (e.g. ICMP unreachable reported on Linux) must not kill the server.
      listener.socket.on('error', () => {})
    }
  }

  /** Binds the server's sockets and starts answering. */
  static async listen(options: StunServerOptions = {}): Promise<StunServer> {
    const host = options.host ?? '0.0.0.0'
    const port = options.port ?? 3478
    const software = options.software ?? 'peerlink'
    if (isIP(host) === 0) throw new InvalidArgumentError(`host must be an IP address, got ${JSON.stringify(host)}`)
    checkPort(port, 'port')
    const alternateHost = options.alternateHost
    if (alternateHost !== undefined && isIP(alternateHost) !== isIP(host)) {
      throw new InvalidArgumentError('alternateHost must be an IP address of the same family as host')
    }
    const limiter = new RateLimiter({
      ratePerSecond: options.requestsPerSecondPerIp ?? 50,
      burst: options.burstPerIp ?? 100,
    })
    const listeners: Listener[] = []
    try {
      const primary = await bindSocket(host, port, 0, options.signal)
      listeners.push(primary)
      if (alternateHost !== undefined) {
        const altPort = options.alternatePort ?? (port === 0 ? 0 : port + 1)
        checkPort(altPort, 'alternatePort')
        const second = await bindSocket(host, altPort, 2, options.signal)
        listeners.push(second)
        listeners.push(await bindSocket(alternateHost, primary.address.port, 1, options.signal))
        listeners.push(await bindSocket(alternateHost, second.address.port, 3, options.signal))
      }
    } catch (err) {
      await Promise.all(listeners.map((listener) => closeSocket(listener.socket)))
      throw err
    }
    return new StunServer(listeners, software, limiter)
  }

  /** The primary listening address. */
  get primary(): TransportAddress {
    return this.#listeners[0]!.address
  }

  /** The alternate address (other host, other port) when RFC 5780 is enabled. */
  get other(): TransportAddress | undefined {
    return this.#listeners.find((listener) => listener.index === 3)?.address
  }

  /** Every listening address. */
  get addresses(): TransportAddress[] {
    return this.#listeners.map((listener) => ({ ...listener.address }))
  }

  /** Stops answering and closes every socket; idempotent. */
  close(): Promise<void> {
    this.#closed ??= Promise.all(this.#listeners.map((listener) => closeSocket(listener.socket))).then(() => {})
    return this.#closed
  }

  #onMessage(listener: Listener, data: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!isStunMessage(data)) {
      this.stats.malformed++
      return
    }
    let request: DecodedStunMessage
    try {
      request = decodeStunMessage(data)
    } catch {
      this.stats.malformed++
      return
    }
    // RFC 8489 §6.3: only requests get answers; indications and responses are dropped.
    if (request.class !== 'request') return
    if (!this.#limiter.take(rinfo.address)) {
      this.stats.rateLimited++
      return
    }
    const from: TransportAddress = { family: rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4', host: rinfo.address, port: rinfo.port }
    const answer = this.#answer(listener, request, from)
    answer.via.socket.send(answer.data, answer.port, from.host)
  }

  #answer(listener: Listener, request: DecodedStunMessage, from: TransportAddress): { data: Uint8Array; via: Listener; port: number } {
    const error = (code: number, reason: string, extra: StunAttribute[] = []) => {
      this.stats.errorResponses++
      return {
        data: this.#encode(request, 'error', [{ type: 'error-code', value: { code, reason } }, ...extra]),
        via: listener,
        port: from.port,
      }
    }
    // RFC 8489 §6.3.1: unknown comprehension-required attributes get 420.
    if (request.unknownRequired.length > 0) {
      return error(420, 'Unknown Attribute', [{ type: 'unknown-attributes', value: request.unknownRequired }])
    }
    if (request.method !== 'binding') return error(400, 'Bad Request')
    const change = getAttribute(request, 'change-request')?.value
    const rfc5780 = this.#listeners.length === 4
    // RFC 5780 §6.1: without an alternate address, CHANGE-REQUEST is an unknown attribute.
    if (change !== undefined && !rfc5780 && (change.changeIp || change.changePort)) {
      return error(420, 'Unknown Attribute', [{ type: 'unknown-attributes', value: [0x0003] }])
    }
    // RFC 5780 §6.1: answer from the socket that changes IP and/or port as asked.
    const viaIndex = listener.index ^ (change?.changeIp === true ? 1 : 0) ^ (change?.changePort === true ? 2 : 0)
    const via = this.#listeners.find((candidate) => candidate.index === viaIndex) ?? listener
    // RFC 5780 §7.5: RESPONSE-PORT sends the response to another port of the same IP.
    const port = getAttribute(request, 'response-port')?.value ?? from.port
    const attributes: StunAttribute[] = [
      { type: 'xor-mapped-address', value: from },
      { type: 'mapped-address', value: from },
    ]
    if (rfc5780) {
      attributes.push({ type: 'response-origin', value: via.address })
      const other = this.#listeners.find((candidate) => candidate.index === (listener.index ^ 3))!
      attributes.push({ type: 'other-address', value: other.address })
    }
    this.stats.bindingResponses++
    return { data: this.#encode(request, 'success', attributes), via, port: port === 0 ? from.port : port }
  }

  #encode(request: DecodedStunMessage, cls: 'success' | 'error', attributes: StunAttribute[]): Uint8Array {
    return encodeStunResponse(request, cls, attributes, this.#software)
  }
}

/**
 * Encodes a response to `request` (same method and transaction ID) with SOFTWARE (unless
 * `software` is empty) and FINGERPRINT appended. `attributes` is extended in place.
 */
export function encodeStunResponse(
  request: DecodedStunMessage,
  cls: 'success' | 'error',
  attributes: StunAttribute[],
  software: string,
): Uint8Array {
  if (software.length > 0) attributes.push({ type: 'software', value: software })
  return encodeStunMessage(
    { method: request.method, class: cls, transactionId: request.transactionId, attributes },
    { fingerprint: true },
  )
}

/**
 * Answers a Binding request received on a single address (no RFC 5780): the answer the
 * TURN server gives everyone, authenticated or not. 420 for unknown
 * comprehension-required attributes and for CHANGE-REQUEST asking for a change
 * (RFC 8489 §6.3.1, RFC 5780 §6.1), 400 for a method other than Binding, else a
 * success response with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS of `from`.
 */
export function answerBindingRequest(
  request: DecodedStunMessage,
  from: TransportAddress,
  software: string,
): { response: Uint8Array; success: boolean } {
  const error = (code: number, reason: string, extra: StunAttribute[] = []) => ({
    response: encodeStunResponse(request, 'error', [{ type: 'error-code', value: { code, reason } }, ...extra], software),
    success: false,
  })
  if (request.unknownRequired.length > 0) {
    return error(420, 'Unknown Attribute', [{ type: 'unknown-attributes', value: request.unknownRequired }])
  }
  if (request.method !== 'binding') return error(400, 'Bad Request')
  const change = getAttribute(request, 'change-request')?.value
  if (change !== undefined && (change.changeIp || change.changePort)) {
    return error(420, 'Unknown Attribute', [{ type: 'unknown-attributes', value: [0x0003] }])
  }
  const attributes: StunAttribute[] = [
    { type: 'xor-mapped-address', value: from },
    { type: 'mapped-address', value: from },
  ]
  return { response: encodeStunResponse(request, 'success', attributes, software), success: true }
}

function checkPort(port: number, name: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`${name} must be an integer from 0 to 65535, got ${String(port)}`)
  }
}

async function bindSocket(host: string, port: number, index: number, signal: AbortSignal | undefined): Promise<Listener> {
  if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
  const socket = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', ipv6Only: isIP(host) === 6 })
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      socket.once('error', onError)
      socket.bind(port, host, () => {
        socket.off('error', onError)
        resolve()
      })
    })
  } catch (err) {
    await closeSocket(socket)
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'the address is not local' : String(err)
    throw new SocketBindError(`Cannot listen on UDP ${host}:${port}: ${why}`, { cause: err })
  }
  const bound = socket.address()
  return { socket, index, address: { family: bound.family === 'IPv6' ? 'IPv6' : 'IPv4', host: bound.address, port: bound.port } }
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve())
    } catch {
      resolve() // already closed, or never bound
    }
  })
}
