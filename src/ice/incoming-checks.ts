/**
 * What the agent does with a valid check from the peer once it has answered it (RFC 8445
 * §7.3.1): learns a peer-reflexive remote candidate, queues a triggered check, follows
 * USE-CANDIDATE on the controlled side — or, while connected, reports the check for
 * renomination. Checks that arrive before the peer's credentials (or before a local
 * candidate of their address family) are held and acted on when those come.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { CandidatePair } from './candidate-pair.js'
import { ipFamily } from './canonical-address.js'
import type { CheckPacer } from './check-pacer.js'
import type { CheckSender } from './check-sender.js'
import type { Checklist } from './checklist.js'
import type { IncomingCheck } from './connectivity-check.js'
import type { IceAgentState, IceSelection } from './ice-agent-options.js'
import type { IceCredentials } from './ice-credentials.js'
import type { IceRole } from './ice-role.js'
import type { NominationStrategy } from './nomination.js'
import type { RelayRoutes } from './relay-routes.js'

/** Checks held until they can be acted on, at most. */
const MAX_DEFERRED_CHECKS = 32

/** Where a check came from. */
interface CheckSource {
  address: string
  port: number
}

/** What {@link IncomingChecks} needs of its agent. @internal */
export interface IncomingChecksContext {
  checklist: Checklist
  relays: RelayRoutes
  sender: CheckSender
  pacer: CheckPacer
  state(): IceAgentState
  selection(): IceSelection | undefined
  /** The peer's credentials, once signalled. */
  remote(): IceCredentials | undefined
  role(): IceRole
  nomination(): NominationStrategy
  /** A valid check on `pair` arrived while connected. */
  onCheckWhileConnected(pair: CandidatePair, useCandidate: boolean): void
}

/**
 * The agent's handling of the peer's checks, and the queue of those that must wait.
 *
 * @internal (used by `IceAgent`)
 */
export class IncomingChecks {
  readonly #ctx: IncomingChecksContext
  readonly #deferred: { check: IncomingCheck; source: CheckSource; relayKey: string | undefined }[] = []

  constructor(ctx: IncomingChecksContext) {
    this.#ctx = ctx
  }

  /** Acts on an accepted check now, or holds it until it can be acted on. */
  accept(check: IncomingCheck, source: CheckSource, relayKey: string | undefined): void {
    if (!this.#process(check, source, relayKey) && this.#deferred.length < MAX_DEFERRED_CHECKS) {
      // RFC 8445 §7.3: a check can arrive before the peer's credentials (or before our
      // own candidates): answer it now, act on it when they are here.
      this.#deferred.push({ check, source, relayKey })
    }
  }

  /** Acts on the held checks that can be acted on now. */
  processDeferred(): void {
    const deferred = this.#deferred.splice(0)
    for (const { check, source, relayKey } of deferred) {
      if (!this.#process(check, source, relayKey)) this.#deferred.push({ check, source, relayKey })
    }
  }

  /** Drops the held checks. */
  clear(): void {
    this.#deferred.length = 0
  }

  /** Acts on a valid check (learning, triggered check, nomination); false if it must wait. */
  #process(check: IncomingCheck, source: CheckSource, relayKey: string | undefined): boolean {
    const ctx = this.#ctx
    const state = ctx.state()
    const remoteCredentials = ctx.remote()
    if (state === 'failed' || state === 'closed') return true
    if (ctx.selection() !== undefined && state !== 'connected') return true
    if (remoteCredentials === undefined) return false
    if (check.remoteUfrag !== remoteCredentials.ufrag) return true
    if (ctx.checklist.localCandidates.every((c) => ipFamily(c.address) !== ipFamily(source.address))) return false
    let remote = ctx.checklist.findRemote(source.address, source.port)
    if (remote === undefined) {
      // RFC 8445 §7.3.1.3: a peer-reflexive remote candidate, with the PRIORITY of the check.
      remote = {
        foundation: randomBytes(5).toString('hex'),
        component: 1,
        transport: 'udp',
        priority: check.priority,
        address: source.address,
        port: source.port,
        type: 'prflx',
      }
      ctx.checklist.addRemoteCandidate(remote)
    }
    // A check that came through a relay is for the relayed candidate (its own base).
    const local = relayKey === undefined ? ctx.checklist.localFor(remote) : ctx.relays.candidate(relayKey)
    if (local === undefined) return true
    // RFC 8445 §7.3.1.4: triggered check.
    const pair = ctx.checklist.pairForTriggeredCheck(local, remote)
    if (ctx.selection() !== undefined) {
      ctx.onCheckWhileConnected(pair, check.useCandidate)
      return true
    }
    let triggered = false
    if (pair.state === 'in-progress') {
      triggered = ctx.sender.retrigger(pair)
    } else if (pair.state !== 'succeeded') {
      ctx.checklist.enqueueTriggered(pair)
      triggered = true
    }
    // RFC 8445 §7.3.1.5: USE-CANDIDATE (the controlled side acts on it).
    if (check.useCandidate && ctx.role() === 'controlled') ctx.nomination().onUseCandidate(pair)
    // The controlling side needs its check answered before it can nominate: re-check at
    // once. The controlled side's triggered check only races the nomination (which
    // selects the pair without it) and costs the controlling side an answer: paced.
    if (triggered && ctx.role() === 'controlling') ctx.pacer.kickNow()
    else ctx.pacer.kick()
    return true
  }
}
