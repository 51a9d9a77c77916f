/**
 * The client's table of channel bindings (RFC 8656 §12): channel numbers
 * 0x4000–0x4FFF, each bound to one peer transport address for the allocation's life.
 *
 * @module
 */

import { InvalidArgumentError } from '../errors.js'
import type { TransportAddress } from '../stun/address.js'
import { MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER } from '../stun/channel-data.js'

/** One channel of the table. */
export interface ChannelBinding {
  /** Channel number, 0x4000–0x4FFF. */
  number: number
  /** The peer transport address it is bound to. */
  peer: TransportAddress
  /** Whether the server confirmed the binding (ChannelData may be sent). */
  bound: boolean
  /** The ChannelBind in flight, if any. */
  pending: Promise<number> | undefined
}

/** A key for a peer transport address (the host in comparable form). */
export function peerKey(peer: { host: string; port: number }): string {
  return `${peer.host}|${peer.port}`
}

/**
 * Channel numbers by peer and peers by channel number. Numbers are handed out in
 * order and never reused for another peer: RFC 8656 §12 forbids rebinding a channel
 * to a different peer (and a number to another peer within 5 minutes of expiry).
 *
 * @internal
 */
export class ChannelBindingTable {
  readonly #byPeer = new Map<string, ChannelBinding>()
  readonly #byNumber = new Map<number, ChannelBinding>()
  #next = MIN_CHANNEL_NUMBER

  /** The binding of `peer`, if any. */
  forPeer(peer: { host: string; port: number }): ChannelBinding | undefined {
    return this.#byPeer.get(peerKey(peer))
  }

  /** The binding with channel `number`, if any. */
  forNumber(number: number): ChannelBinding | undefined {
    return this.#byNumber.get(number)
  }

  /**
   * Reserves the next free number for `peer`.
   *
   * @throws InvalidArgumentError when all 4096 numbers are taken.
   */
  reserve(peer: TransportAddress): ChannelBinding {
    if (this.#next > MAX_CHANNEL_NUMBER) throw new InvalidArgumentError('All 4096 TURN channel numbers of this allocation are in use')
    const binding: ChannelBinding = { number: this.#next++, peer, bound: false, pending: undefined }
    this.#byPeer.set(peerKey(peer), binding)
    this.#byNumber.set(binding.number, binding)
    return binding
  }

  /** Forgets a binding the server refused (its number is not handed out again). */
  remove(binding: ChannelBinding): void {
    if (this.#byPeer.get(peerKey(binding.peer)) === binding) this.#byPeer.delete(peerKey(binding.peer))
    if (this.#byNumber.get(binding.number) === binding) this.#byNumber.delete(binding.number)
  }

  /** Confirmed bindings. */
  bound(): ChannelBinding[] {
    return [...this.#byNumber.values()].filter((b) => b.bound)
  }

  /** Number of bindings, pending or confirmed. */
  get size(): number {
    return this.#byNumber.size
  }

  /** Forgets everything. */
  clear(): void {
    this.#byPeer.clear()
    this.#byNumber.clear()
  }
}
