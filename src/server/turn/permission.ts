/**
 * A TURN permission (RFC 8656 §9): the peer IP address an allocation may exchange data
 * with, for a lifetime refreshed by CreatePermission and ChannelBind.
 *
 * @module
 */

import type { AddressFamily } from '../../stun/address.js'
import type { ChannelBinding } from './channel-binding.js'

/**
 * A permission of one allocation for one peer IP. Expired permissions stay in their
 * allocation's table (inactive) as long as channel bindings refer to them, so a
 * ChannelBind refresh can revive them.
 */
export class Permission {
  /** The peer IP, in the text form the relay socket reports for a sender (`UdpRemote.host`). */
  readonly host: string
  /** Address family of {@link Permission.host}. */
  readonly family: AddressFamily
  /** The IP's 4 or 16 bytes (for XOR-PEER-ADDRESS of Data indications). */
  readonly ip: Uint8Array
  /** Channel bindings to transport addresses of this IP, by peer port. */
  readonly channels = new Map<number, ChannelBinding>()
  /** Expiry time on the server's monotonic clock (ms). */
  expiresAt = 0
  /** Whether data may flow (false once expired, until refreshed). */
  active = false

  constructor(host: string, family: AddressFamily, ip: Uint8Array) {
    this.host = host
    this.family = family
    this.ip = ip
  }

  /** Installs or refreshes the permission until `now + lifetimeMs` (RFC 8656 §9). */
  refresh(now: number, lifetimeMs: number): void {
    this.expiresAt = now + lifetimeMs
    this.active = true
  }

  /**
   * Deactivates the permission once expired. Returns true when it can be forgotten
   * (expired and no channel binding refers to it).
   */
  sweep(now: number): boolean {
    if (this.active && this.expiresAt <= now) this.active = false
    return !this.active && this.channels.size === 0
  }
}
