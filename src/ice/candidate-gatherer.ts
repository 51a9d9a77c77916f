/**
 * Candidate gathering (RFC 8445 §5.1.1) on the peer's one socket: host candidates for the
 * interface addresses the socket receives on, then server-reflexive candidates from STUN
 * Binding requests sent FROM that socket (so the mapping learnt is the one peers will
 * reach), trickled one by one as found (RFC 8838) and ended by end-of-candidates.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { AbortError, InvalidArgumentError, PeerlinkError, throwIfAborted } from '../errors.js'
import { resolveStunHost, stunBinding, type StunServerAddress } from '../stun/binding-client.js'
import type { DatagramEndpoint } from '../stun/datagram-endpoint.js'
import { StunClient } from '../stun/stun-client.js'
import type { StunRetransmitOptions } from '../stun/transaction.js'
import { createLocalCandidate, type LocalCandidate } from './candidate.js'
import {
  addressKey,
  canonicalHost,
  ipFamily,
  isLinkLocalAddress,
  isLoopbackAddress,
  isUnspecifiedAddress,
  type IpFamily,
} from './canonical-address.js'
import { hostLocalPreferences } from './candidate-priority.js'

/** The shape of `os.networkInterfaces()` (injectable for tests). */
export type NetworkInterfaceMap = NodeJS.Dict<NetworkInterfaceInfo[]>

/** Options of {@link CandidateGatherer}. */
export interface CandidateGathererOptions {
  /** The socket, as a STUN datagram endpoint (e.g. `peerSocketEndpoint(peerSocket)`). */
  endpoint: DatagramEndpoint
  /**
   * The socket's bound address. A specific address gives exactly one host candidate;
   * `0.0.0.0` gives one per IPv4 interface address, `::` one per IPv4 and IPv6 address.
   * @default endpoint.localAddress()
   */
  localAddress?: { host: string; port: number }
  /**
   * STUN servers asked for server-reflexive candidates (include the Beacons: each answers
   * STUN on UDP at its own port). Host names are resolved.
   * @default []
   */
  stunServers?: readonly StunServerAddress[]
  /**
   * Use exactly these host addresses (tests, or a user's restriction) instead of
   * enumerating interfaces. Each must be an IP literal of a family the socket can use.
   * @default undefined (enumerate)
   */
  hostAddresses?: readonly string[]
  /**
   * Only these interface names (`eth0`, …) when enumerating.
   * @default undefined (every interface)
   */
  interfaces?: readonly string[]
  /**
   * Address families to gather.
   * @default ['IPv4', 'IPv6'] (as far as the socket is bound for them)
   */
  families?: readonly IpFamily[]
  /**
   * Include loopback addresses (127.0.0.0/8, ::1) as host candidates.
   * @default false
   */
  includeLoopback?: boolean
  /**
   * Include link-local addresses (fe80::/10, 169.254.0.0/16) as host candidates.
   * @default false
   */
  includeLinkLocal?: boolean
  /**
   * Where interface addresses come from.
   * @default os.networkInterfaces
   */
  networkInterfaces?: () => NetworkInterfaceMap
  /**
   * Retransmission of the STUN Binding requests.
   * @default { rto: 250, rc: 4, rm: 4 } (gives up after about 3.75 s)
   */
  stunRetransmit?: StunRetransmitOptions
  /**
   * Server-reflexive candidates already learnt on this socket (by an earlier gathering):
   * emitted right after the host candidates, so that they can be signalled at once.
   * `stunServers` are still asked; a mapping that differs is emitted when its answer
   * comes. Give no `stunServers` to rely on these alone. Candidates of another port or
   * family are ignored.
   * @default []
   */
  reflexive?: readonly LocalCandidate[]
}

/** How asking one STUN server went (see {@link CandidateGatherer.gather}). */
export interface StunServerOutcome {
  /** The server as configured. */
  server: StunServerAddress
  /** The server-reflexive candidate learnt (also when it was redundant with a host candidate), if any. */
  mapped?: { address: string; port: number }
  /** The error, if the request failed. */
  error?: PeerlinkError | Error
}

/** Events of a {@link CandidateGatherer}. */
export interface CandidateGathererEvents {
  /** A new local candidate (trickle it). */
  candidate: [candidate: LocalCandidate]
  /** Gathering is complete (send end-of-candidates). */
  end: [outcomes: StunServerOutcome[]]
}

const DEFAULT_STUN_RETRANSMIT: Required<StunRetransmitOptions> = { rto: 250, rc: 4, rm: 4 }

