/**
 * The long-term credential mechanism as a TURN client runs it (RFC 8489 §9.2,
 * RFC 8656 §7): the first request goes out without credentials, the server answers
 * 401 with REALM and NONCE, the client retries with USERNAME, REALM, NONCE and
 * MESSAGE-INTEGRITY; a 438 Stale Nonce is retried with the new nonce. Later requests
 * reuse the realm, nonce and key.
 *
 * @module
 */

import { StunErrorResponseError, TurnAuthError } from '../errors.js'
import type { StunAttribute, StunPasswordAlgorithm } from '../stun/attribute.js'
import { longTermKey } from '../stun/integrity.js'
import type { StunPasswordAlgorithmName } from '../stun/integrity.js'
import { createStunRequest, getAttribute } from '../stun/message.js'
import type { StunMethod } from '../stun/message-type.js'
import type { StunTransactionManager, StunResponse, StunRetransmitOptions } from '../stun/transaction.js'
import { checkTurnCredentials, type TurnCredentials } from './credentials.js'
import type { TurnServerAddress } from './turn-transport.js'

/** Options of one `LongTermAuthSession.request`. */
export interface TurnRequestOptions extends StunRetransmitOptions {
  /**
   * Cancels the request.
   * @default undefined
   */
  signal?: AbortSignal
}

/** How many 438 Stale Nonce answers one request retries before giving up. */
const MAX_STALE_NONCE_RETRIES = 3

/** RFC 8489 §9.2: the nonce cookie that announces the server's security features. */
const NONCE_COOKIE = 'obMatJos2'

/** Options of `LongTermAuthSession`. */
export interface LongTermAuthSessionOptions {
  /** Runs the transactions (responses must be fed to it by the caller). */
  transactions: StunTransactionManager
  /** Where requests go. */
  server: TurnServerAddress
  /** Username and password. */
  credentials: TurnCredentials
  /**
   * Retransmission parameters applied to every request.
   * @default {} (the transaction manager's defaults)
   */
  retransmit?: StunRetransmitOptions
  /**
   * Add SOFTWARE with this description to every request.
   * @default undefined
   */
  software?: string
  /**
   * Add FINGERPRINT to every request.
   * @default false
   */
  fingerprint?: boolean
}

/**
 * Sends requests to one TURN server with long-term credentials, handling 401 and 438
 * transparently.
 *
 * @internal
 */
export class LongTermAuthSession {
  readonly #tm: StunTransactionManager
  readonly #server: TurnServerAddress
  readonly #credentials: TurnCredentials
  readonly #retransmit: StunRetransmitOptions
  readonly #software: string | undefined
  readonly #fingerprint: boolean
  #realm: string | undefined
  #nonce: string | undefined
  #key: Uint8Array | undefined
  #algorithms: StunPasswordAlgorithm[] | undefined
  #algorithm: StunPasswordAlgorithm | undefined

  constructor(options: LongTermAuthSessionOptions) {
    checkTurnCredentials(options.credentials)
    this.#tm = options.transactions
    this.#server = options.server
    this.#credentials = { username: options.credentials.username, password: options.credentials.password }
    this.#retransmit = options.retransmit ?? {}
    this.#software = options.software
    this.#fingerprint = options.fingerprint === true
  }

  /** The realm the server announced, once known. */
  get realm(): string | undefined {
    return this.#realm
  }

  /** Whether the session has a key (a 401 challenge was answered). */
  get authenticated(): boolean {
    return this.#key !== undefined
  }

