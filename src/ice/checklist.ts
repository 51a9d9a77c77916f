/**
 * The checklist (RFC 8445 §6.1.2): candidate pairs formed as candidates trickle in,
 * pruned, ordered by priority, frozen or waiting per foundation, with the triggered-check
 * queue, and the valid list the checks build.
 *
 * peerlink sends every check from its one socket: whatever local host address a pair
 * names, the operating system picks the source address by route. So two pairs with the
 * same remote candidate and local candidates of the same family on the same socket are the
 * same packets: they are redundant, and only the higher-priority one is kept (RFC 8445
 * §6.1.2.4 prunes pairs with the same local base and remote candidate; the "base" here is
 * the socket). The local candidate that really answered is then learnt from
 * XOR-MAPPED-ADDRESS when the check succeeds (§7.2.5.3.1).
 *
 * @module
 */
import { InvalidArgumentError, type IcePairOutcome } from '../errors.js'
// Referenced from TSDoc only.
import type { IceFailedError } from '../errors.js'
import { candidateAddressKey, candidateFamily, describeCandidate, type IceCandidate, type LocalCandidate } from './candidate.js'
import { CandidatePair, comparePairs, type PairStateListener } from './candidate-pair.js'
import { addressKey, isForeignPrivateAddress, isLinkLocalAddress } from './canonical-address.js'
import type { IceRole } from './ice-role.js'

/** Options of {@link Checklist}. */
export interface ChecklistOptions {
  /** The agent's current role (pair priorities depend on it). */
  role: IceRole
  /**
   * Most pairs kept (RFC 8445 §6.1.2.5); the lowest-priority frozen or waiting pairs are
   * dropped beyond it. Remote candidates beyond twice this number are ignored.
   * @default 100
   */
  maxPairs?: number
  /**
   * Called on every pair state change.
   * @default undefined
   */
  onPairStateChange?: PairStateListener
}

/**
 * The pairs of one ICE session (one component, one data stream: RFC 8445's "checklist
 * set" has one checklist here).
 */
export class Checklist {
  #role: IceRole
  readonly #maxPairs: number
  readonly #onPairStateChange: PairStateListener | undefined
  readonly #local: LocalCandidate[] = []
  readonly #remote: IceCandidate[] = []
  #pairs: CandidatePair[] = []
  readonly #valid: CandidatePair[] = []
  readonly #triggered: CandidatePair[] = []

  constructor(options: ChecklistOptions) {
    if (options?.role !== 'controlling' && options?.role !== 'controlled') throw new InvalidArgumentError('Checklist needs a role')
    const maxPairs = options.maxPairs ?? 100
    if (!Number.isInteger(maxPairs) || maxPairs < 1) throw new InvalidArgumentError('maxPairs must be a positive integer')
    this.#role = options.role
    this.#maxPairs = maxPairs
    this.#onPairStateChange = options.onPairStateChange
  }

  /** The role pair priorities are computed for. */
  get role(): IceRole {
    return this.#role
  }

  /** The pairs, highest priority first. */
  get pairs(): readonly CandidatePair[] {
    return this.#pairs
  }

  /** The valid list (RFC 8445 §7.2.5.3.2), highest priority first. */
  get validPairs(): readonly CandidatePair[] {
    return this.#valid
  }

  /** Local candidates known (including peer-reflexive ones learnt from checks). */
  get localCandidates(): readonly LocalCandidate[] {
    return this.#local
  }

  /** Remote candidates known (including peer-reflexive ones learnt from checks). */
  get remoteCandidates(): readonly IceCandidate[] {
    return this.#remote
  }

  /** Pairs waiting in the triggered-check queue, first out first. */
  get triggeredQueue(): readonly CandidatePair[] {
    return this.#triggered
  }

