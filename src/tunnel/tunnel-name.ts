/**
 * Tunnel names: the `NAME` of `NAME.<domain>` under which a device's HTTP service is
 * published. A name is one DNS label in lower case (RFC 1035 §2.3.1, with digits allowed
 * first as RFC 1123 §2.1 permits): 1 to 63 characters of `a-z`, `0-9` and inner `-`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'

/**
 * Longest tunnel name (a DNS label, RFC 1035 §2.3.4).
 *
 * @example
 * ```ts
 * import { hostname } from 'node:os'
 * import { TUNNEL_NAME_MAX_LENGTH } from 'peerlink'
 *
 * const name = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, TUNNEL_NAME_MAX_LENGTH)
 * ```
 */
export const TUNNEL_NAME_MAX_LENGTH = 63

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * True when `value` is a valid tunnel name (one lower-case DNS label).
 *
 * @example
 * ```ts
 * import { isTunnelName } from 'peerlink'
 *
 * isTunnelName('kitchen-pi')   // true
 * isTunnelName('Kitchen')      // false: lower case only
 * isTunnelName('-pi')          // false: no leading "-"
 * ```
 */
export function isTunnelName(value: unknown): value is string {
  return typeof value === 'string' && LABEL.test(value)
}

/**
 * Checks a name a user asked for and returns it in lower case.
 *
 * @throws {@link InvalidArgumentError} when it is not one DNS label.
 *
 * @example
 * ```ts
 * import { normalizeTunnelName } from 'peerlink'
 *
 * normalizeTunnelName('Kitchen-Pi')   // 'kitchen-pi'
 * normalizeTunnelName('my.device')    // throws InvalidArgumentError: not one DNS label
 * ```
 */
export function normalizeTunnelName(name: string): string {
  const lower = typeof name === 'string' ? name.toLowerCase() : name
  if (!isTunnelName(lower)) {
    throw new InvalidArgumentError(`tunnel name ${JSON.stringify(name)} is not a DNS label (1 to 63 characters of a-z, 0-9 and inner "-")`)
  }
  return lower
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/** A random name for a device that asked for none: `t-` and 10 base32 characters (50 bits). */
export function randomTunnelName(): string {
  const bytes = randomBytes(10)
  let out = 't-'
  for (const byte of bytes) out += ALPHABET[byte & 31]
  return out
}
