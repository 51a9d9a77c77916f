/**
 * The agent's outgoing connectivity checks (RFC 8445 §7.2.4–§7.2.5): sends a check on a
 * pair, keeps it in flight until its answer, and acts on the answer — a valid pair
 * (possibly with a new peer-reflexive local candidate), a failed pair, or a role
 * conflict (switch roles and retry the pair as a triggered check). Also cancels and
 * re-sends an outstanding check when the peer's own check on the pair arrives (the
 * triggered check of RFC 8445 §7.3.1.4).
 *
 * @module
 */
import { AbortError, SocketClosedError, StunMalformedError, StunTimeoutError } from '../errors.js'
import type { StunTransactionManager, StunResponse } from '../stun/transaction.js'
import { createLocalCandidate } from './candidate.js'
import type { CandidatePair } from './candidate-pair.js'
import { candidatePriority } from './candidate-priority.js'
import type { Checklist } from './checklist.js'
import { checkIntegrityKey, createCheckRequest, interpretCheckResponse } from './connectivity-check.js'
import type { IceCredentials } from './ice-credentials.js'
import type { IceRole } from './ice-role.js'
import type { NominationStrategy } from './nomination.js'
import type { RelayRoutes } from './relay-routes.js'

/** Retransmission of a check unless `IceAgentOptions.checkRetransmit` says otherwise. */
const DEFAULT_CHECK_RETRANSMIT = { rto: 500, rc: 5, rm: 4 }

interface InFlight {
  controller: AbortController
  startedAt: number
  nominating: boolean
}

/** What a {@link CheckSender} needs of its agent. @internal */
export interface CheckSenderContext {
  checklist: Checklist
  transactions: StunTransactionManager
  relays: RelayRoutes
  /** The address to write to the socket (IPv4-mapped on a dual-stack socket). */
  wireHost: (address: string) => string
  /** `IceAgentOptions.checkRetransmit`. */
  retransmit: Partial<{ rto: number; rc: number; rm: number }> | undefined
  /** Ta, ms (`IceAgentOptions.ta`). */
  ta: number
  local: IceCredentials
  tieBreaker: bigint
  /** The peer's credentials (set before any check is sent). */
  remote(): IceCredentials | undefined
  role(): IceRole
  nomination(): NominationStrategy
  /** Whether the agent is closed or failed. */
  ended(): boolean
  /** A check is being sent (the agent enters `checking` if not there yet). */
  checking(): void
  /** Lets the pacer send the next check. */
  kick(): void
  switchRole(): void
  checkForFailure(): void
}

/**
 * The checks an agent has in flight, and what it does with their answers.
 *
 * @internal (used by `IceAgent`)
 */
export class CheckSender {
  readonly #ctx: CheckSenderContext
  readonly #retransmit: { rto: number; rc: number; rm: number }
  readonly #inFlight = new Map<CandidatePair, InFlight>()
  /** Pairs whose check was cancelled and re-sent while younger than Ta (once per pair). */
  readonly #retriggeredYoung = new WeakSet<CandidatePair>()

  constructor(ctx: CheckSenderContext) {
    this.#ctx = ctx
    this.#retransmit = { ...DEFAULT_CHECK_RETRANSMIT, ...ctx.retransmit }
  }

  /** Checks in flight. */
  get size(): number {
    return this.#inFlight.size
  }

  /** Sends a check on `pair`; with USE-CANDIDATE when `nominating`. */
  start(pair: CandidatePair, nominating: boolean): void {
    const ctx = this.#ctx
    const remote = ctx.remote() as IceCredentials
    if (!nominating) {
      pair.setState('in-progress')
      pair.lastCheckAt = performance.now()
    }
    ctx.checking()
    // RFC 8445 §7.1.1: PRIORITY is the priority a peer-reflexive candidate would get.
    const prflxPriority = candidatePriority('prflx', pair.local.localPreference)
    const request = createCheckRequest({
      local: ctx.local,
      remote,
      priority: prflxPriority,
      role: ctx.role(),
      tieBreaker: ctx.tieBreaker,
      useCandidate: nominating,
    })
    const roleAtSend = ctx.role()
    const controller = new AbortController()
    const flight: InFlight = { controller, startedAt: performance.now(), nominating }
    this.#inFlight.set(pair, flight)
    pair.checksSent++
    ctx.relays
      .request(ctx.transactions, request, pair, ctx.wireHost, {
        integrityKey: checkIntegrityKey(remote),
        fingerprint: true,
        acceptErrorResponse: true,
        signal: controller.signal,
        ...this.#retransmit,
      })
      .then(
        (response) => this.#onResponse(pair, flight, response, roleAtSend, prflxPriority),
        (err: unknown) => this.#onError(pair, flight, err),
      )
  }

