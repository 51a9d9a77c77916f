/**
 * The ICE agent (RFC 8445 with trickle, RFC 8838, and consent freshness, RFC 7675) on
 * the peer's one UDP socket: gathers and trickles local candidates, pairs them with the
 * remote ones as they arrive, runs paced connectivity checks with triggered checks and
 * role-conflict repair, nominates (controlling) or follows the nomination (controlled),
 * then keeps the selected pair alive with consent checks.
 *
 * The agent never closes the socket and leaves udx stream packets alone: once a pair is
 * selected, open the stream to `selection.remote` on the same socket.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { AbortError, IceFailedError, InvalidArgumentError, SocketClosedError } from '../errors.js'
import { isStunMessage } from '../stun/classify.js'
import type { DatagramEndpoint, DatagramSource } from '../stun/datagram-endpoint.js'
import { createStunRequest, decodeStunMessage, encodeStunMessage, getAttribute, type DecodedStunMessage } from '../stun/message.js'
import { StunTransactionManager } from '../stun/transaction.js'
import { peerSocketEndpoint } from '../transport/peer-socket-endpoint.js'
import type { IceCandidate, LocalCandidate } from './candidate.js'
import { parseCandidate, formatCandidate } from './candidate-codec.js'
import { CandidateGatherer } from './candidate-gatherer.js'
import type { CandidatePair } from './candidate-pair.js'
import { canonicalHost, ipFamily } from './canonical-address.js'
import { CheckPacer } from './check-pacer.js'
import { CheckSender } from './check-sender.js'
import { Checklist } from './checklist.js'
import { ConsentFreshness } from './consent-freshness.js'
import { answerCheckRequest, checkIntegrityKey, createCheckRequest } from './connectivity-check.js'
import { checkIceAgentOptions, type IceAgentEvents, type IceAgentOptions, type IceAgentState, type IceConnectOptions, type IceSelection } from './ice-agent-options.js'
import { checkIceCredentials, generateIceCredentials, parseIceCredentials, type IceCredentials } from './ice-credentials.js'
import { oppositeRole, randomTieBreaker, type IceRole } from './ice-role.js'
import { IncomingChecks } from './incoming-checks.js'
import { createNomination, type NominationStrategy } from './nomination.js'
import { RelayRoutes, type IceRelay } from './relay-routes.js'
import { probePair, type ProbeOptions } from './renomination.js'
import { waitForSelection, type SelectionWaiter } from './selection-waiter.js'

/**
 * One ICE session on one socket.
 *
 * @example
 * ```ts
 * const agent = new IceAgent({ socket, role: 'controlling', stunServers })
 * agent.on('candidate', (c) => beacon.signal('candidate', formatCandidate(c)))
 * agent.on('end-of-candidates', () => beacon.signal('candidate', END_OF_CANDIDATES))
 * // …when the answer arrives: agent.setRemoteCredentials(creds); agent.addRemoteCandidate(line) …
 * const { remote } = await agent.connect({ signal, timeout: 10_000 })
 * const conn = await openSecureConnection({ socket, remote: { host: remote.address, port: remote.port }, … })
 * ```
 */
export class IceAgent extends EventEmitter<IceAgentEvents> {
  readonly #endpoint: DatagramEndpoint
  readonly #local: IceCredentials
  #remote: IceCredentials | undefined
  #role: IceRole
  readonly #tieBreaker: bigint
  readonly #checklist: Checklist
  readonly #gatherer: CandidateGatherer
  readonly #transactions: StunTransactionManager
  readonly #pacer: CheckPacer
  #nomination: NominationStrategy
  readonly #options: IceAgentOptions
  readonly #sender: CheckSender
  readonly #incoming: IncomingChecks
  readonly #relays = new RelayRoutes((data, from, key) => this.#onDatagram(data, from, key))
  readonly #createdAt = performance.now()
  #relayDelay: number
  readonly #unsubscribe: () => void
  readonly #dualStack: boolean
  #consent: ConsentFreshness | undefined
  #state: IceAgentState = 'new'
  #selection: IceSelection | undefined
  #gathering: Promise<void> | undefined
  #gatheringDone = false
  #remoteEnded = false
  #failure: IceFailedError | undefined
  readonly #waiters = new Set<SelectionWaiter>()
  readonly #onAbort = (): void => this.close()