/**
 * Gathers local candidates on one socket.
 *
 * @example
 * ```ts
 * const gatherer = new CandidateGatherer({ endpoint: peerSocketEndpoint(socket), stunServers })
 * gatherer.on('candidate', (c) => signal(formatCandidate(c)))
 * await gatherer.gather({ signal })
 * ```
 */
export class CandidateGatherer extends EventEmitter<CandidateGathererEvents> {
  readonly #options: CandidateGathererOptions
  readonly #candidates: LocalCandidate[] = []
  #running: Promise<StunServerOutcome[]> | null = null
  #client: StunClient | null = null
  #closed = false

  constructor(options: CandidateGathererOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('CandidateGatherer needs options')
    if (options.endpoint === null || typeof options.endpoint?.send !== 'function' || typeof options.endpoint.onMessage !== 'function') {
      throw new InvalidArgumentError('CandidateGatherer needs a DatagramEndpoint')
    }
    for (const server of options.stunServers ?? []) {
      if (server === null || typeof server !== 'object' || typeof server.host !== 'string' || server.host === '' || !Number.isInteger(server.port) || server.port < 1 || server.port > 65535) {
        throw new InvalidArgumentError(`Invalid STUN server ${JSON.stringify(server)}`)
      }
    }
    for (const host of options.hostAddresses ?? []) {
      if (canonicalHost(host) === undefined) throw new InvalidArgumentError(`hostAddresses: ${JSON.stringify(host)} is not an IP literal`)
    }
    this.#options = options
  }

  /** Candidates found so far, in the order they were emitted. */
  get candidates(): readonly LocalCandidate[] {
    return this.#candidates
  }

