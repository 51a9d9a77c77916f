/**
 * Which pairs path recovery tries (`src/peer/path-manager.ts`): after the selected pair
 * stopped answering (failover), and while the connection runs through a TURN relay
 * (upgrade to a direct pair). Pure functions over the checklist's pairs.
 *
 * The controlling agent then renominates — a check with USE-CANDIDATE on the chosen
 * pair (`IceAgent.probe({ nominate: true })`) — and the controlled agent follows the
 * latest nomination it receives (`IceAgent.reselect`), as draft-thatcher-ice-renomination
 * describes (without its NOMINATION counter: both sides act on the last USE-CANDIDATE).
 *
 * @module
 */
import { StunMalformedError } from '../errors.js'
import type { StunMessage } from '../stun/message.js'
import type { StunResponse } from '../stun/transaction.js'
import { createLocalCandidate } from './candidate.js'
import type { CandidatePair } from './candidate-pair.js'
import { candidatePriority } from './candidate-priority.js'
import type { Checklist } from './checklist.js'
import { interpretCheckResponse } from './connectivity-check.js'
import { isRelayPair } from './nomination.js'

/** Options of `IceAgent.probe`. */
export interface ProbeOptions {
  /**
   * Send USE-CANDIDATE (renominate the pair); only the controlling agent does.
   * @default false
   */
  nominate?: boolean
  /**
   * Stops the check.
   * @default undefined
   */
  signal?: AbortSignal
  /**
   * First retransmission timeout, ms (RFC 8489 §6.2.1).
   * @default 250
   */
  rto?: number
  /**
   * Requests sent in all.
   * @default 4
   */
  rc?: number
}

/** What {@link probePair} needs of the agent. @internal */
export interface ProbeContext {
  checklist: Checklist
  /** Builds a check request (`createCheckRequest` with the agent's credentials and role). */
  check(useCandidate: boolean, priority: number): StunMessage
  /** Runs the transaction from the pair's local base (through its relay if relayed). */
  request(request: StunMessage, pair: CandidatePair): Promise<StunResponse>
  controlling: boolean
}

/**
 * One connectivity check on `pair` while connected; resolves with the valid pair it
 * produced (RFC 8445 §7.2.5.3: the local candidate is the mapped address, possibly a new
 * peer-reflexive one), rejects without an answer or on a failure response.
 *
 * @internal (use `IceAgent.probe`)
 */
export async function probePair(context: ProbeContext, pair: CandidatePair, options: ProbeOptions = {}): Promise<CandidatePair> {
  // RFC 8445 §7.1.1: PRIORITY is the priority a peer-reflexive candidate would get.
  const priority = candidatePriority('prflx', pair.local.localPreference)
  const request = context.check(options.nominate === true && context.controlling, priority)
  const response = await context.request(request, pair)
  const outcome = interpretCheckResponse(response, pair.remote)
  if (outcome.kind !== 'success') throw new StunMalformedError(`check failed: ${outcome.kind === 'failure' ? outcome.reason : outcome.kind}`)
  pair.rttMs = response.rtt
  let local = context.checklist.findLocal(outcome.mapped.address, outcome.mapped.port)
  if (local === undefined) {
    local = createLocalCandidate({ type: 'prflx', address: outcome.mapped.address, port: outcome.mapped.port, base: pair.local.base, localPreference: pair.local.localPreference, priority })
    context.checklist.addLocalCandidate(local)
  }
  return context.checklist.addValidPair(pair, local)
}

/** The transport-address key of a pair (its local base and remote address). */
function routeKey(pair: CandidatePair): string {
  return `${pair.local.base.address}|${pair.local.base.port}|${pair.local.type === 'relay' ? 'relay' : 'socket'}|${pair.remote.address}|${pair.remote.port}`
}

/**
 * Pairs to check when the selected pair died, best first: valid pairs before unchecked
 * ones, then by priority; never the selected route itself; at most `max`. Pairs whose
 * checks already failed are tried again (the network may have changed).
 */
export function failoverCandidates(pairs: readonly CandidatePair[], selected: CandidatePair, max = 12): CandidatePair[] {
  const dead = routeKey(selected)
  const seen = new Set<string>([dead])
  const out: CandidatePair[] = []
  const sorted = [...pairs].sort((a, b) => {
    const av = a.validPair !== undefined || a.state === 'succeeded' ? 1 : 0
    const bv = b.validPair !== undefined || b.state === 'succeeded' ? 1 : 0
    if (av !== bv) return bv - av
    return a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0
  })
  for (const pair of sorted) {
    const key = routeKey(pair)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(pair)
    if (out.length >= max) break
  }
  return out
}

/**
 * Direct pairs (no relayed candidate on either side) worth checking while the selection
 * goes through a relay, highest priority first, at most `max`. Empty when the selection
 * is already direct.
 */
export function upgradeCandidates(pairs: readonly CandidatePair[], selected: CandidatePair, max = 6): CandidatePair[] {
  if (!isRelayPair(selected)) return []
  const seen = new Set<string>()
  const out: CandidatePair[] = []
  for (const pair of [...pairs].sort((a, b) => (a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0))) {
    if (isRelayPair(pair)) continue
    const key = routeKey(pair)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(pair)
    if (out.length >= max) break
  }
  return out
}

/** The best of the pairs whose checks succeeded (highest priority), or `undefined`. */
export function bestOf(pairs: readonly CandidatePair[]): CandidatePair | undefined {
  let best: CandidatePair | undefined
  for (const pair of pairs) if (best === undefined || pair.priority > best.priority) best = pair
  return best
}
