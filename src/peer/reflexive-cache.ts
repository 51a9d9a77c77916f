/**
 * The peer's recent server-reflexive candidates (its public mappings as the Beacons'
 * STUN ports see them), so that an offer or answer can carry them at once instead of
 * trickling them one STUN round trip later.
 *
 * That round trip sits on the critical path of every connection: the connecting side
 * can only check the listener's public address once it knows it, and with
 * address(-and-port)-dependent filtering each side's NAT opens only when it has sent to
 * the other's public address. Every attempt still gathers afresh (and trickles what
 * changed); a cached candidate that went stale only costs one pair that never answers.
 *
 * Candidates come from a background gathering on the peer's socket (when the peer
 * starts and when it listens) and from every attempt's own gathering.
 *
 * @module
 */
import { StunTimeoutError } from '../errors.js'
import { candidateAddressKey, type LocalCandidate } from '../ice/candidate.js'
import { CandidateGatherer } from '../ice/candidate-gatherer.js'
import type { IceGatherOptions } from '../ice/ice-agent-options.js'
import type { StunServerAddress } from '../stun/binding-client.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import { peerSocketEndpoint } from '../transport/peer-socket-endpoint.js'

/**
 * Milliseconds a learnt mapping is offered. NATs keep idle UDP mappings for 30 s or more
 * (RFC 4787 REQ-5: at least 2 minutes); an endpoint-independent NAT usually gives the
 * same port again after that anyway.
 */
export const REFLEXIVE_TTL_MS = 60_000

/**
 * Milliseconds during which a learnt mapping is trusted without asking the STUN servers
 * again: an attempt then signals it with its host candidates and end-of-candidates in
 * one message (no STUN round trip, no trickled candidate). An attempt that fails forgets
 * the cache, so that a mapping that changed (a NAT restarted) costs one attempt at most.
 */
export const REFLEXIVE_FRESH_MS = 15_000

/** Whether UDP from the peer's socket reaches the STUN servers (see {@link ReflexiveCache.udp}). */
export type UdpReachability = 'unknown' | 'open' | 'blocked'

/** Recent server-reflexive candidates of one peer socket (see the module notes). */
export class ReflexiveCache {
  readonly #socket: PeerSocket
  readonly #stunServers: readonly StunServerAddress[]
  readonly #gather: IceGatherOptions
  readonly #entries = new Map<string, { candidate: LocalCandidate; at: number }>()
  #gatherer: CandidateGatherer | undefined
  #closed = false
  #udp: UdpReachability = 'unknown'
  readonly #udpListeners = new Set<(state: UdpReachability) => void>()

  constructor(socket: PeerSocket, stunServers: readonly StunServerAddress[], gather: IceGatherOptions) {
    this.#socket = socket
    this.#stunServers = stunServers
    this.#gather = gather
  }

  /** The server-reflexive candidates learnt in the last `maxAgeMs` ms (at most {@link REFLEXIVE_TTL_MS}). */
  candidates(maxAgeMs = REFLEXIVE_TTL_MS): LocalCandidate[] {
    const now = performance.now()
    const fresh: LocalCandidate[] = []
    for (const [key, entry] of this.#entries) {
      if (entry.at < now - REFLEXIVE_TTL_MS) this.#entries.delete(key)
      else if (entry.at >= now - maxAgeMs) fresh.push(entry.candidate)
    }
    return fresh
  }

  /** Forgets every mapping (an attempt failed: they may be stale). */
  forget(): void {
    this.#entries.clear()
  }

  /**
   * Whether UDP gets out, as the last gathering saw it: `open` once any STUN server
   * answered over UDP, `blocked` when a whole gathering got no answer from any of them
   * (the tunnel path starts at once then), `unknown` before.
   */
  get udp(): UdpReachability {
    return this.#udp
  }

  /** Calls `listener` whenever {@link ReflexiveCache.udp} changes; returns the unsubscribe function. */
  onUdp(listener: (state: UdpReachability) => void): () => void {
    this.#udpListeners.add(listener)
    return () => this.#udpListeners.delete(listener)
  }

  #setUdp(state: UdpReachability): void {
    if (this.#udp === state || this.#closed) return
    this.#udp = state
    for (const listener of [...this.#udpListeners]) listener(state)
  }

  /** Records a candidate an attempt gathered (only server-reflexive ones are kept). */
  learn(candidate: LocalCandidate): void {
    if (this.#closed || candidate.type !== 'srflx') return
    this.#setUdp('open')
    const key = candidateAddressKey(candidate)
    this.#entries.delete(key) // newest last
    this.#entries.set(key, { candidate, at: performance.now() })
  }

  /**
   * Gathers in the background (STUN Binding to every server from the peer's socket),
   * unless a gathering is already running or there are no STUN servers. Never throws.
   */
  refresh(): void {
    if (this.#closed || this.#gatherer !== undefined || this.#stunServers.length === 0 || this.#socket.closed) return
    let gatherer: CandidateGatherer
    try {
      gatherer = new CandidateGatherer({ endpoint: peerSocketEndpoint(this.#socket), stunServers: this.#stunServers, ...this.#gather })
    } catch {
      return
    }
    this.#gatherer = gatherer
    gatherer.on('candidate', (candidate) => this.learn(candidate))
    gatherer
      .gather()
      .then((outcomes) => {
        // A mapping equal to a host address (no NAT) is an answer too, though no srflx candidate.
        if (outcomes.some((outcome) => outcome.mapped !== undefined)) this.#setUdp('open')
        // Only unanswered requests say UDP is blocked (not an unresolvable host name).
        else if (outcomes.some((outcome) => outcome.error instanceof StunTimeoutError)) this.#setUdp('blocked')
      })
      .catch(() => {})
      .finally(() => {
        if (this.#gatherer === gatherer) this.#gatherer = undefined
      })
  }

  /** Stops a running gathering and forgets everything. Idempotent. */
  close(): void {
    this.#closed = true
    this.#udpListeners.clear()
    this.#gatherer?.close()
    this.#gatherer = undefined
    this.#entries.clear()
  }
}
