/**
 * TURN permissions (RFC 8656 §9): the peer IP addresses the server relays to and from.
 * A permission is per IP address (ports are ignored) and lasts 300 s unless refreshed.
 *
 * @module
 */

import { isIP } from 'node:net'
import { InvalidArgumentError } from '../errors.js'
import type { TransportAddress } from '../stun/address.js'
import { comparableIp } from './turn-transport.js'

/** A peer as the client API accepts it: an IP literal, or an IP literal and port. */
export type TurnPeerAddress = string | { host: string; port?: number }

/**
 * Validates a peer and returns it as a {@link TransportAddress} (IPv4-mapped IPv6
 * written as IPv4; port 0 when none is given and `needPort` is false).
 *
 * @throws InvalidArgumentError if the host is not an IP literal or the port is invalid.
 */
export function toPeerAddress(peer: TurnPeerAddress, needPort: boolean, where: string): TransportAddress {
  const host = typeof peer === 'string' ? peer : peer?.host
  const port = typeof peer === 'string' ? undefined : peer?.port
  if (typeof host !== 'string' || isIP(host) === 0) {
    throw new InvalidArgumentError(`${where}: a peer is an IP address literal, got ${JSON.stringify(host)}`)
  }
  if (needPort || port !== undefined) {
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 0xffff) {
      throw new InvalidArgumentError(`${where}: invalid peer port ${String(port)}`)
    }
  }
  const ip = comparableIp(host)
  return { family: isIP(ip) === 6 ? 'IPv6' : 'IPv4', host: ip, port: port ?? 0 }
}

/**
 * The peer IP addresses the client keeps permissions for; refreshed together in one
 * CreatePermission request (RFC 8656 §9.1 allows several XOR-PEER-ADDRESS).
 *
 * @internal
 */
export class PermissionSet {
  readonly #ips = new Map<string, TransportAddress>()

  /** Adds peers (by IP). */
  add(peers: TransportAddress[]): void {
    for (const peer of peers) this.#ips.set(peer.host, { family: peer.family, host: peer.host, port: 0 })
  }

  /** Whether a permission for `host` was installed. */
  has(host: string): boolean {
    return this.#ips.has(comparableIp(host))
  }

  /** Every peer IP, as XOR-PEER-ADDRESS values (port 0). */
  list(): TransportAddress[] {
    return [...this.#ips.values()]
  }

  /** Number of peer IPs. */
  get size(): number {
    return this.#ips.size
  }

  /** Forgets everything. */
  clear(): void {
    this.#ips.clear()
  }
}
