/**
 * NAT behaviour discovery (RFC 5780 §4.3 mapping, §4.4 filtering) against a STUN server
 * that has a second IP address and port (it returns OTHER-ADDRESS).
 *
 * @module
 */

import { networkInterfaces } from 'node:os'
import {
  InvalidArgumentError,
  NatDiscoveryUnsupportedError,
  StunErrorResponseError,
  StunMalformedError,
  StunTimeoutError,
} from '../errors.js'
import { normalizeIp, sameTransportAddress } from './address.js'
import type { TransportAddress } from './address.js'
import { resolveStunHost, stunBinding } from './binding-client.js'
import type { StunBindingResult, StunServerAddress } from './binding-client.js'
import type { StunChangeRequestValue } from './attribute.js'
import type { DatagramEndpoint } from './datagram-endpoint.js'
import { StunClient } from './stun-client.js'
import { checkRetransmit } from './transaction.js'
import type { StunRetransmitOptions } from './transaction.js'

/** How a NAT maps an internal address to external ones (RFC 4787 §4.1, RFC 5780 §4.3). */
export type NatMappingBehavior =
  | 'endpoint-independent'
  | 'address-dependent'
  | 'address-and-port-dependent'
  | 'no-nat'
  | 'unknown'

/** Which inbound packets a NAT lets through to a mapping (RFC 4787 §5, RFC 5780 §4.4). */
export type NatFilteringBehavior = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown'

/** Options of {@link discoverNatBehavior}. Retransmission options apply to the mapping tests. */
export interface NatBehaviorDiscoveryOptions extends StunRetransmitOptions {
  /** An RFC 5780 capable STUN server (primary address). */
  server: StunServerAddress
  /**
   * Socket to test from. Either `endpoint` or `client` is required.
   * @default undefined
   */
  endpoint?: DatagramEndpoint
  /**
   * Existing client to send through.
   * @default undefined
   */
  client?: StunClient
  /**
   * Cancels discovery (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Retransmission for the filtering probes, whose lost response is the expected
   * outcome behind a filtering NAT, so they should give up quickly.
   * @default { rto: 250, rc: 3, rm: 4 } (about 1.75 s per probe)
   */
  filteringProbe?: StunRetransmitOptions
  /**
   * IP addresses that count as "ours" for the no-NAT check (mapped address equals a
   * local address and the socket's port).
   * @default the endpoint's bound address, or every interface address if bound to a wildcard
   */
  localAddresses?: string[]
}

/** What {@link discoverNatBehavior} found. */
export interface NatBehaviorResult {
  /** Our mapped address as seen at the server's primary address. */
  mapped: TransportAddress
  /** Mapping behaviour. */
  mapping: NatMappingBehavior
  /** Filtering behaviour. */
  filtering: NatFilteringBehavior
  /** The server's alternate address (OTHER-ADDRESS). */
  otherAddress: TransportAddress
  /** RESPONSE-ORIGIN of the first response, if the server sent it. */
  responseOrigin?: TransportAddress
}

const DEFAULT_PROBE: Required<StunRetransmitOptions> = { rto: 250, rc: 3, rm: 4 }

function isWildcard(host: string): boolean {
  const n = normalizeIp(host)
  return n === '0.0.0.0' || n === '::'
}

function localHosts(endpoint: DatagramEndpoint, explicit: string[] | undefined): { hosts: Set<string>; port: number } | undefined {
  const local = endpoint.localAddress?.()
  if (local === undefined) return undefined
  const list =
    explicit ??
    (isWildcard(local.host)
      ? Object.values(networkInterfaces()).flatMap((ifs) => (ifs ?? []).map((i) => i.address))
      : [local.host])
  return { hosts: new Set(list.map((h) => normalizeIp(h) ?? h)), port: local.port }
}

/**
 * Runs the RFC 5780 tests and classifies the NAT between `endpoint` and the server.
 *
 * Order matters: the filtering tests (CHANGE-REQUEST, §4.4) run right after the first
 * Binding, before the mapping tests send to the alternate address — those would open
 * the NAT's filter towards the alternate address and make filtering look open.
 *
 * @throws NatDiscoveryUnsupportedError (rejects) if the server sends no OTHER-ADDRESS, or
 * one with the same IP as its primary address.
 * @throws StunTimeoutError (rejects) if the primary address does not answer at all.
 *
 * @example
 * ```ts
 * import dgram from 'node:dgram'
 * import { createDgramEndpoint, discoverNatBehavior } from 'peerlink'
 *
 * const socket = dgram.createSocket('udp4')
 * socket.bind(0)
 * const nat = await discoverNatBehavior({ endpoint: createDgramEndpoint(socket), server: { host: 'stun.example.com', port: 3478 } })
 * console.log(nat.mapped, nat.mapping, nat.filtering)   // e.g. 'endpoint-independent', 'address-and-port-dependent'
 * socket.close()
 * ```
 */
