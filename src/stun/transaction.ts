/**
 * STUN client transactions over an unreliable transport with retransmission
 * (RFC 8489 §6.2.1), independent of any socket: requests go out through a `send`
 * function and responses come back through {@link StunTransactionManager.handleResponse}.
 *
 * @module
 */

import {
  AbortError,
  InvalidArgumentError,
  PeerlinkError,
  SocketClosedError,
  StunErrorResponseError,
  StunMalformedError,
  StunTimeoutError,
} from '../errors.js'
import type { DatagramSource } from './datagram-endpoint.js'
import { verifyIntegrity } from './integrity.js'
import { encodeStunMessage, getAttribute } from './message.js'
import type { DecodedStunMessage, StunMessage } from './message.js'

/** Sends one datagram. */
export type StunSendFunction = (data: Uint8Array, port: number, host: string) => void

/** Retransmission parameters (RFC 8489 §6.2.1). */
export interface StunRetransmitOptions {
  /**
   * Initial retransmission timeout in ms; doubles after each retransmission.
   * @default 500
   */
  rto?: number
  /**
   * Total number of requests sent (the first plus retransmissions).
   * @default 7
   */
  rc?: number
  /**
   * After the last request, wait `rm × rto` (initial RTO) for a response before failing.
   * @default 16
   */
  rm?: number
}

/** Options of {@link StunTransactionManager}. */
export interface StunTransactionManagerOptions extends StunRetransmitOptions {
  /** How requests are sent. */
  send: StunSendFunction
}

/** Options of {@link StunTransactionManager.request}. */
export interface StunRequestOptions extends StunRetransmitOptions {
  /** Destination port. */
  port: number
  /** Destination IP address (as the `send` function accepts it). */
  host: string
  /**
   * Cancels the transaction: rejects with `AbortError` and stops retransmitting.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Sign the request with MESSAGE-INTEGRITY using this key, and accept only responses
   * whose integrity verifies with it (others are discarded, RFC 8489 §9.1.4/§9.2.5).
   * Error responses 400, 401, 420 and 438 without any integrity attribute are accepted,
   * since a server cannot sign those when it could not authenticate the request.
   * @default undefined (unauthenticated)
   */
  integrityKey?: Uint8Array
  /**
   * Sign with MESSAGE-INTEGRITY-SHA256 as well as MESSAGE-INTEGRITY (RFC 8489 §14.6).
   * @default false
   */
  integritySha256?: boolean
  /**
   * Add FINGERPRINT to the request (ICE requires it, RFC 8445 §7.1).
   * @default false
   */
  fingerprint?: boolean
  /**
   * Resolve with error responses instead of rejecting with `StunErrorResponseError`
   * (e.g. to read 401's REALM and NONCE, or 300's ALTERNATE-SERVER).
   * @default false
   */
  acceptErrorResponse?: boolean
}

/** A response matched to its request. */
export interface StunResponse extends DecodedStunMessage {
  /** Where the response came from. */
  from: DatagramSource
  /** Milliseconds from the first transmission of the request to the response. */
  rtt: number
  /** How many times the request had been sent when the response arrived. */
  transmissions: number
}

interface Pending {
  request: StunMessage
  key: Uint8Array | undefined
  acceptErrorResponse: boolean
  timer: ReturnType<typeof setTimeout> | undefined
  startedAt: number
  transmissions: number
  resolve: (response: StunResponse) => void
  reject: (err: unknown) => void
  cleanup: () => void
}

const DEFAULT_RTO = 500
const DEFAULT_RC = 7
const DEFAULT_RM = 16

function transactionKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}

/**
 * Throws `InvalidArgumentError` if retransmission options are out of range.
 * @internal
 */
