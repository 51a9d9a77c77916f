/**
 * A TURN channel binding (RFC 8656 §11): a channel number bound to one peer transport
 * address of an allocation, so data flows as 4-byte-header ChannelData instead of
 * Send/Data indications.
 *
 * @module
 */

import type { TurnUdpSocket } from './udp-socket.js'
import type { TransportAddress } from '../../stun/address.js'
import type { Permission } from './permission.js'

/**
 * RFC 8656 §11: after a binding expires, neither its channel number nor its peer address
 * may be bound to something else for 5 minutes.
 */
export const CHANNEL_REBIND_GUARD_MS = 300_000

/** One channel binding of an allocation. */
export class ChannelBinding {
  /** Channel number, 0x4000–0x4FFF (0x7FFF with the RFC 5766 range). */
  readonly number: number
  /** The peer transport address. */
  readonly peer: TransportAddress
  /** The permission of the peer's IP (installed and refreshed along with the binding). */
  readonly permission: Permission
  /** The relay socket toward the peer (the allocation's socket of the peer's family). */
  readonly relay: TurnUdpSocket
  /** Expiry time on the server's monotonic clock (ms). */
  expiresAt = 0
  /** Whether the binding is in force (false once expired). */
  active = false
  /** Id of its native fast-path route (0: none; see `Allocation`). */
  route = 0

  constructor(number: number, peer: TransportAddress, permission: Permission, relay: TurnUdpSocket) {
    this.number = number
    this.peer = peer
    this.permission = permission
    this.relay = relay
  }

  /** Binds or refreshes until `now + lifetimeMs` (RFC 8656 §11.2). */
  refresh(now: number, lifetimeMs: number): void {
    this.expiresAt = now + lifetimeMs
    this.active = true
  }

  /**
   * Deactivates the binding once expired. Returns true once the 5-minute guard after
   * expiry has passed and the binding can be forgotten.
   */
  sweep(now: number): boolean {
    if (this.active && this.expiresAt <= now) this.active = false
    return !this.active && this.expiresAt + CHANNEL_REBIND_GUARD_MS <= now
  }
}