export function discoverNatBehavior(options: NatBehaviorDiscoveryOptions): Promise<NatBehaviorResult> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('discoverNatBehavior needs options')
  if (options.client === undefined && options.endpoint === undefined) {
    throw new InvalidArgumentError('discoverNatBehavior needs an endpoint or a client')
  }
  const { server } = options
  if (server === null || typeof server !== 'object' || typeof server.host !== 'string' || server.host === '') {
    throw new InvalidArgumentError('discoverNatBehavior needs server: { host, port }')
  }
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 0xffff) {
    throw new InvalidArgumentError(`Invalid STUN server port ${String(server.port)}`)
  }
  checkRetransmit(options, 'discoverNatBehavior')
  checkRetransmit(options.filteringProbe ?? {}, 'discoverNatBehavior filteringProbe')
  return runDiscovery(options)
}

async function runDiscovery(options: NatBehaviorDiscoveryOptions): Promise<NatBehaviorResult> {
  const client = options.client ?? new StunClient(options.endpoint as DatagramEndpoint)
  const retransmit: StunRetransmitOptions = {
    ...(options.rto === undefined ? {} : { rto: options.rto }),
    ...(options.rc === undefined ? {} : { rc: options.rc }),
    ...(options.rm === undefined ? {} : { rm: options.rm }),
  }
  const probe = { ...DEFAULT_PROBE, ...options.filteringProbe }
  const signal = options.signal
  const binding = (server: StunServerAddress, r: StunRetransmitOptions, changeRequest?: StunChangeRequestValue) =>
    stunBinding({
      client,
      server,
      ...r,
      ...(signal === undefined ? {} : { signal }),
      ...(changeRequest === undefined ? {} : { changeRequest }),
    })
  // A probe whose lost or refused answer is an outcome, not a failure.
  const tryBinding = async (
    server: StunServerAddress,
    r: StunRetransmitOptions,
    changeRequest?: StunChangeRequestValue,
  ): Promise<StunBindingResult | undefined> => {
    try {
      return await binding(server, r, changeRequest)
    } catch (err) {
      if (err instanceof StunTimeoutError || err instanceof StunErrorResponseError || err instanceof StunMalformedError) {
        return undefined
      }
      throw err
    }
  }

  try {
    const host = await resolveStunHost(options.server.host, client.endpoint.localAddress?.()?.family, signal)
    const primary = { host: normalizeIp(host) ?? host, port: options.server.port }

    // RFC 5780 §4.3 Test I: Binding to the primary address; needs OTHER-ADDRESS.
    const first = await binding(primary, retransmit)
    const other = first.otherAddress
    if (other === undefined) {
      throw new NatDiscoveryUnsupportedError(
        `STUN server ${primary.host}:${primary.port} sent no OTHER-ADDRESS: it does not support RFC 5780 behaviour discovery`,
      )
    }
    if (normalizeIp(other.host) === primary.host || other.port === primary.port) {
      throw new NatDiscoveryUnsupportedError(
        `STUN server ${primary.host}:${primary.port} gave OTHER-ADDRESS ${other.host}:${other.port}, ` +
          'which does not differ in both IP address and port',
      )
    }

    // RFC 5780 §4.4 Test II: ask for the answer from the alternate IP and port.
    let filtering: NatFilteringBehavior
    const changeBoth = await tryBinding(primary, probe, { changeIp: true, changePort: true })
    if (changeBoth !== undefined) {
      filtering = sameTransportAddress(changeBoth.from, other) ? 'endpoint-independent' : 'unknown'
    } else {
      // Test III: the answer from the primary IP but the alternate port.
      const changePort = await tryBinding(primary, probe, { changeIp: false, changePort: true })
      if (changePort === undefined) filtering = 'address-and-port-dependent'
      else {
        const expected = { host: primary.host, port: other.port }
        filtering = sameTransportAddress(changePort.from, expected) ? 'address-dependent' : 'unknown'
      }
    }

    // RFC 5780 §4.3: no NAT if the mapped address is one of ours.
    let mapping: NatMappingBehavior
    const local = localHosts(client.endpoint, options.localAddresses)
    const mappedHost = normalizeIp(first.mapped.host) ?? first.mapped.host
    if (local !== undefined && first.mapped.port === local.port && local.hosts.has(mappedHost)) {
      mapping = 'no-nat'
    } else {
      // Test II: alternate IP, primary port.
      const second = await tryBinding({ host: other.host, port: primary.port }, retransmit)
      if (second === undefined) mapping = 'unknown'
      else if (sameTransportAddress(second.mapped, first.mapped)) mapping = 'endpoint-independent'
      else {
        // Test III: alternate IP and alternate port.
        const third = await tryBinding({ host: other.host, port: other.port }, retransmit)
        if (third === undefined) mapping = 'unknown'
        else mapping = sameTransportAddress(third.mapped, second.mapped) ? 'address-dependent' : 'address-and-port-dependent'
      }
    }

    const result: NatBehaviorResult = { mapped: first.mapped, mapping, filtering, otherAddress: other }
    if (first.responseOrigin !== undefined) result.responseOrigin = first.responseOrigin
    return result
  } finally {
    if (options.client === undefined) client.close()
  }
}