export function checkRetransmit(o: StunRetransmitOptions, where: string): void {
  if (o.rto !== undefined && !(Number.isFinite(o.rto) && o.rto > 0)) throw new InvalidArgumentError(`${where}: rto must be a positive number`)
  if (o.rc !== undefined && !(Number.isInteger(o.rc) && o.rc >= 1)) throw new InvalidArgumentError(`${where}: rc must be an integer ≥ 1`)
  if (o.rm !== undefined && !(Number.isFinite(o.rm) && o.rm >= 0)) throw new InvalidArgumentError(`${where}: rm must be a number ≥ 0`)
}

/**
 * Runs STUN client transactions: sends requests, retransmits them on the RFC 8489
 * schedule, matches responses by transaction ID and settles the caller's promise.
 *
 * @example
 * ```ts
 * import { StunTransactionManager, createStunRequest, decodeStunMessage, isStunMessage } from 'peerlink'
 *
 * const tm = new StunTransactionManager({ send: (d, port, host) => socket.send(d, port, host) })
 * socket.on('message', (buf, rinfo) => {
 *   if (isStunMessage(buf)) tm.handleResponse(decodeStunMessage(buf), { host: rinfo.address, port: rinfo.port })
 * })
 * const res = await tm.request(createStunRequest('binding'), { host: '192.0.2.1', port: 3478 })
 * ```
 */
export class StunTransactionManager {
  readonly #send: StunSendFunction
  readonly #defaults: Required<StunRetransmitOptions>
  readonly #pending = new Map<string, Pending>()
  #closed = false

  constructor(options: StunTransactionManagerOptions) {
    if (options === null || typeof options !== 'object' || typeof options.send !== 'function') {
      throw new InvalidArgumentError('StunTransactionManager needs a send function')
    }
    checkRetransmit(options, 'StunTransactionManager')
    this.#send = options.send
    this.#defaults = { rto: options.rto ?? DEFAULT_RTO, rc: options.rc ?? DEFAULT_RC, rm: options.rm ?? DEFAULT_RM }
  }

  /** Number of transactions in progress. */
  get pending(): number {
    return this.#pending.size
  }

  /** Whether {@link StunTransactionManager.close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Sends a request and resolves with its success response (or error response, with
   * `acceptErrorResponse`).
   *
   * Rejects with `StunTimeoutError` after `rc` transmissions and a final `rm × rto` wait,
   * `StunErrorResponseError` on an error response, `StunMalformedError` on a success
   * response with unknown comprehension-required attributes (RFC 8489 §6.3.3),
   * `AbortError` when `signal` aborts, `SocketClosedError` when the manager is closed
   * or `send` throws.
   *
   * @throws InvalidArgumentError at once if the message is not a request, the options are
   * invalid or the transaction ID is already in use.
   */
  request(message: StunMessage, options: StunRequestOptions): Promise<StunResponse> {
    if (message?.class !== 'request') throw new InvalidArgumentError('request() needs a STUN message of class "request"')
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('request() needs options with host and port')
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 0xffff) {
      throw new InvalidArgumentError(`Invalid destination port ${String(options.port)}`)
    }
    if (typeof options.host !== 'string' || options.host === '') throw new InvalidArgumentError('Invalid destination host')
    checkRetransmit(options, 'request')
    if (options.integrityKey !== undefined && !(options.integrityKey instanceof Uint8Array)) {
      throw new InvalidArgumentError('integrityKey must be a Uint8Array')
    }
    const key = options.integrityKey
    const data = encodeStunMessage(message, {
      integrity: key,
      integritySha256: key !== undefined && options.integritySha256 === true ? key : undefined,
      fingerprint: options.fingerprint === true,
    })
    const id = transactionKey(message.transactionId)
    if (this.#pending.has(id)) throw new InvalidArgumentError(`Transaction ${id} is already in progress`)
    if (this.#closed) return Promise.reject(new SocketClosedError('STUN transaction manager is closed'))
    const signal = options.signal
    if (signal?.aborted === true) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))

    const rto = options.rto ?? this.#defaults.rto
    const rc = options.rc ?? this.#defaults.rc
    const rm = options.rm ?? this.#defaults.rm
    const { host, port } = options

