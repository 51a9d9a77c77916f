/**
 * Which peer addresses a TURN allocation may relay to. By default the server refuses
 * (403) every address that reaches into the server's own network rather than the
 * Internet: loopback, "this network", private, CGN shared, link-local (cloud metadata
 * services live at 169.254.169.254), multicast and reserved ranges, the IPv6 forms that
 * embed such IPv4 addresses (IPv4-mapped, IPv4-compatible, SIIT, NAT64), 6to4 and Teredo.
 * Operators open holes with allowed ranges; allow wins over deny.
 *
 * Built on Node's `net.BlockList`, which also matches IPv4-mapped IPv6 addresses
 * (`::ffff:127.0.0.1`) against IPv4 rules.
 *
 * @module
 */

import { BlockList, isIP } from 'node:net'
import { InvalidArgumentError } from '../../errors.js'
import { BoundedMap } from './bounded-map.js'

/**
 * IPv4 ranges denied by default (CIDR).
 *
 * @example
 * ```ts
 * import { DEFAULT_DENIED_IPV4, PeerAddressPolicy } from 'peerlink/server'
 *
 * console.log(DEFAULT_DENIED_IPV4.includes('169.254.0.0/16'))   // true: cloud metadata is never relayed to
 * new PeerAddressPolicy().isAllowed('192.168.1.10')             // false
 * new PeerAddressPolicy({ defaultDenied: false }).isAllowed('192.168.1.10')   // true
 * ```
 */
export const DEFAULT_DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8', // "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
  '10.0.0.0/8', // private (RFC 1918)
  '100.64.0.0/10', // shared address space, CGN (RFC 6598)
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, cloud metadata (RFC 3927)
  '172.16.0.0/12', // private (RFC 1918)
  '192.0.0.0/24', // IETF protocol assignments (RFC 6890)
  '192.168.0.0/16', // private (RFC 1918)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, includes 255.255.255.255 broadcast
]

/**
 * IPv6 ranges denied by default (CIDR).
 *
 * @example
 * ```ts
 * import { DEFAULT_DENIED_IPV6, PeerAddressPolicy } from 'peerlink/server'
 *
 * console.log(DEFAULT_DENIED_IPV6.includes('fc00::/7'))   // true: unique local addresses
 * new PeerAddressPolicy().isAllowed('fd00::1')            // false
 * new PeerAddressPolicy().isAllowed('2606:4700::1111')    // true: a global address
 * ```
 */
export const DEFAULT_DENIED_IPV6: readonly string[] = [
  '::/96', // unspecified, loopback and the deprecated IPv4-compatible addresses
  '64:ff9b:1::/48', // local-use NAT64 (RFC 8215)
  '100::/64', // discard-only (RFC 6666)
  '2001::/32', // Teredo (RFC 4380): embeds an IPv4 address
  '2001:db8::/32', // documentation
  '2002::/16', // 6to4 (RFC 3056): embeds an IPv4 address
  'fc00::/7', // unique local (RFC 4193)
  'fe80::/10', // link-local
  'fec0::/10', // deprecated site-local
  'ff00::/8', // multicast
]

/** IPv6 prefixes (/96) whose last 32 bits are an IPv4 address the policy applies to. */
const IPV4_EMBEDDING_PREFIXES = [
  [0, 0, 0, 0, 0xffff, 0], // SIIT, ::ffff:0:a.b.c.d (RFC 6052 §2.1 / RFC 7915)
  [0x64, 0xff9b, 0, 0, 0, 0], // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052)
] as const

/** Options of {@link PeerAddressPolicy}. */
export interface PeerAddressPolicyOptions {
  /**
   * Extra denied ranges: `'IP'`, `'FROM-TO'` or `'IP/PREFIX'`.
   * @default []
   */
  denied?: readonly string[]
  /**
   * Allowed ranges (win over denied ones), same forms.
   * @default []
   */
  allowed?: readonly string[]
  /**
   * Allow 127.0.0.0/8 and ::1.
   * @default false
   */
  allowLoopback?: boolean
  /**
   * Start from the built-in deny list ({@link DEFAULT_DENIED_IPV4}, {@link DEFAULT_DENIED_IPV6}).
   * @default true
   */
  defaultDenied?: boolean
}

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address)
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined
}

/**
 * Adds `'IP'`, `'FROM-TO'` or `'IP/PREFIX'` to a block list.
 *
 * @throws InvalidArgumentError on a malformed range.
 */
