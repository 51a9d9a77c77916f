/**
 * ICE candidates (RFC 8445 §5.1): a transport address the peer may be reached at, its
 * type, priority and foundation.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'
import { addressKey, canonicalHost, ipFamily, type IceAddress, type IpFamily } from './canonical-address.js'
import { ICE_COMPONENT_ID, candidatePriority } from './candidate-priority.js'

/**
 * Candidate types (RFC 8445 §5.1.1): `host` (an interface address), `srflx`
 * (server-reflexive: the address a STUN server saw), `prflx` (peer-reflexive: learnt from a
 * connectivity check) and `relay` (a TURN relayed address; typed, not gathered yet).
 */
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay'

/** Every {@link CandidateType}. */
export const CANDIDATE_TYPES: readonly CandidateType[] = Object.freeze(['host', 'srflx', 'prflx', 'relay'])

/** A candidate as both peers see it (what is signalled, RFC 8839 §5.1). */
export interface IceCandidate {
  /** Foundation: 1–32 ice-chars; candidates of the same type, base IP and server share it (RFC 8445 §5.1.1.3). */
  foundation: string
  /** Component ID; peerlink uses only 1. */
  component: number
  /** Transport protocol; peerlink's candidates are UDP. */
  transport: 'udp'
  /** Priority (RFC 8445 §5.1.2), 1–2^31−1 in practice; 0–2^32−1 on the wire. */
  priority: number
  /** IP address, canonical text. */
  address: string
  /** UDP port. */
  port: number
  /** Candidate type. */
  type: CandidateType
  /** For srflx/prflx/relay: the base's (or mapped) address (`raddr`), if signalled. */
  relatedAddress?: string
  /** The port that goes with `relatedAddress` (`rport`). */
  relatedPort?: number
}

/** A candidate of our own: an {@link IceCandidate} plus its base (RFC 8445 §5.1.1.1). */
export interface LocalCandidate extends IceCandidate {
  /** Where checks for this candidate are sent from: the local socket's address for this family. */
  base: IceAddress
  /** The local preference it was given (reused for its prflx/srflx relatives). */
  localPreference: number
}

/**
 * The foundation of a candidate (RFC 8445 §5.1.1.3): equal for candidates with the same
 * type, base IP address, STUN/TURN server IP address and transport, different otherwise.
 * It is a short hash of those (10 hex digits: ice-chars, at most 32 of them).
 */
export function candidateFoundation(type: CandidateType, baseAddress: string, serverAddress?: string, transport = 'udp'): string {
  const input = `${type}|${canonicalHost(baseAddress) ?? baseAddress}|${serverAddress === undefined ? '' : (canonicalHost(serverAddress) ?? serverAddress)}|${transport}`
  return createHash('sha256').update(input).digest('hex').slice(0, 10)
}

/** The family of a candidate's address. */
export function candidateFamily(candidate: Pick<IceCandidate, 'address'>): IpFamily {
  return ipFamily(candidate.address) ?? 'IPv4'
}

/** A map key for a candidate's transport address (`host:port`, canonical). */
export function candidateAddressKey(candidate: Pick<IceCandidate, 'address' | 'port'>): string {
  return addressKey(candidate.address, candidate.port)
}

/** A short human-readable form: `192.0.2.1:5000 typ srflx`. */
export function describeCandidate(candidate: Pick<IceCandidate, 'address' | 'port' | 'type'>): string {
  return `${candidateAddressKey(candidate)} typ ${candidate.type}`
}

/** Options of {@link createLocalCandidate}. */
export interface CreateLocalCandidateOptions {
  /** Candidate type. */
  type: CandidateType
  /** The candidate's address (the mapped address for srflx/prflx). */
  address: string
  /** The candidate's port. */
  port: number
  /** The base: the local socket address checks go out from. */
  base: IceAddress
  /**
   * Local preference (RFC 8445 §5.1.2.1).
   * @default 65535
   */
  localPreference?: number
  /**
   * The STUN/TURN server the candidate was learnt from (part of the foundation).
   * @default undefined
   */
  serverAddress?: string
  /**
   * Priority to use instead of the computed one (a prflx candidate takes the PRIORITY
   * of the check that revealed it, RFC 8445 §7.2.5.3.1).
   * @default computed by {@link candidatePriority}
   */
  priority?: number
}

/**
 * Builds a local candidate with its foundation and priority. srflx/prflx/relay
 * candidates carry their base as related address (RFC 8839 §5.1).
 *
 * @throws InvalidArgumentError for a bad address, port or type.
 */
export function createLocalCandidate(options: CreateLocalCandidateOptions): LocalCandidate {
  const address = canonicalHost(options.address)
  const baseAddress = canonicalHost(options.base?.address)
  if (address === undefined) throw new InvalidArgumentError(`Candidate address must be an IP literal, got ${JSON.stringify(options.address)}`)
  if (baseAddress === undefined) throw new InvalidArgumentError(`Candidate base must be an IP literal, got ${JSON.stringify(options.base?.address)}`)
  checkPort(options.port)
  checkPort(options.base.port)
  const localPreference = options.localPreference ?? 65535
  const computed = candidatePriority(options.type, localPreference, ICE_COMPONENT_ID)
  const candidate: LocalCandidate = {
    foundation: candidateFoundation(options.type, baseAddress, options.serverAddress),
    component: ICE_COMPONENT_ID,
    transport: 'udp',
    priority: options.priority ?? computed,
    address,
    port: options.port,
    type: options.type,
    base: { address: baseAddress, port: options.base.port },
    localPreference,
  }
  if (options.type !== 'host') {
    candidate.relatedAddress = baseAddress
    candidate.relatedPort = options.base.port
  }
  return candidate
}

/** Strips a local candidate to what is signalled to the peer. */
export function toSignalledCandidate(candidate: IceCandidate): IceCandidate {
  const out: IceCandidate = {
    foundation: candidate.foundation,
    component: candidate.component,
    transport: candidate.transport,
    priority: candidate.priority,
    address: candidate.address,
    port: candidate.port,
    type: candidate.type,
  }
  if (candidate.relatedAddress !== undefined) out.relatedAddress = candidate.relatedAddress
  if (candidate.relatedPort !== undefined) out.relatedPort = candidate.relatedPort
  return out
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`Candidate port must be an integer in 1..65535, got ${String(port)}`)
  }
}