  /**
   * Gathers: emits `candidate` for each host candidate at once, then for each
   * server-reflexive one as its STUN answer arrives, then `end`. Resolves with each STUN
   * server's outcome (a server that does not answer is an outcome, not an error).
   * Calling it again returns the same promise.
   *
   * Rejects with {@link AbortError} if `signal` aborts (no `end` is emitted then).
   */
  gather(options: { signal?: AbortSignal } = {}): Promise<StunServerOutcome[]> {
    if (this.#running === null) this.#running = this.#gather(options.signal)
    return this.#running
  }

  /** Stops pending STUN requests; `gather()` then rejects with `SocketClosedError` results as outcomes. */
  close(): void {
    this.#closed = true
    this.#client?.close()
    this.#client = null
  }

  async #gather(signal: AbortSignal | undefined): Promise<StunServerOutcome[]> {
    throwIfAborted(signal)
    const local = this.#localAddress()
    const hosts = this.#hostAddresses(local.host)
    const preferences = hostLocalPreferences(hosts)
    const families = new Set<IpFamily>()
    const baseByFamily = new Map<IpFamily, LocalCandidate>()
    // Most preferred first, so the peer's first checks go to the best addresses.
    hosts.sort((a, b) => (preferences.get(b) ?? 0) - (preferences.get(a) ?? 0))
    for (const host of hosts) {
      const candidate = createLocalCandidate({
        type: 'host',
        address: host,
        port: local.port,
        base: { address: host, port: local.port },
        localPreference: preferences.get(host) ?? 0,
      })
      const family = ipFamily(host) as IpFamily
      families.add(family)
      // RFC 8445 §5.1.1.2: the srflx candidate's base is the host candidate the request
      // was sent from; with one wildcard socket, the most preferred host address per family.
      if (!baseByFamily.has(family)) baseByFamily.set(family, candidate)
      this.#emit(candidate)
    }
    for (const known of this.#options.reflexive ?? []) {
      const family = ipFamily(known.address)
      if (known.type !== 'srflx' || known.base.port !== local.port || family === undefined || !families.has(family)) continue
      const key = addressKey(known.address, known.port)
      if (!this.#candidates.some((c) => addressKey(c.address, c.port) === key)) this.#emit(known)
    }

    const servers = this.#options.stunServers ?? []
    const outcomes: StunServerOutcome[] = []
    if (servers.length > 0 && families.size > 0 && !this.#closed) {
      const client = new StunClient(this.#options.endpoint)
      this.#client = client
      try {
        await Promise.all(
          servers.map(async (server) => {
            const outcome = await this.#askServer(client, server, families, baseByFamily, signal)
            outcomes.push(outcome)
          }),
        )
      } finally {
        client.close()
        if (this.#client === client) this.#client = null
      }
    }
    throwIfAborted(signal)
    this.emit('end', outcomes)
    return outcomes
  }

  async #askServer(
    client: StunClient,
    server: StunServerAddress,
    families: Set<IpFamily>,
    baseByFamily: Map<IpFamily, LocalCandidate>,
    signal: AbortSignal | undefined,
  ): Promise<StunServerOutcome> {
    const retransmit = { ...DEFAULT_STUN_RETRANSMIT, ...this.#options.stunRetransmit }
    try {
      const preferred = families.has('IPv4') ? 'IPv4' : 'IPv6'
      const host = canonicalHost(await resolveStunHost(server.host, canonicalHost(server.host) === undefined ? preferred : undefined, signal))
      const family = host === undefined ? undefined : ipFamily(host)
      const base = family === undefined ? undefined : baseByFamily.get(family)
      if (host === undefined || base === undefined) {
        return { server, error: new InvalidArgumentError(`STUN server ${server.host} has no address of a family this socket gathers`) }
      }
      const result = await stunBinding({
        client,
        server: { host: this.#wireHost(host), port: server.port },
        fingerprint: true,
        ...retransmit,
        ...(signal === undefined ? {} : { signal }),
      })
      const mapped = { address: canonicalHost(result.mapped.host) ?? result.mapped.host, port: result.mapped.port }
      const candidate = createLocalCandidate({
        type: 'srflx',
        address: mapped.address,
        port: mapped.port,
        base: base.base,
        localPreference: base.localPreference,
        serverAddress: host,
      })
      // RFC 8445 §5.1.3: a candidate with the same transport address and base as one we
      // already have is redundant (no NAT: srflx = host; two servers, one mapping).
      const key = addressKey(candidate.address, candidate.port)
      if (!this.#candidates.some((c) => addressKey(c.address, c.port) === key) && !this.#closed && signal?.aborted !== true) {
        this.#emit(candidate)
      }
      return { server, mapped }
    } catch (err) {
      if (err instanceof AbortError) throw err
      return { server, error: err instanceof Error ? err : new Error(String(err)) }
    }
  }

  #emit(candidate: LocalCandidate): void {
    this.#candidates.push(candidate)
    this.emit('candidate', candidate)
  }

  /** IPv4 destinations on an IPv6 (dual-stack) socket are written IPv4-mapped. */
  #wireHost(host: string): string {
    const local = this.#localAddress()
    return ipFamily(local.host) === 'IPv6' && ipFamily(host) === 'IPv4' ? `::ffff:${host}` : host
  }

  #localAddress(): { host: string; port: number } {
    const given = this.#options.localAddress ?? this.#options.endpoint.localAddress?.()
    if (given === undefined) throw new InvalidArgumentError('CandidateGatherer: the endpoint reports no local address; pass localAddress')
    return { host: given.host, port: given.port }
  }

  #hostAddresses(bound: string): string[] {
    const wanted = new Set<IpFamily>(this.#options.families ?? ['IPv4', 'IPv6'])
    const boundFamily = ipFamily(bound)
    // What the socket can receive on: a specific address only itself; 0.0.0.0 every IPv4
    // address; :: (dual-stack) every address.
    const usable = (address: string): boolean => {
      const family = ipFamily(address)
      if (family === undefined || !wanted.has(family)) return false
      if (isUnspecifiedAddress(bound)) return boundFamily === 'IPv6' || family === 'IPv4'
      return canonicalHost(bound) === address
    }
    const result: string[] = []
    const add = (address: string): void => {
      const canonical = canonicalHost(address)
      if (canonical !== undefined && usable(canonical) && !result.includes(canonical)) result.push(canonical)
    }
    if (this.#options.hostAddresses !== undefined) {
      for (const address of this.#options.hostAddresses) add(address)
      return result
    }
    if (!isUnspecifiedAddress(bound)) {
      add(bound)
      return result
    }
    const map = (this.#options.networkInterfaces ?? networkInterfaces)()
    for (const [name, infos] of Object.entries(map)) {
      if (this.#options.interfaces !== undefined && !this.#options.interfaces.includes(name)) continue
      for (const info of infos ?? []) {
        const address = info.address
        if (info.internal && this.#options.includeLoopback !== true) continue
        if (isLoopbackAddress(address) && this.#options.includeLoopback !== true) continue
        if (isLinkLocalAddress(address) && this.#options.includeLinkLocal !== true) continue
        add(address)
      }
    }
    return result
  }
}