  /**
   * The peer's check arrived on `pair`, whose own check is in progress: cancels it and
   * queues the pair as a triggered check. Returns whether it did.
   */
  retrigger(pair: CandidatePair): boolean {
    const flight = this.#inFlight.get(pair)
    // Cancel a check outstanding for longer than Ta and check again at once (its
    // retransmissions may be minutes apart; the peer's check just opened the path).
    // A younger one may have been dropped by the peer's NAT just before the peer's own
    // check opened it (the hole punch): re-send it too, but only once per pair, or two
    // agents re-sending on each other's checks could cancel every answer forever.
    const young = flight !== undefined && performance.now() - flight.startedAt < this.#ctx.ta
    if (flight === undefined || flight.nominating || (young && this.#retriggeredYoung.has(pair))) return false
    if (young) this.#retriggeredYoung.add(pair)
    flight.controller.abort()
    this.#inFlight.delete(pair)
    pair.setState('waiting')
    this.#ctx.checklist.enqueueTriggered(pair)
    return true
  }

  /**
   * One consent check on the selected `pair` (RFC 7675 §5.1): resolves with its round
   * trip, ms; rejects without a success answer within `interval` ms.
   */
  async consentCheck(pair: CandidatePair, signal: AbortSignal, interval: number): Promise<number> {
    const ctx = this.#ctx
    const remote = ctx.remote() as IceCredentials
    const request = createCheckRequest({ local: ctx.local, remote, priority: candidatePriority('prflx', pair.local.localPreference), role: ctx.role(), tieBreaker: ctx.tieBreaker })
    const response = await ctx.relays.request(ctx.transactions, request, pair, ctx.wireHost, {
      integrityKey: checkIntegrityKey(remote),
      fingerprint: true,
      signal,
      rto: interval,
      rc: 1,
      rm: 1,
    })
    const outcome = interpretCheckResponse(response, pair.remote)
    if (outcome.kind !== 'success') throw new StunMalformedError(`consent check: ${outcome.kind}`)
    return response.rtt
  }

  /** Cancels every check in flight. */
  stop(): void {
    for (const flight of this.#inFlight.values()) flight.controller.abort()
    this.#inFlight.clear()
  }

  #onResponse(pair: CandidatePair, flight: InFlight, response: StunResponse, roleAtSend: IceRole, prflxPriority: number): void {
    const ctx = this.#ctx
    if (this.#inFlight.get(pair) === flight) this.#inFlight.delete(pair)
    if (ctx.ended() || flight.controller.signal.aborted) return
    const outcome = interpretCheckResponse(response, pair.remote)
    if (outcome.kind === 'role-conflict') {
      // RFC 8445 §7.2.5.1: switch to the role opposite the one the request claimed (if
      // not already done) and retry the pair as a triggered check.
      if (ctx.role() === roleAtSend) ctx.switchRole()
      if (pair.state === 'in-progress') pair.setState('waiting')
      if (pair.state === 'waiting') ctx.checklist.enqueueTriggered(pair)
      if (flight.nominating) ctx.nomination().onNominationFailed(pair)
      ctx.kick()
      return
    }
    if (outcome.kind === 'failure') {
      this.#pairFailed(pair, flight, outcome.reason)
      return
    }
    pair.rttMs = response.rtt
    // RFC 8445 §7.2.5.3.1: the local candidate is the one whose address is the mapped
    // address, or a new peer-reflexive one with the PRIORITY the request carried.
    let local = ctx.checklist.findLocal(outcome.mapped.address, outcome.mapped.port)
    if (local === undefined) {
      local = createLocalCandidate({
        type: 'prflx',
        address: outcome.mapped.address,
        port: outcome.mapped.port,
        base: pair.local.base,
        localPreference: pair.local.localPreference,
        priority: prflxPriority,
      })
      ctx.checklist.addLocalCandidate(local)
    }
    if (pair.state === 'in-progress') pair.setState('succeeded')
    const valid = ctx.checklist.addValidPair(pair, local)
    // RFC 8445 §7.2.5.3.3: unfreeze the pairs of the same foundation.
    ctx.checklist.unfreezeFoundation(pair.foundation)
    ctx.kick()
    ctx.nomination().onValidPair(valid, pair, flight.nominating)
  }

  #onError(pair: CandidatePair, flight: InFlight, err: unknown): void {
    if (this.#inFlight.get(pair) === flight) this.#inFlight.delete(pair)
    if (err instanceof AbortError || this.#ctx.ended()) return
    const reason =
      err instanceof StunTimeoutError ? 'timeout' : err instanceof StunMalformedError ? 'malformed response' : err instanceof SocketClosedError ? 'socket closed' : 'error'
    this.#pairFailed(pair, flight, reason)
  }

  #pairFailed(pair: CandidatePair, flight: InFlight, reason: string): void {
    const ctx = this.#ctx
    if (pair.state === 'in-progress') pair.setState('failed', reason)
    else pair.failureReason ??= reason
    if (flight.nominating) ctx.nomination().onNominationFailed(pair)
    ctx.nomination().onChecklistChanged()
    ctx.kick()
    ctx.checkForFailure()
  }
}
