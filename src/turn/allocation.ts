/**
 * A TURN allocation as the client sees it (RFC 8656 §7): the Allocate request's
 * attributes, the success response's addresses and lifetime, and when to refresh.
 *
 * @module
 */

import { InvalidArgumentError, StunMalformedError } from '../errors.js'
import type { AddressFamily, TransportAddress } from '../stun/address.js'
import type { StunAttribute } from '../stun/attribute.js'
import { getAttribute, getAttributes } from '../stun/message.js'
import type { StunMessage } from '../stun/message.js'

/**
 * RFC 8656 §18.11 / IANA protocol number of UDP: the only relay transport this client asks for.
 *
 * @example
 * ```ts
 * import { REQUESTED_TRANSPORT_UDP, createStunRequest } from 'peerlink'
 *
 * // The attribute every Allocate request carries (RFC 8656 §7.1): relay UDP.
 * const allocate = createStunRequest('allocate', [{ type: 'requested-transport', value: REQUESTED_TRANSPORT_UDP }])
 * ```
 */
export const REQUESTED_TRANSPORT_UDP = 17

/**
 * RFC 8656 §3: an allocation lives 10 minutes unless refreshed (used when a response omits LIFETIME).
 *
 * @example
 * ```ts
 * import { DEFAULT_ALLOCATION_LIFETIME, TurnClient } from 'peerlink'
 *
 * const client = await TurnClient.connect({ server: 'turn:turn.example.com:3478?transport=tcp', credentials })
 * // Ask for half an hour; a server that omits LIFETIME grants DEFAULT_ALLOCATION_LIFETIME (600 s).
 * const { lifetime } = await client.allocate({ lifetime: 3 * DEFAULT_ALLOCATION_LIFETIME })
 * ```
 */
export const DEFAULT_ALLOCATION_LIFETIME = 600

/** Options of `TurnClient.allocate`. */
export interface TurnAllocateOptions {
  /**
   * Cancels the request (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Lifetime to ask for, in seconds (LIFETIME, RFC 8656 §7.1); the server may grant
   * another value. Also asked for by every refresh.
   * @default undefined (the server's default, usually 600 s)
   */
  lifetime?: number
  /**
   * Family of the relayed address (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1).
   * @default undefined (the server's default: IPv4)
   */
  family?: AddressFamily
  /**
   * Ask the server to set the DF bit on relayed datagrams (DONT-FRAGMENT, RFC 8656 §7.1).
   * @default false
   */
  dontFragment?: boolean
}

/** What a successful Allocate gave us. */
export interface TurnAllocation {
  /** The relayed transport address: where peers send to reach us (XOR-RELAYED-ADDRESS). */
  relayed: TransportAddress
  /** Every relayed address of the response (two for a dual-stack allocation, RFC 8656 §7.1). */
  relayedAddresses: TransportAddress[]
  /** Our address as the server saw it (XOR-MAPPED-ADDRESS), if the server sent it. */
  mapped: TransportAddress | undefined
  /** Granted lifetime in seconds. */
  lifetime: number
  /** The realm the credentials were used in. */
  realm: string | undefined
}

/** Throws `InvalidArgumentError` if a requested lifetime is not a whole number of seconds ≥ 0. */
export function checkLifetime(lifetime: number | undefined, where: string): void {
  if (lifetime !== undefined && !(Number.isInteger(lifetime) && lifetime >= 0 && lifetime <= 0xffffffff)) {
    throw new InvalidArgumentError(`${where}: lifetime must be a whole number of seconds, got ${String(lifetime)}`)
  }
}

/** The attributes of an Allocate request (RFC 8656 §7.1), credentials aside. */
export function allocateAttributes(options: TurnAllocateOptions): StunAttribute[] {
  checkLifetime(options.lifetime, 'allocate')
  if (options.family !== undefined && options.family !== 'IPv4' && options.family !== 'IPv6') {
    throw new InvalidArgumentError(`allocate: family must be 'IPv4' or 'IPv6', got ${JSON.stringify(options.family)}`)
  }
  // RFC 8656 §7.1: REQUESTED-TRANSPORT is mandatory; UDP is the only value RFC 8656 defines.
  const attributes: StunAttribute[] = [{ type: 'requested-transport', value: REQUESTED_TRANSPORT_UDP }]
  if (options.lifetime !== undefined) attributes.push({ type: 'lifetime', value: options.lifetime })
  if (options.family !== undefined) attributes.push({ type: 'requested-address-family', value: options.family })
  if (options.dontFragment === true) attributes.push({ type: 'dont-fragment' })
  return attributes
}

/**
 * Reads an Allocate success response (RFC 8656 §7.3).
 *
 * @throws StunMalformedError if it has no XOR-RELAYED-ADDRESS.
 */
export function parseAllocateResponse(response: StunMessage, realm: string | undefined): TurnAllocation {
  const relayedAddresses = getAttributes(response, 'xor-relayed-address').map((a) => a.value)
  const relayed = relayedAddresses[0]
  if (relayed === undefined) throw new StunMalformedError('Allocate success response has no XOR-RELAYED-ADDRESS')
  return {
    relayed,
    relayedAddresses,
    mapped: getAttribute(response, 'xor-mapped-address')?.value,
    lifetime: lifetimeOf(response),
    realm,
  }
}

/** The LIFETIME of a response in seconds, {@link DEFAULT_ALLOCATION_LIFETIME} if absent. */
export function lifetimeOf(response: StunMessage): number {
  return getAttribute(response, 'lifetime')?.value ?? DEFAULT_ALLOCATION_LIFETIME
}

/**
 * Milliseconds until the allocation should be refreshed: `ratio` of its lifetime, but
 * at least 1 s before it expires when the lifetime allows (RFC 8656 §8: refresh before expiry).
 */
export function refreshDelay(lifetimeSeconds: number, ratio: number): number {
  const lifetime = lifetimeSeconds * 1000
  const delay = lifetime * ratio
  return lifetime - delay < 1000 && lifetime > 2000 ? lifetime - 1000 : delay
}
