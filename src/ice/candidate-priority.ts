/**
 * Candidate priorities (RFC 8445 §5.1.2) and the local preferences of a multihomed,
 * dual-stack host (RFC 8421).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import type { CandidateType } from './candidate.js'
import { ipFamily } from './canonical-address.js'

/**
 * Type preferences (RFC 8445 §5.1.2.2, recommended values): host 126, peer-reflexive 110,
 * server-reflexive 100, relayed 0.
 */
export const TYPE_PREFERENCES: Readonly<Record<CandidateType, number>> = Object.freeze({
  host: 126,
  prflx: 110,
  srflx: 100,
  relay: 0,
})

/** The highest local preference (RFC 8445 §5.1.2.1: 0–65535; 65535 for a single-homed host). */
export const MAX_LOCAL_PREFERENCE = 65535

/** The ICE component peerlink uses: one UDP flow, component 1 (RFC 8445 §4). */
export const ICE_COMPONENT_ID = 1

/**
 * A candidate's priority (RFC 8445 §5.1.2.1):
 * `2^24 × type preference + 2^8 × local preference + (256 − component ID)`.
 * Computed with multiplications: `126 << 24` would overflow a 32-bit signed integer.
 *
 * @example
 * ```ts
 * candidatePriority('host') // 2130706431 (126·2^24 + 65535·2^8 + 255)
 * ```
 * @throws InvalidArgumentError for an unknown type or an out-of-range preference or component.
 */
export function candidatePriority(
  type: CandidateType,
  localPreference: number = MAX_LOCAL_PREFERENCE,
  componentId: number = ICE_COMPONENT_ID,
): number {
  const typePreference = TYPE_PREFERENCES[type]
  if (typePreference === undefined || !Object.hasOwn(TYPE_PREFERENCES, type)) {
    throw new InvalidArgumentError(`Unknown candidate type ${JSON.stringify(type)}`)
  }
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > MAX_LOCAL_PREFERENCE) {
    throw new InvalidArgumentError(`localPreference must be an integer in 0..65535, got ${String(localPreference)}`)
  }
  if (!Number.isInteger(componentId) || componentId < 1 || componentId > 256) {
    throw new InvalidArgumentError(`componentId must be an integer in 1..256, got ${String(componentId)}`)
  }
  // RFC 8445 §5.1.2.1
  return typePreference * 2 ** 24 + localPreference * 2 ** 8 + (256 - componentId)
}

/**
 * Local preferences for a host's addresses (RFC 8445 §5.1.2.1 with RFC 8421 §4): every
 * address gets a distinct value; IPv6 is preferred, but the two families are intermingled
 * (IPv6, IPv4, IPv6, IPv4, …) so that a broken IPv6 path costs at most one check before an
 * IPv4 one is tried (RFC 8421 §4); within a family the given order (interface order,
 * most preferred first) is kept (RFC 8421 §3). The first address gets 65535, the next
 * 65534, and so on.
 *
 * Addresses that are not IP literals are ignored; duplicates keep their first rank.
 *
 * @example
 * ```ts
 * hostLocalPreferences(['192.168.1.2', '2001:db8::2', '10.0.0.2'])
 * // Map { '2001:db8::2' => 65535, '192.168.1.2' => 65534, '10.0.0.2' => 65533 }
 * ```
 */
export function hostLocalPreferences(addresses: readonly string[]): Map<string, number> {
  const v6: string[] = []
  const v4: string[] = []
  const seen = new Set<string>()
  for (const address of addresses) {
    if (seen.has(address)) continue
    seen.add(address)
    const family = ipFamily(address)
    if (family === 'IPv6') v6.push(address)
    else if (family === 'IPv4') v4.push(address)
  }
  const result = new Map<string, number>()
  let preference = MAX_LOCAL_PREFERENCE
  for (let i = 0; i < Math.max(v4.length, v6.length) && preference >= 0; i++) {
    // RFC 8421 §4: IPv6 first, families intermingled.
    if (i < v6.length) result.set(v6[i] as string, preference--)
    if (i < v4.length && preference >= 0) result.set(v4[i] as string, preference--)
  }
  return result
}