    return new Promise<StunResponse>((resolve, reject) => {
      const onAbort = (): void => {
        pending.cleanup()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      const pending: Pending = {
        request: message,
        key,
        acceptErrorResponse: options.acceptErrorResponse === true,
        timer: undefined,
        startedAt: performance.now(),
        transmissions: 0,
        resolve,
        reject,
        cleanup: () => {
          if (pending.timer !== undefined) clearTimeout(pending.timer)
          pending.timer = undefined
          signal?.removeEventListener('abort', onAbort)
          this.#pending.delete(id)
        },
      }
      this.#pending.set(id, pending)
      signal?.addEventListener('abort', onAbort, { once: true })

      // RFC 8489 §6.2.1: send at 0, RTO, 3·RTO, 7·RTO, … (the interval doubles) for Rc
      // transmissions, then give up Rm·RTO after the last one.
      const transmit = (interval: number): void => {
        try {
          this.#send(data, port, host)
        } catch (err) {
          pending.cleanup()
          reject(err instanceof PeerlinkError ? err : new SocketClosedError('Sending the STUN request failed', { cause: err }))
          return
        }
        pending.transmissions++
        if (pending.transmissions < rc) {
          pending.timer = setTimeout(() => transmit(interval * 2), interval)
        } else {
          pending.timer = setTimeout(() => {
            pending.cleanup()
            reject(
              new StunTimeoutError(
                `No response to STUN ${message.method} request from ${host}:${port} after ${rc} transmissions`,
              ),
            )
          }, rm * rto)
        }
      }
      transmit(rto)
    })
  }

  /**
   * Offers a decoded incoming message. Returns `true` if it settled a pending
   * transaction, `false` if it is not a response to one (wrong ID, method or class) or
   * was discarded because its integrity did not verify.
   */
  handleResponse(message: DecodedStunMessage, from: DatagramSource): boolean {
    if (message === null || typeof message !== 'object' || !(message.transactionId instanceof Uint8Array)) return false
    if (message.class !== 'success' && message.class !== 'error') return false
    const pending = this.#pending.get(transactionKey(message.transactionId))
    if (pending === undefined || pending.request.method !== message.method) return false
    if (pending.key !== undefined && !verifyIntegrity(message, pending.key)) {
      const code = getAttribute(message, 'error-code')?.value.code
      const unsignable =
        message.class === 'error' &&
        message.integrityOffset === undefined &&
        message.integritySha256Offset === undefined &&
        (code === 400 || code === 401 || code === 420 || code === 438)
      // RFC 8489 §9.1.4/§9.2.5: a response that fails the integrity check is discarded
      // as if never received; retransmissions continue.
      if (!unsignable) return false
    }
    pending.cleanup()
    const response: StunResponse = {
      ...message,
      from: { host: from.host, port: from.port },
      rtt: performance.now() - pending.startedAt,
      transmissions: pending.transmissions,
    }
    if (message.class === 'success') {
      if (message.unknownRequired.length > 0) {
        pending.reject(
          new StunMalformedError(
            `STUN response has unknown comprehension-required attributes ${message.unknownRequired
              .map((c) => `0x${c.toString(16).padStart(4, '0')}`)
              .join(', ')}`,
          ),
        )
      } else {
        pending.resolve(response)
      }
    } else if (pending.acceptErrorResponse) {
      pending.resolve(response)
    } else {
      const error = getAttribute(message, 'error-code')?.value
      pending.reject(new StunErrorResponseError(error?.code ?? 0, error?.reason ?? 'error response without ERROR-CODE'))
    }
    return true
  }

  /** Rejects every pending transaction with `SocketClosedError`, clears every timer and refuses new requests. */
  close(): void {
    this.#closed = true
    for (const pending of [...this.#pending.values()]) {
      pending.cleanup()
      pending.reject(new SocketClosedError('STUN transaction manager closed'))
    }
  }
}
