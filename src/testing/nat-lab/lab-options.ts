/**
 * Options of the NAT lab ({@link createNatLab}) and their validation: which public
 * servers and which NAT sites to build, and how each NAT box behaves along RFC 4787's
 * axes (mapping, filtering) plus firewalls and packet loss.
 *
 * @module
 */
import { InvalidArgumentError } from '../../errors.js'
import type { createNatLab } from './nat-lab.js'
import type { sweepStaleLabs } from './stale-labs.js'

/**
 * How a site's box maps inside addresses to public ones (RFC 4787 §4.1).
 *
 * - `'endpoint-independent'`: one public port per inside address and port, whatever the
 *   destination (nftables `masquerade`, which keeps the port when it is free).
 * - `'endpoint-dependent'`: a new random public port for every new destination address
 *   and port (nftables `masquerade fully-random`); RFC 5780 discovery reports it as
 *   `'address-and-port-dependent'`.
 * - `'none'`: no translation; the site's hosts get public addresses and the box is a
 *   router (its `filtering` and `firewall` still apply, as a stateful firewall).
 */
export type NatLabMapping = 'endpoint-independent' | 'endpoint-dependent' | 'none'

/**
 * Which unsolicited inbound UDP datagrams a site's box lets through to a mapping that an
 * inside host opened by sending (RFC 4787 §5).
 *
 * - `'endpoint-independent'`: from anyone.
 * - `'address-dependent'`: from any port of an address the inside host has sent to.
 * - `'address-and-port-dependent'`: only from the exact address and port it sent to.
 * - `'open'`: everything, even to ports that never sent (only with mapping `'none'`:
 *   a public host without a firewall).
 *
 * TCP is always filtered address-and-port-dependently (only replies get in), except with
 * `'open'`.
 */
export type NatLabFiltering = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'open'

/** A firewall on a site's box, applied to traffic between its LAN and the internet. */
export interface NatLabFirewall {
  /**
   * `'blocked'` drops every UDP datagram in both directions (TCP still works).
   * @default 'allowed'
   */
  udp?: 'allowed' | 'blocked'
  /**
   * When set, inside hosts may open only TCP connections to these ports (for example
   * `[80, 443]`, an office proxy-only network); everything else outbound, UDP included,
   * is dropped.
   * @default undefined (no port restriction)
   */
  onlyTcp?: readonly number[]
}

/** A public host: a namespace on the lab's internet with one or more public addresses. */
export interface NatLabServerOptions {
  /**
   * How many public addresses it gets (an RFC 5780 STUN server needs 2), at most
   * {@link NAT_LAB_LIMITS}.addressesPerServer.
   * @default 1
   */
  addresses?: number
  /**
   * Percent of IPv4 packets dropped at random on its link, in each direction (0–100,
   * fractions allowed to 0.01).
   * @default 0
   */
  loss?: number
}

/** A site: a NAT box (or plain router) with its own LAN and hosts behind it. */
export interface NatLabSiteOptions {
  /**
   * Mapping behaviour of the box.
   * @default 'endpoint-independent'
   */
  mapping?: NatLabMapping
  /**
   * Filtering behaviour of the box. `'open'` needs mapping `'none'`.
   * @default 'address-and-port-dependent' (what a plain Linux masquerade does), or `'open'` with mapping `'none'`
   */
  filtering?: NatLabFiltering
  /**
   * A firewall on the box.
   * @default {} (none)
   */
  firewall?: NatLabFirewall
  /**
   * Percent of IPv4 packets dropped at random on the box's link to the internet, in each
   * direction (0–100, fractions allowed to 0.01).
   * @default 0
   */
  loss?: number
  /**
   * Names of the hosts behind the box (unique in the lab), at most
   * {@link NAT_LAB_LIMITS}.hostsPerSite.
   * @default [`${siteName}-host`]
   */
  hosts?: readonly string[]
  /**
   * The LAN's subnet, a private /24 such as `'192.168.1.0/24'`; two sites may share one
   * (as two homes behind two routers do). Not allowed with mapping `'none'`, whose LAN
   * is a public `198.19.N.0/24`.
   * @default `'10.0.N.0/24'`, N = the site's position (1, 2, …)
   */
  lanSubnet?: string
}

/**
 * Options of {@link createNatLab}.
 *
 * @example
 * ```ts
 * import { createNatLab } from 'peerlink/testing'
 *
 * const lab = await createNatLab({
 *   servers: { stun: { addresses: 2 } },                              // an RFC 5780 STUN host
 *   sites: {
 *     home: { mapping: 'endpoint-independent', hosts: ['alice'] },
 *     office: { mapping: 'endpoint-dependent', firewall: { onlyTcp: [80, 443] }, hosts: ['bob'] },
 *   },
 *   signal: AbortSignal.timeout(60_000),
 * })
 * await lab.close()
 * ```
 */