  constructor(options: IceAgentOptions) {
    super()
    checkIceAgentOptions(options)
    this.#options = options
    this.#endpoint = options.endpoint ?? peerSocketEndpoint(options.socket as NonNullable<IceAgentOptions['socket']>)
    const bound = this.#endpoint.localAddress?.()
    if (bound === undefined) throw new InvalidArgumentError('The endpoint must report its local address')
    this.#dualStack = ipFamily(bound.host) === 'IPv6'
    this.#local = options.localCredentials === undefined ? generateIceCredentials() : checkIceCredentials(options.localCredentials, 'localCredentials')
    if (options.remoteCredentials !== undefined) this.#remote = checkIceCredentials(options.remoteCredentials, 'remoteCredentials')
    this.#role = options.role
    this.#tieBreaker = options.tieBreaker ?? randomTieBreaker()
    this.#relayDelay = options.relayDelay ?? 0
    this.#checklist = new Checklist({
      role: this.#role,
      ...(options.maxPairs === undefined ? {} : { maxPairs: options.maxPairs }),
      onPairStateChange: (pair, from) => this.emit('pair-state', pair, from),
    })
    this.#gatherer = new CandidateGatherer({ endpoint: this.#endpoint, stunServers: options.stunServers ?? [], ...options.gather })
    this.#gatherer.on('candidate', (candidate) => this.#onLocalCandidate(candidate))
    this.#transactions = new StunTransactionManager({
      send: (data, port, host) => {
        const key = this.#relays.routeOf(data)
        if (key === undefined || !this.#relays.send(key, data, port, host)) this.#endpoint.send(data, port, host)
      },
    })
    this.#pacer = new CheckPacer(options.ta ?? 50, () => this.#sendNextCheck())
    this.#sender = new CheckSender({
      checklist: this.#checklist,
      transactions: this.#transactions,
      relays: this.#relays,
      wireHost: this.#wireHost,
      retransmit: options.checkRetransmit,
      ta: options.ta ?? 50,
      local: this.#local,
      tieBreaker: this.#tieBreaker,
      remote: () => this.#remote,
      role: () => this.#role,
      nomination: () => this.#nomination,
      ended: () => this.#state === 'closed' || this.#state === 'failed',
      checking: () => {
        if (this.#state === 'new' || this.#state === 'gathering') this.#setState('checking')
      },
      kick: () => this.#pacer.kick(),
      switchRole: () => this.#switchRole(),
      checkForFailure: () => this.#checkForFailure(),
    })
    this.#incoming = new IncomingChecks({
      checklist: this.#checklist,
      relays: this.#relays,
      sender: this.#sender,
      pacer: this.#pacer,
      state: () => this.#state,
      selection: () => this.#selection,
      remote: () => this.#remote,
      role: () => this.#role,
      nomination: () => this.#nomination,
      onCheckWhileConnected: (pair, useCandidate) => this.#onCheckWhileConnected(pair, useCandidate),
    })
    this.#nomination = this.#createNomination()
    this.#unsubscribe = this.#endpoint.onMessage((data, from) => this.#onDatagram(data, from))
    if (options.signal?.aborted === true) queueMicrotask(this.#onAbort)
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Our credentials: signal them to the peer. */
  get localCredentials(): IceCredentials {
    return { ...this.#local }
  }

  /** Our current role (a role conflict may have changed it). */
  get role(): IceRole {
    return this.#role
  }

  /** The agent's state. */
  get state(): IceAgentState {
    return this.#state
  }

  /** Local candidates so far (gathered and peer-reflexive). */
  get localCandidates(): readonly LocalCandidate[] {
    return this.#checklist.localCandidates
  }

  /** Remote candidates so far (signalled and peer-reflexive). */
  get remoteCandidates(): readonly IceCandidate[] {
    return this.#checklist.remoteCandidates
  }

  /** The checklist's pairs, highest priority first. */
  get pairs(): readonly CandidatePair[] {
    return this.#checklist.pairs
  }

  /** The valid pairs, highest priority first. */
  get validPairs(): readonly CandidatePair[] {
    return this.#checklist.validPairs
  }

  /** The selected pair, once there is one. */
  get selection(): IceSelection | undefined {
    return this.#selection
  }

  /**
   * Gathers local candidates, emitting `candidate` for each and then
   * `end-of-candidates`. Checks start as soon as there are pairs; they do not wait for
   * gathering to end. Idempotent. Rejects with `AbortError` if `signal` aborts.
   */
  gather(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new SocketClosedError('The ICE agent is closed'))
    if (this.#gathering === undefined) {
      if (this.#state === 'new') this.#setState('gathering')
      this.#gathering = this.#gatherer.gather(options).then(() => {
        this.#gatheringDone = true
        if (this.#state !== 'closed') this.emit('end-of-candidates')
        this.#checkForFailure()
      })
    }
    return this.#gathering
  }

  /**
   * Sets the peer's credentials (from its offer or answer).
   *
   * @throws IceSignalInvalidError if they are malformed.
   */
  setRemoteCredentials(credentials: IceCredentials): void {
    const parsed = parseIceCredentials(credentials)
    if (this.#remote !== undefined && (this.#remote.ufrag !== parsed.ufrag || this.#remote.pwd !== parsed.pwd)) {
      throw new InvalidArgumentError('Remote credentials are already set (ICE restarts are not supported)')
    }
    this.#remote = parsed
    this.#incoming.processDeferred()
    this.#pacer.kick()
  }

  /**
   * Adds a trickled remote candidate: an RFC 8839 `candidate:` line or a candidate object.
   * Non-UDP, FQDN and other-component candidates are refused.
   *
   * @throws IceSignalInvalidError for a malformed line; InvalidArgumentError for a malformed object.
   */
  addRemoteCandidate(candidate: IceCandidate | string): void {
    const parsed = typeof candidate === 'string' ? parseCandidate(candidate) : parseCandidate(formatCandidate(candidate))
    // After selection the pairs are still formed (not checked): path recovery may use them.
    if (this.#state === 'closed' || this.#state === 'failed') return
    if (parsed.component !== 1) return
    const added = this.#checklist.addRemoteCandidate(parsed)
    // RFC 8656 §9: the relays must permit the peer before checks from or to it pass.
    if (added.length > 0) this.#relays.permit(parsed)
    if (added.length > 0) this.#pacer.kick()
  }

  /**
   * Adds a relay (a TURN allocation, see `TurnRelayEndpoint`) as a relayed local
   * candidate: it is emitted as a `candidate` (trickle it), paired, and checked through
   * the relay; permissions for every remote candidate's IP are installed on it. Returns
   * the candidate, or `undefined` if that relayed address is known or the agent is done.
   *
   * @throws InvalidArgumentError when the relay reports no relayed address.
   */
  addRelay(relay: IceRelay): LocalCandidate | undefined {
    if (this.#state === 'closed' || this.#state === 'failed') return undefined
    const candidate = this.#relays.add(relay)
    if (candidate === undefined) return undefined
    for (const remote of this.#checklist.remoteCandidates) relay.permit(remote.address)
    this.#onLocalCandidate(candidate)
    return candidate
  }

  /**
   * Lets relay pairs be nominated from now on (the caller learnt that UDP is blocked, or
   * no direct pair can work): the rest of `relayDelay` is not waited for.
   */
  nominateRelaysNow(): void {
    this.#relayDelay = 0
    this.#nomination.onChecklistChanged()
  }

  /** The peer signalled end-of-candidates (RFC 8838 §13): failure can now be decided. */
  endOfRemoteCandidates(): void {
    this.#remoteEnded = true
    this.#checkForFailure()
  }

  /**
   * Resolves with the selected pair, or rejects with `IceFailedError` (every pair failed
   * after both sides' end-of-candidates, or `timeout`), `AbortError` (aborting closes the
   * agent) or `SocketClosedError` if the agent is closed. Starts gathering if not started.
   */
  connect(options: IceConnectOptions = {}): Promise<IceSelection> {
    const timeout = options.timeout ?? 30_000
    if (!(Number.isFinite(timeout) && timeout > 0)) throw new InvalidArgumentError('timeout must be a positive number')
    if (this.#selection !== undefined) return Promise.resolve(this.#selection)
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#state === 'closed') return Promise.reject(new SocketClosedError('The ICE agent is closed'))
    const { signal } = options
    if (signal?.aborted === true) {
      this.close()
      return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    }
    this.gather().catch(() => {}) // failures are reported through connect()
    return waitForSelection(this.#waiters, { timeout, signal, onTimeout: () => this.#fail('timeout'), onAbort: () => this.close() })
  }

  /**
   * Sends a Binding indication (RFC 8445 §11 keepalive) on the selected pair; no-op
   * without one. Consent checks already keep NAT bindings open; this is for callers that
   * want an extra packet now.
   */
  sendKeepalive(): void {
    const selection = this.#selection
    if (selection === undefined || this.#state !== 'connected') return
    const indication = encodeStunMessage({ ...createStunRequest('binding'), class: 'indication' }, { fingerprint: true })
    this.#send(indication, selection.remote, this.#relays.keyOf(selection.local))
  }

  /**
   * Stops every timer, check and gathering request, removes the agent's listener from the
   * socket (the socket stays open: it belongs to the caller) and rejects a pending
   * `connect()` with `SocketClosedError`. Idempotent.
   */
  close(): void {
    if (this.#state === 'closed') return
    this.#stopChecks()
    this.#consent?.stop()
    this.#gatherer.close()
    this.#transactions.close()
    this.#unsubscribe()
    this.#relays.close()
    this.#options.signal?.removeEventListener('abort', this.#onAbort)
    this.#incoming.clear()
    this.#setState('closed')
    for (const waiter of [...this.#waiters]) waiter.reject(new SocketClosedError('The ICE agent was closed'))
  }

  // ------------------------------------------------------------------ candidates

  #onLocalCandidate(candidate: LocalCandidate): void {
    if (this.#state === 'closed') return
    this.emit('candidate', candidate)
    const added = this.#checklist.addLocalCandidate(candidate)
    this.#incoming.processDeferred()
    if (added.length > 0) this.#pacer.kick()
  }

  // ------------------------------------------------------------------ sending checks

  #sendNextCheck(): boolean {
    if (this.#remote === undefined || this.#selection !== undefined || this.#state === 'closed' || this.#state === 'failed') return false
    const pair = this.#checklist.next()
    if (pair === undefined) {
      this.#checkForFailure()
      return false
    }
    this.#sender.start(pair, false)
    return true
  }

  // ------------------------------------------------------------------ answering checks

  #onDatagram(data: Uint8Array, from: DatagramSource, relayKey?: string): void {
    if (this.#state === 'closed' || !isStunMessage(data)) return
    let message: DecodedStunMessage
    try {
      message = decodeStunMessage(data)
    } catch {
      return // RFC 8489 §6.3: malformed messages are discarded silently
    }
    if (message.class === 'success' || message.class === 'error') {
      this.#transactions.handleResponse(message, from)
      return
    }
    if (message.class !== 'request') return
    // The peer's one socket carries an agent per connection and attempt: a check for
    // another agent's ufrag is that agent's to answer, not ours to refuse with a 401
    // (which would fail the other session's check or consent, RFC 7675 §5.1).
    const username = getAttribute(message, 'username')?.value
    if (username !== undefined && username.includes(':') && username.slice(0, username.indexOf(':')) !== this.#local.ufrag) return
    const source = { address: canonicalHost(from.host) ?? from.host, port: from.port }
    const answer = answerCheckRequest(message, source, this.#local, this.#role, this.#tieBreaker)
    if (answer.kind === 'ignore') return
    if (answer.kind === 'accept' && answer.switchRole) this.#switchRole() // RFC 8445 §7.3.1.1
    // Act on the check before answering it: a nomination selects the pair first, so a
    // 'selected' listener is set up on the path (a udx stream listening) before the
    // answer lets the controlling peer select and send its first packet on it.
    if (answer.kind === 'accept') this.#incoming.accept(answer.check, source, relayKey)
    this.#send(answer.response, source, relayKey)
  }

  // ------------------------------------------------------------------ roles, nomination, selection

  #createNomination(): NominationStrategy {
    return createNomination(
      this.#role,
      {
        checklist: this.#checklist,
        sendNomination: (pair) => this.#sender.start(pair, true),
        select: (pair) => this.#select(pair),
      },
      {
        ...(this.#options.nominationDelay === undefined ? {} : { nominationDelay: this.#options.nominationDelay }),
        selectOnNomination: this.#options.selectOnNomination === true,
        relayNotBefore: () => this.#createdAt + this.#relayDelay,
      },
    )
  }

  #switchRole(): void {
    this.#role = oppositeRole(this.#role)
    this.#checklist.setRole(this.#role)
    this.#nomination.close()
    this.#nomination = this.#createNomination()
    this.emit('role-change', this.#role)
    this.#nomination.onChecklistChanged()
  }

  #select(pair: CandidatePair): void {
    if (this.#selection !== undefined || this.#state === 'closed' || this.#state === 'failed') return
    const selection: IceSelection = { local: pair.local, remote: pair.remote, pair, rttMs: pair.rttMs }
    this.#selection = selection
    this.#stopChecks()
    this.#startConsent(selection)
    this.#setState('connected')
    this.emit('selected', selection)
    for (const waiter of [...this.#waiters]) waiter.resolve(selection)
  }

  #startConsent(selection: IceSelection): void {
    const { pair } = selection
    this.#consent?.stop()
    this.#consent = new ConsentFreshness({
      check: (signal) => this.#sender.consentCheck(pair, signal, this.#options.consentInterval ?? 5000),
      onLost: ({ sinceLastResponseMs }) => {
        this.emit('consent-lost', { selection, sinceLastResponseMs })
        this.#fail('consent-lost')
      },
      onResponse: (rtt) => {
        pair.rttMs = rtt
      },
      ...(this.#options.consentInterval === undefined ? {} : { interval: this.#options.consentInterval }),
      ...(this.#options.consentTimeout === undefined ? {} : { timeout: this.#options.consentTimeout }),
    })
    this.#consent.start()
  }

  // ------------------------------------------------------------------ after selection (path recovery)

  /**
   * Sends one connectivity check on `pair` while connected (path recovery, see
   * `src/ice/renomination.ts`), with USE-CANDIDATE when `nominate` (controlling side
   * only). Resolves with the valid pair the check produced (RFC 8445 §7.2.5.3), rejects
   * when it gets no answer (`StunTimeoutError`), a failure or the agent is not connected.
   * The selection does not change: see {@link IceAgent.reselect}.
   */
  probe(pair: CandidatePair, options: ProbeOptions = {}): Promise<CandidatePair> {
    if (this.#state !== 'connected' || this.#remote === undefined) return Promise.reject(new SocketClosedError('The ICE agent is not connected'))
    const remote = this.#remote
    return probePair(
      {
        checklist: this.#checklist,
        request: (request, target) => this.#relays.request(this.#transactions, request, target, this.#wireHost, {
            integrityKey: checkIntegrityKey(remote),
            fingerprint: true,
            acceptErrorResponse: true,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
            rto: options.rto ?? 250,
            rc: options.rc ?? 4,
            rm: 4,
          }),
        check: (useCandidate, priority) => createCheckRequest({ local: this.#local, remote, priority, role: this.#role, tieBreaker: this.#tieBreaker, useCandidate }),
        controlling: this.#role === 'controlling',
      },
      pair,
      options,
    )
  }


  /**
   * Moves the selection to another pair while connected (renomination): consent checks
   * (RFC 7675) restart on it, and `reselected` is emitted. No-op for the selected pair.
   */
  reselect(pair: CandidatePair): void {
    const previous = this.#selection
    if (this.#state !== 'connected' || previous === undefined || previous.pair === pair) return
    pair.nominated = true
    const selection: IceSelection = { local: pair.local, remote: pair.remote, pair, rttMs: pair.rttMs }
    this.#selection = selection
    this.#startConsent(selection)
    this.emit('reselected', { selection, previous })
  }

  /**
   * A valid check arrived while connected: the controlled side follows a nomination of
   * another pair (renomination: the latest USE-CANDIDATE wins, as in
   * draft-thatcher-ice-renomination, without its NOMINATION counter).
   */
  #onCheckWhileConnected(pair: CandidatePair, useCandidate: boolean): void {
    const selected = this.#selection?.pair
    if (selected !== undefined && (pair === selected || pair.validPair === selected)) {
      return // RFC 7675 §5.1: only answers to our own checks refresh consent
    }
    this.emit('check-while-connected', pair)
    if (useCandidate && this.#role === 'controlled') this.reselect(pair.validPair ?? pair)
  }

  // ------------------------------------------------------------------ ending

  #checkForFailure(): void {
    if (this.#selection !== undefined || this.#state === 'closed' || this.#state === 'failed') return
    // RFC 8838 §8: failure only once both sides ended gathering and nothing is left to check.
    if (!this.#gatheringDone || !this.#remoteEnded || this.#remote === undefined) return
    if (this.#checklist.hasPendingChecks || this.#sender.size > 0 || this.#checklist.validPairs.length > 0) return
    // With no pair at all, the peer's checks may still reveal a peer-reflexive candidate:
    // only the connect() timeout ends such an attempt.
    if (this.#checklist.pairs.length === 0) return
    this.#fail('failed')
  }

  #fail(reason: 'failed' | 'timeout' | 'consent-lost'): void {
    if (this.#state === 'closed' || this.#state === 'failed') return
    if (reason !== 'consent-lost' && this.#selection !== undefined) return
    this.#stopChecks()
    this.#consent?.stop()
    if (reason !== 'consent-lost') this.#checklist.failPending(reason)
    const pairs = this.#checklist.outcomes()
    this.#failure = new IceFailedError(reason, pairs)
    this.#setState('failed')
    this.emit('failed', { reason, pairs })
    for (const waiter of [...this.#waiters]) waiter.reject(this.#failure)
  }

  #stopChecks(): void {
    this.#pacer.stop()
    this.#nomination.close()
    this.#sender.stop()
  }

  #setState(state: IceAgentState): void {
    if (this.#state === state) return
    this.#state = state
    this.emit('state', state)
  }

  #send(data: Uint8Array, to: { address: string; port: number }, relayKey?: string): void {
    if (relayKey !== undefined && this.#relays.send(relayKey, data, to.port, to.address)) return
    try {
      this.#endpoint.send(data, to.port, this.#wireHost(to.address))
    } catch {
      // A closed socket: the transactions report it; answers are best effort.
    }
  }

  /** IPv4 destinations on a dual-stack (IPv6) socket are written IPv4-mapped. */
  readonly #wireHost = (address: string): string => {
    return this.#dualStack && ipFamily(address) === 'IPv4' ? `::ffff:${address}` : address
  }
}
