/**
 * TURN server authentication: long-term credentials (RFC 8489 §9.2) with users from the
 * configuration and the TURN REST API (draft-uberti-behave-turn-rest, as coturn's
 * `use-auth-secret`), plus stateless nonces.
 *
 * A NONCE is `EXPIRY ‖ MAC` where EXPIRY is the Unix time (seconds, 8 hex digits) after
 * which it is stale and MAC an HMAC-SHA256 of (EXPIRY, client IP) under a server secret:
 * checking one needs no state per client, and a nonce given to one IP is useless from
 * another. Derived REST API keys and verified nonces are memoised in bounded maps, so
 * the requests that follow the first of a client cost one HMAC to verify, not four.
 *
 * @module
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { InvalidArgumentError } from '../../errors.js'
import { longTermKey, verifyIntegrity } from '../../stun/integrity.js'
import { getAttribute, type DecodedStunMessage } from '../../stun/message.js'
import { BoundedMap } from './bounded-map.js'

/** Options of {@link TurnAuthenticator}. */
export interface TurnAuthenticatorOptions {
  /** The realm. */
  realm: string
  /**
   * Long-term keys (MD5(user:realm:password)) by username.
   * @default empty
   */
  users?: ReadonlyMap<string, Uint8Array>
  /**
   * REST API secrets; empty disables REST API usernames.
   * @default []
   */
  staticAuthSecrets?: readonly string[]
  /**
   * Separator between expiry and user in REST API usernames.
   * @default ':'
   */
  restApiSeparator?: string
  /**
   * Nonce lifetime in milliseconds.
   * @default 600_000
   */
  nonceLifetimeMs?: number
  /**
   * Nonce HMAC secret.
   * @default 32 random bytes
   */
  nonceSecret?: Uint8Array
  /**
   * Wall clock in milliseconds since the epoch (tests pass their own).
   * @default Date.now
   */
  now?: () => number
}

/** Why a request was not authenticated (for counters and logs; never sent to clients). */
export type TurnAuthFailure =
  | 'challenge' // no MESSAGE-INTEGRITY: the first request of a client
  | 'bad-request' // integrity without USERNAME, REALM or NONCE
  | 'stale-nonce' // nonce expired, forged or from another IP
  | 'wrong-realm'
  | 'unknown-user'
  | 'expired' // REST API username past its expiry time
  | 'wrong-password' // MESSAGE-INTEGRITY does not verify

/** Outcome of {@link TurnAuthenticator.authenticate}. */
export type TurnAuthResult =
  | {
      /** Authenticated. */
      ok: true
      /** The USERNAME. */
      username: string
      /** The long-term key that verified the request (for the response's integrity). */
      key: Uint8Array
    }
  | {
      /** Not authenticated. */
      ok: false
      /** STUN error code to answer with: 400, 401 or 438. */
      code: 400 | 401 | 438
      /** Why. */
      failure: TurnAuthFailure
      /** The USERNAME, when the request had one (for logs). */
      username?: string
    }

/**
 * The TURN REST API password of a username: base64(HMAC-SHA1(secret, username)).
 *
 * @example
 * ```ts
 * import { restApiPassword } from 'peerlink/server'
 *
 * // coturn's use-auth-secret scheme: the password is base64(HMAC-SHA1(secret, username)).
 * const username = `${Math.floor(Date.now() / 1000) + 3600}:alice`
 * const password = restApiPassword(process.env.TURN_SECRET!, username)
 * ```
 */
export function restApiPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64')
}

/**
 * TURN REST API credentials valid for `ttlSeconds`: username `EXPIRY:user` (or `EXPIRY`
 * without a user) and its password.
 *
 * @example
 * ```ts
 * import { createRestApiCredentials } from 'peerlink/server'
 *
 * // Hand a browser or a peer credentials valid for one hour (the server keeps the secret).
 * const { username, password } = createRestApiCredentials(process.env.TURN_SECRET!, 'alice', 3600)
 * response.end(JSON.stringify({ urls: 'turn:turn.example.com:3478', username, credential: password }))
 * ```
 */
export function createRestApiCredentials(
  secret: string,
  user: string | undefined,
  ttlSeconds: number,
  options: { now?: number; separator?: string } = {},
): { username: string; password: string } {
  if (typeof secret !== 'string' || secret.length === 0) throw new InvalidArgumentError('secret must be a non-empty string')
  if (!Number.isFinite(ttlSeconds)) throw new InvalidArgumentError('ttlSeconds must be a number')
  const expiry = Math.floor((options.now ?? Date.now()) / 1000 + ttlSeconds)
  const username = user === undefined || user === '' ? String(expiry) : `${expiry}${options.separator ?? ':'}${user}`
  return { username, password: restApiPassword(secret, username) }
}

const NONCE_MAC_LENGTH = 22

/**
 * Entries of the memos of derived REST API keys and of verified nonces. Every request of
 * a client carries the same USERNAME and NONCE, so remembering them spares two HMACs and
 * an MD5 per request (about half the CPU of a warm ChannelBind or Refresh).
 */
const MEMO_ENTRIES = 4096