export interface NatLabOptions {
  /**
   * Public hosts on the lab's internet, by name (names are unique in the lab; `internet`
   * is reserved).
   * @default {}
   */
  servers?: Readonly<Record<string, NatLabServerOptions>>
  /**
   * Sites by name; the name is also the name of the site's box.
   * @default {}
   */
  sites?: Readonly<Record<string, NatLabSiteOptions>>
  /**
   * Remove what crashed earlier runs left behind ({@link sweepStaleLabs}) before building.
   * @default true
   */
  sweep?: boolean
  /**
   * Milliseconds each `ip`/`nft` command may take before it is killed.
   * @default 10_000
   */
  commandTimeout?: number
  /**
   * Cancels building the lab: whatever was built is removed and the promise rejects with
   * `AbortError`.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Upper bounds on a lab's size (a lab is for tests, not for simulating the internet).
 *
 * @example
 * ```ts
 * import { NAT_LAB_LIMITS, createNatLab } from 'peerlink/testing'
 *
 * const hosts = Array.from({ length: NAT_LAB_LIMITS.hostsPerSite }, (_, i) => `h${i}`)   // 16, the most one site takes
 * const lab = await createNatLab({ sites: { campus: { hosts } } })
 * ```
 */
export const NAT_LAB_LIMITS = {
  /** Public servers in one lab. */
  servers: 16,
  /** Sites in one lab. */
  sites: 32,
  /** Hosts behind one site. */
  hostsPerSite: 16,
  /** Public addresses of one server. */
  addressesPerServer: 8,
  /** Children started by `spawn`/`fork` alive at once in one lab. */
  children: 256,
} as const

/** Longest node name: keeps `pl-XXXXXX-NAME` namespace names readable. */
const NAME_PATTERN = /^[a-z][a-z0-9-]{0,23}$/

/** Validated site options with defaults filled in. */
export interface ResolvedSite {
  name: string
  index: number
  mapping: NatLabMapping
  filtering: NatLabFiltering
  udp: 'allowed' | 'blocked'
  onlyTcp: readonly number[] | undefined
  loss: number
  hosts: readonly string[]
  /** First three octets of the /24, e.g. `'10.0.1'`. */
  lanPrefix: string
}

/** Validated server options. */
export interface ResolvedServer {
  name: string
  index: number
  addresses: number
  loss: number
}

/** Validated lab options. */
export interface ResolvedLabOptions {
  servers: ResolvedServer[]
  sites: ResolvedSite[]
  sweep: boolean
  commandTimeout: number
  signal: AbortSignal | undefined
}

const MAPPINGS: readonly NatLabMapping[] = ['endpoint-independent', 'endpoint-dependent', 'none']
const FILTERINGS: readonly NatLabFiltering[] = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent', 'open']

/** Throws InvalidArgumentError unless `value` is a loss percentage. */
export function checkLoss(value: unknown, what: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw new InvalidArgumentError(`${what}: loss must be a percentage from 0 to 100, got ${String(value)}`)
  }
  return value
}

function checkName(name: string, used: Set<string>, what: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(`${what} name ${JSON.stringify(name)} must match ${String(NAME_PATTERN)}`)
  }
  if (name === 'internet') throw new InvalidArgumentError(`${what} name "internet" is reserved for the lab's internet`)
  if (used.has(name)) throw new InvalidArgumentError(`Name ${JSON.stringify(name)} is used twice in the lab`)
  used.add(name)
}

function isPlainObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function parseLanSubnet(subnet: unknown, site: string): string {
  const m = typeof subnet === 'string' ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet) : null
  const octets = m === null ? [] : m.slice(1, 4).map(Number)
  const [a, b] = octets as [number, number, number]
  const valid =
    m !== null &&
    octets.every((o) => o <= 255) &&
    (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168))
  if (!valid) {
    throw new InvalidArgumentError(
      `Site ${site}: lanSubnet must be a private /24 like '192.168.1.0/24' (10/8, 172.16/12 or 192.168/16), got ${String(subnet)}`,
    )
  }
  return octets.join('.')
}

