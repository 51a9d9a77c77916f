/**
 * Options, events and results of the {@link IceAgent}.
 *
 * @module
 */
import { InvalidArgumentError, SocketClosedError, type IcePairOutcome } from '../errors.js'
import { checkRetransmit } from '../stun/transaction.js'
import type { StunServerAddress } from '../stun/binding-client.js'
import type { DatagramEndpoint } from '../stun/datagram-endpoint.js'
import type { StunRetransmitOptions } from '../stun/transaction.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import type { IceCandidate, LocalCandidate } from './candidate.js'
import type { CandidateGathererOptions } from './candidate-gatherer.js'
import type { CandidatePair, CandidatePairState } from './candidate-pair.js'
import type { IceCredentials } from './ice-credentials.js'
import type { IceRole } from './ice-role.js'
// Referenced from TSDoc only.
import type { IceAgent } from './ice-agent.js'

/**
 * The agent's overall state: `new`, `gathering` (local candidates being gathered, no
 * check sent yet), `checking`, `connected` (a pair is selected), `failed` (no pair works,
 * or consent was lost), `closed`.
 */
export type IceAgentState = 'new' | 'gathering' | 'checking' | 'connected' | 'failed' | 'closed'

/** Host-candidate options passed through to the gatherer. */
export type IceGatherOptions = Pick<
  CandidateGathererOptions,
  'hostAddresses' | 'interfaces' | 'families' | 'includeLoopback' | 'includeLinkLocal' | 'networkInterfaces' | 'stunRetransmit' | 'reflexive'
>

/** Options of {@link IceAgent}. */
export interface IceAgentOptions {
  /**
   * The peer's one UDP socket. The agent listens for STUN on it and sends from it; it
   * never closes it. Give this or `endpoint`.
   * @default undefined
   */
  socket?: PeerSocket
  /**
   * A datagram endpoint to use instead of a PeerSocket (tests use an in-memory network).
   * Its `localAddress()` must report the bound address.
   * @default undefined
   */
  endpoint?: DatagramEndpoint
  /** Initial role; peerlink's connecting side is `controlling`. A role conflict may change it. */
  role: IceRole
  /**
   * STUN servers for server-reflexive candidates (and the Beacons' STUN ports).
   * @default []
   */
  stunServers?: readonly StunServerAddress[]
  /**
   * Our credentials.
   * @default fresh random ones ({@link generateIceCredentials})
   */
  localCredentials?: IceCredentials
  /**
   * The peer's credentials, if already known (else {@link IceAgent.setRemoteCredentials}).
   * @default undefined
   */
  remoteCredentials?: IceCredentials
  /**
   * The 64-bit tie-breaker for role conflicts.
   * @default random
   */
  tieBreaker?: bigint
  /**
   * Which host candidates to gather (tests pass exact `hostAddresses`).
   * @default {} (every non-internal interface the socket listens on)
   */
  gather?: IceGatherOptions
  /**
   * Ta: minimum ms between two checks (RFC 8445 §14.2).
   * @default 50
   */
  ta?: number
  /**
   * Retransmission of each check's Binding request (RFC 8445 §14.3: RTO ≥ 500 ms).
   * @default { rto: 500, rc: 5, rm: 4 } (a pair fails after 9.5 s without answer)
   */
  checkRetransmit?: StunRetransmitOptions
  /**
   * Controlling side: ms to wait after the first valid pair for better pairs still being
   * checked before nominating the best valid pair.
   * @default 50
   */
  nominationDelay?: number
  /**
   * Controlling side: ms after the agent started before a pair through a relay (a
   * relayed candidate on either side) may be nominated, so direct pairs get their chance
   * first (see {@link IceAgent.nominateRelaysNow}).
   * @default 0
   */
  relayDelay?: number
  /**
   * Controlled side: select a pair as soon as the peer's USE-CANDIDATE check for it
   * arrives, without waiting for our own check of it (see `ControllingNominationOptions`).
   * @default false (RFC 8445 §7.3.1.5)
   */
  selectOnNomination?: boolean
  /**
   * Mean interval of consent checks on the selected pair, ms (RFC 7675: 5 s).
   * @default 5000
   */
  consentInterval?: number
  /**
   * Consent is lost after this many ms without a response (RFC 7675: 30 s).
   * @default 30000
   */
  consentTimeout?: number
  /**
   * Most candidate pairs (RFC 8445 §6.1.2.5).
   * @default 100
   */
  maxPairs?: number
  /**
   * Closes the agent when aborted.
   * @default undefined
   */
  signal?: AbortSignal
}