  /** Changes the role and recomputes every pair priority (RFC 8445 §7.2.5.1, §7.3.1.1). */
  setRole(role: IceRole): void {
    this.#role = role
    for (const pair of this.#pairs) pair.updatePriority(role)
    for (const pair of this.#valid) pair.updatePriority(role)
    this.#pairs.sort(comparePairs)
    this.#valid.sort(comparePairs)
  }

  /**
   * Adds a local candidate and pairs it with every remote candidate of its family.
   * Server- and peer-reflexive local candidates are replaced by their base and so form no
   * new pairs (RFC 8445 §6.1.2.4). Returns the pairs added.
   */
  addLocalCandidate(candidate: LocalCandidate): CandidatePair[] {
    if (this.findLocal(candidate.address, candidate.port) !== undefined) return []
    this.#local.push(candidate)
    if (candidate.type === 'srflx' || candidate.type === 'prflx') return []
    const added: CandidatePair[] = []
    for (const remote of this.#remote) {
      const pair = this.#formPair(candidate, remote)
      if (pair !== undefined) added.push(pair)
    }
    return this.#finishAdding(added)
  }

  /**
   * Adds a remote candidate (signalled, or peer-reflexive from a check) and pairs it with
   * every local candidate of its family. A candidate at a transport address already known
   * is ignored (RFC 8445 §5.1.3); returns the pairs added.
   */
  addRemoteCandidate(candidate: IceCandidate): CandidatePair[] {
    const known = this.findRemote(candidate.address, candidate.port)
    if (known !== undefined) {
      // The peer signalled a candidate we had learnt as peer-reflexive from its checks:
      // take the signalled type, foundation and priority (RFC 8838 trickle ordering).
      if (known.type === 'prflx' && candidate.type !== 'prflx') {
        Object.assign(known, { type: candidate.type, foundation: candidate.foundation, priority: candidate.priority })
        if (candidate.relatedAddress !== undefined) known.relatedAddress = candidate.relatedAddress
        if (candidate.relatedPort !== undefined) known.relatedPort = candidate.relatedPort
        this.setRole(this.#role)
      }
      return []
    }
    // A bound on what signalling can make us store (the pairs are bounded by maxPairs).
    if (this.#remote.length >= 2 * this.#maxPairs) return []
    this.#remote.push(candidate)
    const added: CandidatePair[] = []
    for (const local of this.#local) {
      if (local.type === 'srflx' || local.type === 'prflx') continue
      const pair = this.#formPair(local, candidate)
      if (pair !== undefined) added.push(pair)
    }
    return this.#finishAdding(added)
  }

  /** The local candidate at this transport address, if any. */
  findLocal(address: string, port: number): LocalCandidate | undefined {
    const key = addressKey(address, port)
    return this.#local.find((c) => candidateAddressKey(c) === key)
  }

  /** The remote candidate at this transport address, if any. */
  findRemote(address: string, port: number): IceCandidate | undefined {
    const key = addressKey(address, port)
    return this.#remote.find((c) => candidateAddressKey(c) === key)
  }

  /** The checklist pair whose checks go to `remote` from the socket `local` belongs to. */
  findPair(local: LocalCandidate, remote: IceCandidate): CandidatePair | undefined {
    const key = pruneKey(local, remote)
    return this.#pairs.find((p) => pruneKey(p.local, p.remote) === key)
  }

  /** The local candidate checks to `remote` are sent for: the best host (or relay) candidate of its family. */
  localFor(remote: IceCandidate): LocalCandidate | undefined {
    const family = candidateFamily(remote)
    let best: LocalCandidate | undefined
    for (const local of this.#local) {
      if (local.type === 'srflx' || local.type === 'prflx' || local.type === 'relay') continue
      if (candidateFamily(local) !== family) continue
      if (best === undefined || local.priority > best.priority) best = local
    }
    return best
  }

  /**
   * The pair for a triggered check (RFC 8445 §7.3.1.4): the existing one, or a new
   * Waiting pair added to the checklist.
   */
  pairForTriggeredCheck(local: LocalCandidate, remote: IceCandidate): CandidatePair {
    const existing = this.findPair(local, remote)
    if (existing !== undefined) return existing
    const pair = new CandidatePair(local, remote, this.#role, this.#onPairStateChange)
    this.#insert(pair)
    pair.setState('waiting')
    return pair
  }

  /**
   * Adds a pair to the valid list (RFC 8445 §7.2.5.3.2): the checked pair itself, a pair
   * of the checklist, or a new pair with a peer-reflexive local candidate that is only in
   * the valid list.
   */
  addValidPair(checked: CandidatePair, local: LocalCandidate): CandidatePair {
    let valid: CandidatePair
    if (local === checked.local) {
      valid = checked
    } else {
      valid =
        this.#valid.find((p) => p.local === local && p.remote === checked.remote) ??
        this.#pairs.find((p) => p.local === local && p.remote === checked.remote) ??
        CandidatePair.succeeded(local, checked.remote, this.#role, this.#onPairStateChange)
    }
    valid.rttMs = checked.rttMs
    if (!this.#valid.includes(valid)) {
      this.#valid.push(valid)
      this.#valid.sort(comparePairs)
    }
    checked.validPair = valid
    return valid
  }

  /** Puts a pair in the triggered-check queue (RFC 8445 §7.3.1.4), Waiting; no-op if queued. */
  enqueueTriggered(pair: CandidatePair): void {
    if (pair.state === 'frozen' || pair.state === 'failed') pair.setState('waiting')
    if (!this.#triggered.includes(pair)) this.#triggered.push(pair)
  }

  /**
   * The next pair to check, or `undefined` (RFC 8445 §6.1.4.2): the first pair of the
   * triggered-check queue; else the highest-priority Waiting pair; else the
   * highest-priority Frozen pair whose foundation has no Waiting or In-Progress pair, made
   * Waiting. The caller moves it to In-Progress.
   *
   * A pair whose remote is a host candidate of another private network (see
   * `isForeignPrivateAddress`: the peer's LAN address, which a peer elsewhere cannot
   * reach) is checked after the other Waiting pairs rather than first, so that the pair
   * that works does not wait Ta behind one that never answers. It is still checked, and
   * still preferred by priority if it answers.
   */
  next(): CandidatePair | undefined {
    while (this.#triggered.length > 0) {
      const pair = this.#triggered.shift() as CandidatePair
      if (pair.state === 'waiting') return pair
    }
    const waiting = this.#pairs.find((p) => p.state === 'waiting' && !this.isUnlikelyPair(p)) ?? this.#pairs.find((p) => p.state === 'waiting')
    if (waiting !== undefined) return waiting
    for (const pair of this.#pairs) {
      if (pair.state !== 'frozen') continue
      if (!this.#foundationActive(pair.foundation)) {
        pair.setState('waiting')
        return pair
      }
    }
    return undefined
  }

  /**
   * Whether the pair's remote is a host candidate of another private network
   * (`isForeignPrivateAddress` against our host candidates): usually unreachable, so it
   * is checked last and nomination does not wait for it.
   */
  isUnlikelyPair(pair: CandidatePair): boolean {
    if (pair.remote.type !== 'host') return false
    return isForeignPrivateAddress(
      pair.remote.address,
      this.#local.filter((c) => c.type === 'host').map((c) => c.address),
    )
  }

  /** RFC 8445 §7.2.5.3.3: a pair succeeded, so Frozen pairs of its foundation become Waiting. */
  unfreezeFoundation(foundation: string): void {
    for (const pair of this.#pairs) if (pair.foundation === foundation && pair.state === 'frozen') pair.setState('waiting')
  }

  /** Whether any pair may still be checked (Frozen, Waiting, In-Progress, or queued). */
  get hasPendingChecks(): boolean {
    return this.#triggered.length > 0 || this.#pairs.some((p) => p.state === 'frozen' || p.state === 'waiting' || p.state === 'in-progress')
  }

  /** Whether some pair with a priority above `priority` has not finished yet. */
  hasPendingAbove(priority: bigint): boolean {
    return this.#pairs.some(
      (p) => p.priority > priority && (p.state === 'frozen' || p.state === 'waiting' || p.state === 'in-progress'),
    )
  }

  /** Marks every pair that has not finished as Failed (the agent gave up). */
  failPending(reason: string): void {
    this.#triggered.length = 0
    for (const pair of this.#pairs) {
      if (pair.state !== 'succeeded' && pair.state !== 'failed') pair.setState('failed', reason)
    }
  }

  /** Each pair and how it ended, for {@link IceFailedError}. */
  outcomes(): IcePairOutcome[] {
    return this.#pairs.map((p) => {
      const outcome: IcePairOutcome = { local: describeCandidate(p.local), remote: describeCandidate(p.remote), state: p.state }
      if (p.failureReason !== undefined) outcome.reason = p.failureReason
      return outcome
    })
  }

  #formPair(local: LocalCandidate, remote: IceCandidate): CandidatePair | undefined {
    // RFC 8445 §6.1.2.2: same component and IP family; link-local IPv6 only with link-local.
    if (local.component !== remote.component) return undefined
    if (candidateFamily(local) !== candidateFamily(remote)) return undefined
    if (candidateFamily(remote) === 'IPv6' && isLinkLocalAddress(local.address) !== isLinkLocalAddress(remote.address)) return undefined
    const pair = new CandidatePair(local, remote, this.#role, this.#onPairStateChange)
    // RFC 8445 §6.1.2.4: of redundant pairs keep the highest priority one.
    const existing = this.findPair(local, remote)
    if (existing !== undefined) {
      if (existing.priority >= pair.priority || (existing.state !== 'frozen' && existing.state !== 'waiting')) return undefined
      this.#remove(existing)
    }
    this.#insert(pair)
    return pair
  }

  #finishAdding(added: CandidatePair[]): CandidatePair[] {
    // RFC 8445 §6.1.2.6 with trickle (RFC 8838 §10): a new pair is Waiting unless a pair of
    // its foundation is already Waiting or In-Progress, in which case it stays Frozen.
    for (const pair of added.sort(comparePairs)) {
      if (!this.#foundationActive(pair.foundation) && pair.state === 'frozen') pair.setState('waiting')
    }
    // RFC 8445 §6.1.2.5: limit the number of pairs.
    while (this.#pairs.length > this.#maxPairs) {
      const victim = [...this.#pairs].reverse().find((p) => p.state === 'frozen' || p.state === 'waiting')
      if (victim === undefined) break
      this.#remove(victim)
    }
    return added.filter((p) => this.#pairs.includes(p))
  }

  #foundationActive(foundation: string): boolean {
    return this.#pairs.some((p) => p.foundation === foundation && (p.state === 'waiting' || p.state === 'in-progress'))
  }

  #insert(pair: CandidatePair): void {
    this.#pairs.push(pair)
    this.#pairs.sort(comparePairs)
  }

  #remove(pair: CandidatePair): void {
    this.#pairs = this.#pairs.filter((p) => p !== pair)
    const queued = this.#triggered.indexOf(pair)
    if (queued >= 0) this.#triggered.splice(queued, 1)
  }
}

/** Pairs with the same key send the same packets (same socket and family, same remote). */
function pruneKey(local: LocalCandidate, remote: IceCandidate): string {
  const socket = local.type === 'relay' ? `relay ${addressKey(local.base.address, local.base.port)}` : `socket ${local.base.port} ${candidateFamily(local)}`
  return `${socket}|${candidateAddressKey(remote)}`
}
