/**
 * Candidate pairs (RFC 8445 §6.1.2): a local and a remote candidate, the pair's 64-bit
 * priority and its state machine.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import { describeCandidate, type IceCandidate, type LocalCandidate } from './candidate.js'
import type { IceRole } from './ice-role.js'

/**
 * A pair's check state (RFC 8445 §6.1.2.6): `frozen` (not checked until its foundation
 * is unfrozen), `waiting` (to be checked), `in-progress` (a check is outstanding),
 * `succeeded` and `failed`.
 */
export type CandidatePairState = 'frozen' | 'waiting' | 'in-progress' | 'succeeded' | 'failed'

/** The transitions a pair may make; anything else is a bug and throws. */
const TRANSITIONS: Readonly<Record<CandidatePairState, readonly CandidatePairState[]>> = {
  // RFC 8445 §6.1.2.6, §6.1.4.2: unfrozen to Waiting; §7.3.1.4 a triggered check on a
  // Frozen pair makes it Waiting too.
  frozen: ['waiting', 'failed'],
  waiting: ['in-progress', 'failed'],
  // §7.2.5.1: after a 487 the pair goes back to Waiting in the triggered-check queue.
  'in-progress': ['succeeded', 'failed', 'waiting'],
  succeeded: [],
  // §7.3.1.4: a triggered check on a Failed pair makes it Waiting again.
  failed: ['waiting'],
}

const TWO_POW_32 = 2n ** 32n

/**
 * Pair priority (RFC 8445 §6.1.2.3): `2^32·MIN(G,D) + 2·MAX(G,D) + (G>D ? 1 : 0)` where G
 * is the controlling agent's candidate priority and D the controlled agent's. Computed
 * with BigInt: the value needs up to 64 bits, and in JavaScript `1 << 32` is 1.
 *
 * @example
 * ```ts
 * pairPriority(2130706431, 1694498815) // 7277816997797167103n
 * ```
 * @throws InvalidArgumentError if a priority is not an integer in 0..2^32−1.
 */
export function pairPriority(controllingPriority: number, controlledPriority: number): bigint {
  for (const p of [controllingPriority, controlledPriority]) {
    if (!Number.isInteger(p) || p < 0 || p > 0xffffffff) {
      throw new InvalidArgumentError(`A candidate priority is an integer in 0..2^32-1, got ${String(p)}`)
    }
  }
  const g = BigInt(controllingPriority)
  const d = BigInt(controlledPriority)
  const min = g < d ? g : d
  const max = g < d ? d : g
  // RFC 8445 §6.1.2.3
  return TWO_POW_32 * min + 2n * max + (g > d ? 1n : 0n)
}

/** Called by {@link CandidatePair.setState} on every state change. */
export type PairStateListener = (pair: CandidatePair, from: CandidatePairState) => void

/**
 * A candidate pair in a checklist. Its state changes only through
 * {@link CandidatePair.setState}, which enforces the RFC 8445 state machine.
 */
export class CandidatePair {
  /** Our candidate. */
  readonly local: LocalCandidate
  /** The peer's candidate. */
  readonly remote: IceCandidate
  #state: CandidatePairState = 'frozen'
  #priority = 0n
  /** Controlled side: the peer sent USE-CANDIDATE for this pair (§7.3.1.5). */
  nominateOnSuccess = false
  /** The pair has been nominated (controlling: the USE-CANDIDATE check succeeded; controlled: USE-CANDIDATE seen and valid). */
  nominated = false
  /** The valid pair this pair's check produced (itself, or one with a peer-reflexive local candidate, §7.2.5.3.2). */
  validPair: CandidatePair | undefined
  /** Why the pair failed, for diagnostics. */
  failureReason: string | undefined
  /** Round-trip time of the last successful check, in ms. */
  rttMs: number | undefined
  /** Number of checks sent for this pair. */
  checksSent = 0
  /** When the last (non-nominating) check of this pair was sent, `performance.now()` ms. */
  lastCheckAt: number | undefined
  readonly #onStateChange: PairStateListener | undefined

  constructor(local: LocalCandidate, remote: IceCandidate, role: IceRole, onStateChange?: PairStateListener) {
    this.local = local
    this.remote = remote
    this.#onStateChange = onStateChange
    this.updatePriority(role)
  }

  /**
   * A pair that is valid without having been checked itself: the valid pair with a
   * peer-reflexive local candidate that a check of another pair produced (RFC 8445
   * §7.2.5.3.2). It starts in the Succeeded state.
   */
  static succeeded(local: LocalCandidate, remote: IceCandidate, role: IceRole, onStateChange?: PairStateListener): CandidatePair {
    const pair = new CandidatePair(local, remote, role, onStateChange)
    pair.#state = 'succeeded'
    return pair
  }

  /** `local.foundation:remote.foundation`: pairs with the same one are frozen together (§6.1.2.6). */
  get foundation(): string {
    return `${this.local.foundation}:${this.remote.foundation}`
  }

  /** The pair's state. */
  get state(): CandidatePairState {
    return this.#state
  }

  /** The pair priority for the current role (§6.1.2.3). */
  get priority(): bigint {
    return this.#priority
  }

  /** Recomputes the priority after a role change (§7.2.5.1, §7.3.1.1). */
  updatePriority(role: IceRole): void {
    this.#priority =
      role === 'controlling'
        ? pairPriority(this.local.priority, this.remote.priority)
        : pairPriority(this.remote.priority, this.local.priority)
  }

  /**
   * The one place a pair's state changes.
   *
   * @throws InvalidArgumentError for a transition the RFC 8445 state machine does not allow.
   */
  setState(next: CandidatePairState, reason?: string): void {
    const from = this.#state
    if (from === next) return
    if (!TRANSITIONS[from].includes(next)) {
      throw new InvalidArgumentError(`Candidate pair ${this.toString()}: illegal transition ${from} → ${next}`)
    }
    this.#state = next
    if (next === 'failed') this.failureReason = reason ?? this.failureReason
    else this.failureReason = undefined
    this.#onStateChange?.(this, from)
  }

  /** `local -> remote (state)`, for logs and errors. */
  toString(): string {
    return `${describeCandidate(this.local)} -> ${describeCandidate(this.remote)} (${this.#state})`
  }
}

/** Orders pairs by descending priority (§6.1.2.3). */
export function comparePairs(a: CandidatePair, b: CandidatePair): number {
  return a.priority === b.priority ? 0 : a.priority > b.priority ? -1 : 1
}