/** The pair ICE selected. */
export interface IceSelection {
  /** Our candidate of the selected (valid, nominated) pair. */
  local: LocalCandidate
  /** The peer's candidate: open the udx stream / secure connection to this address and port. */
  remote: IceCandidate
  /** The pair itself. */
  pair: CandidatePair
  /** Round-trip time of the check that validated it, ms. */
  rttMs: number | undefined
}

/** Options of {@link IceAgent.connect}. */
export interface IceConnectOptions {
  /**
   * Aborting rejects with `AbortError` and closes the agent.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * Milliseconds until the attempt fails with `IceFailedError` (`reason: 'timeout'`).
   * @default 30000
   */
  timeout?: number
}

/** Events of {@link IceAgent}. */
export interface IceAgentEvents {
  /** A new local candidate: trickle it to the peer (`formatCandidate`). */
  candidate: [candidate: LocalCandidate]
  /** Local gathering finished: signal end-of-candidates. */
  'end-of-candidates': []
  /** The state changed. */
  state: [state: IceAgentState]
  /** A pair was selected (also the resolution of `connect()`). */
  selected: [selection: IceSelection]
  /**
   * While connected, the selection moved to another pair ({@link IceAgent.reselect}, or
   * the controlled side followed a renomination): move the stream to `selection.remote`.
   */
  reselected: [info: { selection: IceSelection; previous: IceSelection }]
  /** While connected, a valid check arrived for a pair other than the selected one. */
  'check-while-connected': [pair: CandidatePair]
  /** A role conflict changed our role. */
  'role-change': [role: IceRole]
  /** A pair changed state (diagnostics). */
  'pair-state': [pair: CandidatePair, from: CandidatePairState]
  /** No response to consent checks on the selected pair for `consentTimeout` ms: stop using it. */
  'consent-lost': [info: { selection: IceSelection; sinceLastResponseMs: number }]
  /** The attempt failed (every pair failed, or timeout); `pairs` for diagnostics. */
  failed: [info: { reason: 'failed' | 'timeout' | 'consent-lost'; pairs: IcePairOutcome[] }]
}

/**
 * Throws `InvalidArgumentError` on invalid {@link IceAgent} options, `SocketClosedError`
 * for a closed socket.
 *
 * @internal
 */
export function checkIceAgentOptions(options: IceAgentOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('IceAgent needs options')
  if (options.role !== 'controlling' && options.role !== 'controlled') throw new InvalidArgumentError('role must be "controlling" or "controlled"')
  if ((options.socket === undefined) === (options.endpoint === undefined)) throw new InvalidArgumentError('IceAgent needs exactly one of socket and endpoint')
  if (options.tieBreaker !== undefined && (typeof options.tieBreaker !== 'bigint' || options.tieBreaker < 0n || options.tieBreaker >= 2n ** 64n)) {
    throw new InvalidArgumentError('tieBreaker must be a 64-bit unsigned bigint')
  }
  for (const [name, value] of [['ta', options.ta], ['nominationDelay', options.nominationDelay], ['relayDelay', options.relayDelay]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new InvalidArgumentError(`${name} must be a number ≥ 0`)
  }
  if (options.checkRetransmit !== undefined) checkRetransmit(options.checkRetransmit, 'IceAgent checkRetransmit')
  if (options.socket !== undefined && options.socket.closed) throw new SocketClosedError('The socket is closed')
}
