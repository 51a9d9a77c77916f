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

/** Options of {@link ControllingNomination} and {@link ControlledNomination}. */
export interface ControllingNominationOptions {
  /**
   * Milliseconds to wait, after the first pair became valid, for higher-priority pairs
   * still being checked before nominating the best valid pair. A valid pair with no
   * pending pair above it is nominated at once; so is one whose higher-priority pairs
   * are all in progress with a check unanswered for longer than
   * {@link STALE_CHECK_RTT_FACTOR} × the valid pair's round trip (+1 ms) — they had more
   * time than the valid pair needed and did not answer — or go to host candidates of
   * another private network (`Checklist.isUnlikelyPair`), which almost never answer.
   * @default 50
   */
  nominationDelay?: number
  /**
   * Controlled side: select a pair as soon as its USE-CANDIDATE check arrives, even if
   * our own check of it has not succeeded yet. RFC 8445 §7.3.1.5 waits for that check;
   * but a controlling agent (regular nomination) only nominates a pair it validated —
   * its request crossed the path and our response came back — so the nomination itself
   * proves the pair both ways. Not waiting saves a round trip plus pacing, and means we
   * are listening on the pair before the peer's first data arrives on it.
   * @default false
   */
  selectOnNomination?: boolean
  /**
   * Controlling side: a pair through a relay (a relayed candidate on either side) is not
   * nominated before this time (`performance.now()` clock, or a function giving it), so
   * a direct pair still being checked gets the chance to succeed first. 0 nominates relay
   * pairs like any other.
   * @default 0
   */
  relayNotBefore?: number | (() => number)
}

/** Whether a pair goes through a TURN relay (a relayed candidate on either side). */
export function isRelayPair(pair: CandidatePair): boolean {
  return pair.local.type === 'relay' || pair.remote.type === 'relay'
}

/**
 * A higher-priority pair in progress is not waited for once its check has been
 * unanswered for longer than this many times the best valid pair's round trip, plus 1 ms.
 */
export const STALE_CHECK_RTT_FACTOR = 1.5

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
  readonly #relayNotBefore: number | (() => number)
  #timer: ReturnType<typeof setTimeout> | undefined
  #nominating: CandidatePair | undefined
  #deadlineAt: number | undefined
  readonly #failed = new Set<CandidatePair>()
  #closed = false

  constructor(context: NominationContext, options: ControllingNominationOptions = {}) {
    this.#context = context
    this.#delay = options.nominationDelay ?? 50
    this.#relayNotBefore = options.relayNotBefore ?? 0
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

  /**
   * When every pending pair above `best` will be stale (see {@link STALE_CHECK_RTT_FACTOR}):
   * `Infinity` if one has no check in flight yet (or `best` has no RTT), a past time if
   * they all are stale now.
   */
  #freshPendingUntil(best: CandidatePair): number {
    if (best.rttMs === undefined) return Infinity
    const patience = STALE_CHECK_RTT_FACTOR * best.rttMs + 1
    let until = -Infinity
    for (const pair of this.#context.checklist.pairs) {
      if (pair.priority <= best.priority) break
      if (this.#context.checklist.isUnlikelyPair(pair)) continue
      if (pair.state === 'frozen' || pair.state === 'waiting') return Infinity
      if (pair.state !== 'in-progress') continue
      if (pair.lastCheckAt === undefined) return Infinity
      until = Math.max(until, pair.lastCheckAt + patience)
    }
    return until
  }

  /** Nominates now if nothing better is worth waiting for, else (re)arms the timer. */
  #consider(): void {
    if (this.#nominating !== undefined || this.#context.checklist.validPairs.length === 0) return
    // The deadline runs from the first valid pair.
    this.#deadlineAt ??= performance.now() + this.#delay
    this.#decide()
    if (this.#nominating !== undefined || this.#closed) return
    // Wake at the deadline, or sooner when the checks still pending above become stale.
    const best = this.#context.checklist.validPairs.find((p) => !this.#failed.has(p))
    const wakeAt = Math.min(this.#deadlineAt, best === undefined ? Infinity : Math.max(this.#freshPendingUntil(best), performance.now()))
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#closed || this.#nominating !== undefined) return
      if (performance.now() >= (this.#deadlineAt ?? 0)) this.#decide(true)
      else this.#consider()
    }, Math.max(1, wakeAt - performance.now()))
  }

  #decide(deadlinePassed = false): void {
    const best = this.#context.checklist.validPairs.find((p) => !this.#failed.has(p))
    if (best === undefined) return
    if (!deadlinePassed && this.#context.checklist.hasPendingAbove(best.priority) && this.#freshPendingUntil(best) > performance.now()) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    // Direct pairs first: a relay pair waits for the relay deadline (docs/relay-path.md).
    const notBefore = typeof this.#relayNotBefore === 'function' ? this.#relayNotBefore() : this.#relayNotBefore
    const relayWait = isRelayPair(best) ? notBefore - performance.now() : 0
    if (relayWait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        if (!this.#closed && this.#nominating === undefined) this.#decide(true)
      }, Math.ceil(relayWait))
      return
    }
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
  readonly #selectOnNomination: boolean
  #closed = false

  constructor(context: NominationContext, options: Pick<ControllingNominationOptions, 'selectOnNomination'> = {}) {
    this.#context = context
    this.#selectOnNomination = options.selectOnNomination === true
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
    } else if (this.#selectOnNomination) {
      pair.nominated = true
      this.#context.select(pair)
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
  return role === 'controlling' ? new ControllingNomination(context, options) : new ControlledNomination(context, options)
}