function resolveSite(name: string, raw: unknown, index: number, used: Set<string>): ResolvedSite {
  if (raw !== undefined && !isPlainObject(raw)) throw new InvalidArgumentError(`Site ${name}: options must be an object`)
  const o = (raw ?? {}) as NatLabSiteOptions
  const mapping = o.mapping ?? 'endpoint-independent'
  if (!MAPPINGS.includes(mapping)) throw new InvalidArgumentError(`Site ${name}: unknown mapping ${JSON.stringify(mapping)}`)
  const filtering = o.filtering ?? (mapping === 'none' ? 'open' : 'address-and-port-dependent')
  if (!FILTERINGS.includes(filtering)) throw new InvalidArgumentError(`Site ${name}: unknown filtering ${JSON.stringify(filtering)}`)
  if (filtering === 'open' && mapping !== 'none') {
    throw new InvalidArgumentError(`Site ${name}: filtering 'open' needs mapping 'none' (a NAT only forwards to mapped ports)`)
  }
  const firewall = o.firewall ?? {}
  if (!isPlainObject(firewall)) throw new InvalidArgumentError(`Site ${name}: firewall must be an object`)
  const udp = firewall.udp ?? 'allowed'
  if (udp !== 'allowed' && udp !== 'blocked') throw new InvalidArgumentError(`Site ${name}: firewall.udp must be 'allowed' or 'blocked'`)
  let onlyTcp: readonly number[] | undefined
  if (firewall.onlyTcp !== undefined) {
    if (!Array.isArray(firewall.onlyTcp) || firewall.onlyTcp.length === 0 || firewall.onlyTcp.length > 32) {
      throw new InvalidArgumentError(`Site ${name}: firewall.onlyTcp must list 1 to 32 ports`)
    }
    for (const port of firewall.onlyTcp) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`Site ${name}: invalid port ${String(port)} in firewall.onlyTcp`)
    }
    onlyTcp = [...new Set(firewall.onlyTcp)]
  }
  const hosts = o.hosts ?? [`${name}-host`]
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > NAT_LAB_LIMITS.hostsPerSite) {
    throw new InvalidArgumentError(`Site ${name}: hosts must list 1 to ${NAT_LAB_LIMITS.hostsPerSite} names`)
  }
  for (const host of hosts) {
    if (typeof host !== 'string') throw new InvalidArgumentError(`Site ${name}: host names must be strings`)
    checkName(host, used, `Site ${name}: host`)
  }
  let lanPrefix: string
  if (mapping === 'none') {
    if (o.lanSubnet !== undefined) throw new InvalidArgumentError(`Site ${name}: lanSubnet cannot be set with mapping 'none' (its LAN is public)`)
    lanPrefix = `198.19.${index + 1}`
  } else {
    lanPrefix = o.lanSubnet === undefined ? `10.0.${index + 1}` : parseLanSubnet(o.lanSubnet, name)
  }
  return { name, index, mapping, filtering, udp, onlyTcp, loss: checkLoss(o.loss, `Site ${name}`), hosts: [...hosts], lanPrefix }
}

/** Validates {@link NatLabOptions} (throws InvalidArgumentError on misuse) and fills in defaults. */
export function resolveLabOptions(options: NatLabOptions): ResolvedLabOptions {
  if (!isPlainObject(options)) throw new InvalidArgumentError('createNatLab needs an options object')
  const used = new Set<string>()
  const serverEntries = Object.entries(options.servers ?? {})
  const siteEntries = Object.entries(options.sites ?? {})
  if (!isPlainObject(options.servers ?? {}) || !isPlainObject(options.sites ?? {})) {
    throw new InvalidArgumentError('createNatLab: servers and sites are objects keyed by name')
  }
  if (serverEntries.length > NAT_LAB_LIMITS.servers) throw new InvalidArgumentError(`createNatLab: at most ${NAT_LAB_LIMITS.servers} servers`)
  if (siteEntries.length > NAT_LAB_LIMITS.sites) throw new InvalidArgumentError(`createNatLab: at most ${NAT_LAB_LIMITS.sites} sites`)
  const servers = serverEntries.map(([name, raw], index): ResolvedServer => {
    checkName(name, used, 'Server')
    if (raw !== undefined && !isPlainObject(raw)) throw new InvalidArgumentError(`Server ${name}: options must be an object`)
    const addresses = raw?.addresses ?? 1
    if (!Number.isInteger(addresses) || addresses < 1 || addresses > NAT_LAB_LIMITS.addressesPerServer) {
      throw new InvalidArgumentError(`Server ${name}: addresses must be an integer from 1 to ${NAT_LAB_LIMITS.addressesPerServer}`)
    }
    return { name, index, addresses, loss: checkLoss(raw?.loss, `Server ${name}`) }
  })
  const sites = siteEntries.map(([name, raw], index) => {
    checkName(name, used, 'Site')
    return resolveSite(name, raw, index, used)
  })
  const commandTimeout = options.commandTimeout ?? 10_000
  if (!Number.isInteger(commandTimeout) || commandTimeout < 100 || commandTimeout > 120_000) {
    throw new InvalidArgumentError('createNatLab: commandTimeout must be an integer from 100 to 120000 ms')
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('createNatLab: signal must be an AbortSignal')
  }
  return { servers, sites, sweep: options.sweep ?? true, commandTimeout, signal: options.signal }
}
