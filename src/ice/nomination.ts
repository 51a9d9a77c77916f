/**
 * Nomination (RFC 8445 §8.1): regular nomination by the controlling agent, selection of
 * the nominated pair by the controlled agent. One small strategy object per role; the
 * agent swaps them when a role conflict changes its role.
 *
 * @module
 */
import type { CandidatePair } from './candidate-pair.js'
import type { Checklist } from './checklist.js'
import type { IceRole } from './ice-role.js'

/** What a nomination strategy may ask of the agent. */
export interface NominationContext {
  /** The checklist (valid list, pending pairs). */
  readonly checklist: Checklist
  /** Controlling: send a check with USE-CANDIDATE for this valid pair (RFC 8445 §8.1.1). */
  sendNomination(pair: CandidatePair): void
  /** Both: this pair is nominated and valid — select it (RFC 8445 §8.1.1, §8.2). */
  select(pair: CandidatePair): void
}

/** The role-specific part of nomination. */
export interface NominationStrategy {
  /** The role this strategy plays. */
  readonly role: IceRole
  /**
   * A check of `checked` succeeded and produced the valid pair `valid`; `nominating` is
   * true when that check carried USE-CANDIDATE.
   */
  onValidPair(valid: CandidatePair, checked: CandidatePair, nominating: boolean): void
  /** A check carrying USE-CANDIDATE arrived for `pair` (RFC 8445 §7.3.1.5). */
  onUseCandidate(pair: CandidatePair): void
  /** A pair failed or the checklist changed: the strategy may now decide. */
  onChecklistChanged(): void
  /** A nomination check (USE-CANDIDATE) for `pair` failed. */
  onNominationFailed(pair: CandidatePair): void
  /** Stops timers. */
  close(): void
}

/** Options of {@link ControllingNomination}. */
export interface ControllingNominationOptions {
  /**
   * Milliseconds to wait, after the first pair became valid, for higher-priority pairs
   * still being checked before nominating the best valid pair. A valid pair with no
   * pending pair above it is nominated at once.
   * @default 50
   */
  nominationDelay?: number
}

/**
 * The controlling agent's regular nomination (RFC 8445 §8.1.1): when a pair becomes valid
 * and no higher-priority pair is still pending — or `nominationDelay` after the first
 * valid pair — it sends a check with USE-CANDIDATE for the best valid pair, and selects
 * that pair when the check succeeds.
 */
export class ControllingNomination implements NominationStrategy {
  readonly role = 'controlling' as const
  readonly #context: NominationContext
  readonly #delay: number
  #timer: ReturnType<typeof setTimeout> | undefined
  #nominating: CandidatePair | undefined
  readonly #failed = new Set<CandidatePair>()
  #closed = false

  constructor(context: NominationContext, options: ControllingNominationOptions = {}) {
    this.#context = context
    this.#delay = options.nominationDelay ?? 50
  }

  onValidPair(valid: CandidatePair, _checked: CandidatePair, nominating: boolean): void {
    if (this.#closed) return
    if (nominating) {
      // RFC 8445 §8.1.1: the nomination check succeeded — the pair is nominated.
      valid.nominated = true
      this.#nominating = undefined
      this.#context.select(valid)
      return
    }
    this.#consider()
  }

  onUseCandidate(): void {
    // A controlling agent ignores USE-CANDIDATE (only the controlled side acts on it).
  }

  onChecklistChanged(): void {
    if (!this.#closed) this.#consider()
  }

  onNominationFailed(pair: CandidatePair): void {
    if (this.#closed) return
    this.#failed.add(pair)
    if (this.#nominating === pair) this.#nominating = undefined
    this.#decide(true)
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Nominates now if nothing better is pending, else makes sure the deadline timer runs. */
  #consider(): void {
    if (this.#nominating !== undefined) return
    this.#decide()
    if (this.#nominating === undefined && this.#timer === undefined && this.#context.checklist.validPairs.length > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#decide(true)
      }, this.#delay)
    }
  }

  #decide(deadlinePassed = false): void {
    const best = this.#context.checklist.validPairs.find((p) => !this.#failed.has(p))
    if (best === undefined) return
    if (!deadlinePassed && this.#context.checklist.hasPendingAbove(best.priority)) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#nominating = best
    this.#context.sendNomination(best)
  }
}

/**
 * The controlled agent (RFC 8445 §7.3.1.5, §8.2): a check with USE-CANDIDATE nominates its
 * pair — at once if the pair's own check already succeeded, otherwise when it does.
 */
export class ControlledNomination implements NominationStrategy {
  readonly role = 'controlled' as const
  readonly #context: NominationContext
  #closed = false

  constructor(context: NominationContext) {
    this.#context = context
  }

  onValidPair(valid: CandidatePair, checked: CandidatePair): void {
    if (this.#closed) return
    if (checked.nominateOnSuccess || valid.nominateOnSuccess) {
      valid.nominated = true
      this.#context.select(valid)
    }
  }

  onUseCandidate(pair: CandidatePair): void {
    if (this.#closed) return
    // RFC 8445 §7.3.1.5: Succeeded → nominate the valid pair it produced; otherwise
    // nominate it when its check succeeds.
    if (pair.state === 'succeeded') {
      const valid = pair.validPair ?? pair
      valid.nominated = true
      this.#context.select(valid)
    } else {
      pair.nominateOnSuccess = true
    }
  }

  onChecklistChanged(): void {}

  onNominationFailed(): void {}

  close(): void {
    this.#closed = true
  }
}

/** The strategy for a role. */
export function createNomination(role: IceRole, context: NominationContext, options: ControllingNominationOptions = {}): NominationStrategy {
  return role === 'controlling' ? new ControllingNomination(context, options) : new ControlledNomination(context)
}