  #authAttributes(): StunAttribute[] {
    if (this.#key === undefined || this.#realm === undefined || this.#nonce === undefined) return []
    const attributes: StunAttribute[] = [
      { type: 'username', value: this.#credentials.username },
      { type: 'realm', value: this.#realm },
      { type: 'nonce', value: this.#nonce },
    ]
    if (this.#algorithms !== undefined && this.#algorithm !== undefined) {
      // RFC 8489 §9.2.4: echo PASSWORD-ALGORITHMS and name the one chosen.
      attributes.push({ type: 'password-algorithms', value: this.#algorithms })
      attributes.push({ type: 'password-algorithm', value: this.#algorithm })
    }
    return attributes
  }

  #adopt(realm: string, nonce: string, algorithms: StunPasswordAlgorithm[] | undefined): void {
    this.#realm = realm
    this.#nonce = nonce
    let name: StunPasswordAlgorithmName = 'md5'
    if (algorithms !== undefined && nonce.startsWith(NONCE_COOKIE)) {
      // RFC 8489 §9.2.4: use the first algorithm of the server's list that we support.
      const chosen = algorithms.find((a) => a.algorithm === 'md5' || a.algorithm === 'sha256')
      if (chosen !== undefined) {
        this.#algorithms = algorithms
        this.#algorithm = chosen
        name = chosen.algorithm as StunPasswordAlgorithmName
      }
    }
    // RFC 8489 §9.2.2: key = H(username ":" realm ":" password).
    this.#key = longTermKey(this.#credentials.username, realm, this.#credentials.password, name)
  }

  /**
   * Sends a request and resolves with its success response.
   *
   * Rejects with `TurnAuthError` (401 after credentials were sent, or 441),
   * `StunErrorResponseError` (any other error response, and 438 after repeated retries),
   * `StunTimeoutError`, `AbortError` or `SocketClosedError`.
   */
  async request(method: StunMethod, attributes: StunAttribute[], options: TurnRequestOptions = {}): Promise<StunResponse> {
    let staleRetries = 0
    let challenges = 0
    for (;;) {
      const key = this.#key
      const usedNonce = this.#nonce
      const all = [...attributes, ...this.#authAttributes()]
      if (this.#software !== undefined) all.push({ type: 'software', value: this.#software })
      // Every retry is a new transaction with a new transaction ID (RFC 8489 §9.2.5).
      const response = await this.#tm.request(createStunRequest(method, all), {
        host: this.#server.host,
        port: this.#server.port,
        ...this.#retransmit,
        ...definedRetransmit(options),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(key === undefined ? {} : { integrityKey: key }),
        fingerprint: this.#fingerprint,
        acceptErrorResponse: true,
      })
      if (response.class === 'success') return response
      const error = getAttribute(response, 'error-code')?.value
      const code = error?.code ?? 0
      const reason = error?.reason ?? 'error response without ERROR-CODE'
      const realm = getAttribute(response, 'realm')?.value
      const nonce = getAttribute(response, 'nonce')?.value
      const algorithms = getAttribute(response, 'password-algorithms')?.value
      if (code === 438 && nonce !== undefined && staleRetries < MAX_STALE_NONCE_RETRIES) {
        // RFC 8489 §9.2.5: 438 Stale Nonce — retry with the NONCE (and REALM) of the response.
        staleRetries++
        if (key === undefined && realm !== undefined) this.#adopt(realm, nonce, algorithms)
        else if (realm !== undefined && realm !== this.#realm) this.#adopt(realm, nonce, this.#algorithms)
        else this.#nonce = nonce
        continue
      }
      if (code === 401) {
        // RFC 8489 §9.2.5: answer the first challenge with credentials; after that, retry
        // only when the server handed out a different nonce (its old one expired).
        const canRetry = realm !== undefined && nonce !== undefined && (key === undefined || nonce !== usedNonce) && challenges < 2
        if (canRetry) {
          challenges++
          this.#adopt(realm, nonce, key === undefined ? algorithms : this.#algorithms)
          continue
        }
        throw new TurnAuthError(
          401,
          key === undefined
            ? `TURN server answered ${method} with 401 ${reason} without REALM and NONCE`
            : `TURN server rejected the credentials of ${JSON.stringify(this.#credentials.username)}: 401 ${reason}`,
        )
      }
      if (code === 441) throw new TurnAuthError(441, `TURN server rejected the credentials: 441 ${reason}`)
      throw new StunErrorResponseError(code, reason)
    }
  }
}

function definedRetransmit(o: StunRetransmitOptions): StunRetransmitOptions {
  return {
    ...(o.rto === undefined ? {} : { rto: o.rto }),
    ...(o.rc === undefined ? {} : { rc: o.rc }),
    ...(o.rm === undefined ? {} : { rm: o.rm }),
  }
}