/** Verifies long-term and REST API credentials and issues/validates nonces. */
export class TurnAuthenticator {
  /** The realm. */
  readonly realm: string
  readonly #users: ReadonlyMap<string, Uint8Array>
  readonly #secrets: readonly string[]
  readonly #separator: string
  readonly #nonceLifetimeMs: number
  readonly #nonceSecret: Uint8Array
  readonly #now: () => number
  /** REST API username → its keys (one per secret): pure functions of the username. */
  readonly #restKeys = new BoundedMap<string, readonly Uint8Array[]>(MEMO_ENTRIES)
  /** Nonce → the client IP it was verified for (its MAC need not be computed again). */
  readonly #verifiedNonces = new BoundedMap<string, string>(MEMO_ENTRIES)

  constructor(options: TurnAuthenticatorOptions) {
    this.realm = options.realm
    this.#users = options.users ?? new Map()
    this.#secrets = options.staticAuthSecrets ?? []
    this.#separator = options.restApiSeparator ?? ':'
    this.#nonceLifetimeMs = options.nonceLifetimeMs ?? 600_000
    this.#nonceSecret = options.nonceSecret ?? new Uint8Array(randomBytes(32))
    this.#now = options.now ?? Date.now
  }

  #mac(expiry: string, clientIp: string): string {
    return createHmac('sha256', this.#nonceSecret).update(`${expiry}|${clientIp}`).digest('base64url').slice(0, NONCE_MAC_LENGTH)
  }

  /** A fresh nonce for a client IP. */
  createNonce(clientIp: string): string {
    const expiry = Math.ceil((this.#now() + this.#nonceLifetimeMs) / 1000)
      .toString(16)
      .padStart(8, '0')
    return expiry + this.#mac(expiry, clientIp)
  }

  /** Whether `nonce` was issued by this server (secret) to `clientIp` and is not stale. */
  checkNonce(nonce: string, clientIp: string): boolean {
    if (nonce.length !== 8 + NONCE_MAC_LENGTH) return false
    const expiry = nonce.slice(0, 8)
    if (!/^[0-9a-f]{8}$/.test(expiry)) return false
    if (parseInt(expiry, 16) * 1000 < this.#now()) return false
    // Expiry is checked above on every use; the MAC only once per nonce and IP.
    if (this.#verifiedNonces.get(nonce) === clientIp) return true
    const expected = Buffer.from(this.#mac(expiry, clientIp))
    const given = Buffer.from(nonce.slice(8))
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false
    this.#verifiedNonces.set(nonce, clientIp)
    return true
  }

  /**
   * The candidate keys of a username: the configured user's key, or one key per REST API
   * secret; `'expired'` for a REST username past its time; `undefined` if unknown.
   */
  keysFor(username: string): readonly Uint8Array[] | 'expired' | undefined {
    const key = this.#users.get(username)
    if (key !== undefined) return [key]
    if (this.#secrets.length === 0) return undefined
    // REST API: "EXPIRY" or "EXPIRY<sep>USER", EXPIRY in Unix seconds.
    const sep = username.indexOf(this.#separator)
    const stamp = sep < 0 ? username : username.slice(0, sep)
    if (!/^[0-9]{1,12}$/.test(stamp)) return undefined
    if (Number(stamp) * 1000 < this.#now()) return 'expired'
    let keys = this.#restKeys.get(username)
    if (keys === undefined) {
      keys = this.#secrets.map((secret) => longTermKey(username, this.realm, restApiPassword(secret, username)))
      this.#restKeys.set(username, keys)
    }
    return keys
  }

  /**
   * Checks a request's long-term credentials in the order of RFC 8489 §9.2.4.
   */
  authenticate(request: DecodedStunMessage, clientIp: string): TurnAuthResult {
    // RFC 8489 §9.2.4: no integrity → 401 with REALM and NONCE (the challenge).
    if (request.integrityOffset === undefined && request.integritySha256Offset === undefined) {
      return { ok: false, code: 401, failure: 'challenge' }
    }
    const username = getAttribute(request, 'username')?.value
    const realm = getAttribute(request, 'realm')?.value
    const nonce = getAttribute(request, 'nonce')?.value
    // RFC 8489 §9.2.4: integrity but no USERNAME (USERHASH is not offered), REALM or NONCE → 400.
    if (username === undefined || realm === undefined || nonce === undefined) {
      return { ok: false, code: 400, failure: 'bad-request' }
    }
    // RFC 8489 §9.2.4: a nonce that is no longer valid → 438 with a new one.
    if (!this.checkNonce(nonce, clientIp)) return { ok: false, code: 438, failure: 'stale-nonce', username }
    if (realm !== this.realm) return { ok: false, code: 401, failure: 'wrong-realm', username }
    const keys = this.keysFor(username)
    if (keys === undefined) return { ok: false, code: 401, failure: 'unknown-user', username }
    if (keys === 'expired') return { ok: false, code: 401, failure: 'expired', username }
    for (const key of keys) {
      if (verifyIntegrity(request, key)) return { ok: true, username, key }
    }
    return { ok: false, code: 401, failure: 'wrong-password', username }
  }
}