export function addAddressRange(list: BlockList, range: string): void {
  if (typeof range !== 'string') throw new InvalidArgumentError(`A peer address range must be a string, got ${String(range)}`)
  const text = range.trim()
  const slash = text.indexOf('/')
  const dash = text.indexOf('-')
  if (slash >= 0) {
    const net = text.slice(0, slash)
    const prefix = text.slice(slash + 1)
    const type = family(net)
    const bits = /^[0-9]{1,3}$/.test(prefix) ? Number(prefix) : NaN
    if (type === undefined || !(bits >= 0 && bits <= (type === 'ipv4' ? 32 : 128))) {
      throw new InvalidArgumentError(`Invalid address range ${JSON.stringify(range)} (expected IP/PREFIX)`)
    }
    list.addSubnet(net, bits, type)
  } else if (dash >= 0) {
    const from = text.slice(0, dash).trim()
    const to = text.slice(dash + 1).trim()
    const type = family(from)
    if (type === undefined || family(to) !== type) {
      throw new InvalidArgumentError(`Invalid address range ${JSON.stringify(range)} (expected FROM-TO of one family)`)
    }
    try {
      list.addRange(from, to, type)
    } catch (err) {
      throw new InvalidArgumentError(`Invalid address range ${JSON.stringify(range)}`, { cause: err })
    }
  } else {
    const type = family(text)
    if (type === undefined) throw new InvalidArgumentError(`Invalid peer address ${JSON.stringify(range)}`)
    list.addAddress(text, type)
  }
}

/** The IPv6 subnet `prefix96 ‖ ipv4net` of length 96 + bits, in text form. */
function embedded(prefix: readonly number[], v4net: string, bits: number): string {
  const [a, b, c, d] = v4net.split('.').map(Number) as [number, number, number, number]
  const groups = [...prefix, (a << 8) | b, (c << 8) | d].map((g) => g.toString(16))
  return `${groups.join(':')}/${96 + bits}`
}

/**
 * Decides whether a peer IP address may be relayed to (RFC 8656 §21.3.x security
 * considerations: a relay must not become a way into the server's own network).
 *
 * @example
 * ```ts
 * import { PeerAddressPolicy } from 'peerlink/server'
 *
 * const policy = new PeerAddressPolicy({ allowed: ['10.1.0.0/16'] })
 * policy.isAllowed('10.1.2.3')        // true (allowed wins)
 * policy.isAllowed('169.254.169.254') // false
 * ```
 */
export class PeerAddressPolicy {
  readonly #denied = new BlockList()
  readonly #allowed = new BlockList()
  /**
   * Decisions by IP text: the lists never change, and each `BlockList.check` of a string
   * builds a native `SocketAddress` (ChannelBind refreshes ask about the same peers).
   */
  readonly #decisions = new BoundedMap<string, boolean>(4096)

  /** @throws InvalidArgumentError on a malformed range. */
  constructor(options: PeerAddressPolicyOptions = {}) {
    if (options.defaultDenied !== false) {
      for (const range of DEFAULT_DENIED_IPV4) {
        addAddressRange(this.#denied, range)
        // The IPv4-mapped form (::ffff:a.b.c.d) is matched by BlockList itself; the other
        // IPv6 forms that embed an IPv4 address are added here.
        const [net, bits] = range.split('/') as [string, string]
        for (const prefix of IPV4_EMBEDDING_PREFIXES) addAddressRange(this.#denied, embedded(prefix, net, Number(bits)))
      }
      for (const range of DEFAULT_DENIED_IPV6) addAddressRange(this.#denied, range)
    }
    for (const range of options.denied ?? []) addAddressRange(this.#denied, range)
    for (const range of options.allowed ?? []) addAddressRange(this.#allowed, range)
    if (options.allowLoopback === true) {
      addAddressRange(this.#allowed, '127.0.0.0/8')
      addAddressRange(this.#allowed, '::1')
    }
  }

  /** Whether relaying to `address` (an IP literal) is allowed. Non-IP text is refused. */
  isAllowed(address: string): boolean {
    const known = this.#decisions.get(address)
    if (known !== undefined) return known
    const type = family(address)
    if (type === undefined) return false
    const allowed = this.#allowed.check(address, type) || !this.#denied.check(address, type)
    this.#decisions.set(address, allowed)
    return allowed
  }
}
