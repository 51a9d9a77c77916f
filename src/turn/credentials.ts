/**
 * TURN credentials: long-term username/password (RFC 8489 §9.2) and the time-limited
 * credentials of the "TURN REST API" (draft-uberti-behave-turn-rest-00), which a
 * service derives from a secret it shares with the TURN server (coturn's
 * `use-auth-secret` + `static-auth-secret`).
 *
 * @module
 */

import { createHmac } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'

/** Long-term credentials for a TURN server. */
export interface TurnCredentials {
  /** The USERNAME sent to the server. */
  username: string
  /** The password; the key is MD5(username ":" realm ":" password) (RFC 8489 §9.2.2). */
  password: string
}

/** Credentials made by {@link turnRestCredentials}. */
export interface TurnRestCredentials extends TurnCredentials {
  /** When they stop working, in Unix seconds (the number at the start of the username). */
  expiry: number
}

/** Options of {@link turnRestCredentials}. */
export interface TurnRestCredentialsOptions {
  /** The secret shared with the TURN server (coturn's `static-auth-secret`), as text or bytes. */
  secret: string | Uint8Array
  /**
   * An application user id appended to the username after the separator; the server
   * does not check it, it shows up in its logs.
   * @default undefined (the username is just the expiry time)
   */
  user?: string
  /**
   * How long the credentials stay valid, in seconds. An allocation must be refreshed
   * with the same credentials, so make it longer than the allocation should live.
   * @default 86400 (one day)
   */
  ttl?: number
  /**
   * The current time in milliseconds since the epoch.
   * @default Date.now()
   */
  now?: number
  /**
   * Between expiry and user (coturn's `rest-api-separator`).
   * @default ':'
   */
  separator?: string
}

/** Throws `InvalidArgumentError` unless `credentials` is `{ username, password }` of non-empty strings. */
export function checkTurnCredentials(credentials: TurnCredentials): void {
  if (credentials === null || typeof credentials !== 'object') throw new InvalidArgumentError('TURN credentials must be { username, password }')
  if (typeof credentials.username !== 'string' || credentials.username === '') {
    throw new InvalidArgumentError('TURN credentials need a non-empty username')
  }
  if (typeof credentials.password !== 'string') throw new InvalidArgumentError('TURN credentials need a password string')
}

/**
 * Derives TURN REST API credentials: username `${expiry}:${user}` (or just `${expiry}`),
 * password base64(HMAC-SHA1(secret, username)).
 *
 * @example
 * ```ts
 * import { turnRestCredentials } from 'peerlink'
 *
 * const { username, password } = turnRestCredentials({ secret: process.env.TURN_SECRET!, user: 'alice', ttl: 3600 })
 * ```
 * @throws InvalidArgumentError on an empty secret, a non-positive ttl or a user containing the separator.
 */
export function turnRestCredentials(options: TurnRestCredentialsOptions): TurnRestCredentials {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('turnRestCredentials needs options')
  const { secret, user, ttl = 86_400, now = Date.now(), separator = ':' } = options
  if (!(typeof secret === 'string' || secret instanceof Uint8Array) || secret.length === 0) {
    throw new InvalidArgumentError('turnRestCredentials needs a non-empty secret (string or Uint8Array)')
  }
  if (!Number.isFinite(ttl) || ttl <= 0) throw new InvalidArgumentError(`ttl must be a positive number of seconds, got ${String(ttl)}`)
  if (!Number.isFinite(now)) throw new InvalidArgumentError('now must be a number of milliseconds')
  if (typeof separator !== 'string' || separator.length === 0) throw new InvalidArgumentError('separator must be a non-empty string')
  if (user !== undefined && (typeof user !== 'string' || user.includes(separator))) {
    throw new InvalidArgumentError(`user must be a string without ${JSON.stringify(separator)}`)
  }
  const expiry = Math.floor(now / 1000 + ttl)
  const username = user === undefined || user === '' ? String(expiry) : `${expiry}${separator}${user}`
  const password = createHmac('sha1', secret).update(username, 'utf8').digest('base64')
  return { username, password, expiry }
}
