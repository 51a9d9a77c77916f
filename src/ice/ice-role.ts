/**
 * ICE roles (RFC 8445 §6.1.1) and the tie-breaker used to resolve role conflicts.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'

/**
 * The agent's role: the `controlling` agent (peerlink: the connecting side) nominates the
 * pair; the `controlled` agent follows.
 */
export type IceRole = 'controlling' | 'controlled'

/** The other role. */
export function oppositeRole(role: IceRole): IceRole {
  return role === 'controlling' ? 'controlled' : 'controlling'
}

/** A random 64-bit tie-breaker (RFC 8445 §7.1.1: uniformly distributed, as ICE-CONTROLLING/-CONTROLLED carry it). */
export function randomTieBreaker(): bigint {
  return randomBytes(8).readBigUInt64BE(0)
}
