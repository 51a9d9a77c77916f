/**
 * The signalling exchange of one connection attempt through the Beacons: our offer or
 * answer and the trickled local candidates going out (batched, sealed, deduplicated by
 * transport address), the peer's offer or answer and candidate batches coming in (fed to
 * the ICE agent; batches that arrive before the offer/answer are held until it comes),
 * and the `close` signal of an abandoned attempt.
 *
 * @module
 */
import type { BeaconSet } from '../beacon/beacon-set.js'
import { ConnectFailedError, HandshakeFailedError, PeerIdentityMismatchError, PeerlinkError } from '../errors.js'
import { formatCandidate } from '../ice/candidate-codec.js'
import { type LocalCandidate, candidateAddressKey } from '../ice/candidate.js'
import type { IceAgent } from '../ice/ice-agent.js'
import type { Identity } from '../identity/identity.js'
import {
  type SessionDescription,
  MAX_SIGNAL_CANDIDATES,
  decodeCandidateBatch,
  decodeSessionDescription,
  encodeCandidateBatch,
  encodeCloseSignal,
  encodeSessionDescription,
} from './connect-signal.js'
import type { AttemptEvent } from './peer-options.js'
import { type SealedSignalKind, openSignal, sealSignal } from './signal-seal.js'

/** What an {@link AttemptSignalling} needs of its attempt. @internal */
export interface AttemptSignallingContext {
  session: Uint8Array
  peerId: string
  initiator: boolean
  identity: Identity
  beacons: BeaconSet
  agent: IceAgent
  /** Our udx stream id (sent in the offer/answer). */
  localStream: number
  /** The attempt's signal: aborts the signals in flight. */
  signal: AbortSignal
  /** The key the remote must prove. */
  expectedKey(): Uint8Array
  /** Whether the attempt is over. */
  finished(): boolean
  /** Ends the attempt with `reason`. */
  abort(reason: unknown): void
  emit(step: AttemptEvent['step'], detail?: Record<string, unknown>): void
  /** The peer's offer/answer was accepted. */
  onDescription(): void
  /**
   * The handshake message to send in our offer/answer (attempt-handshake.ts); called
   * once, when it goes out (may throw: the attempt then fails).
   */
  localHandshake(): Uint8Array | undefined
  /** The handshake message in the peer's offer/answer (may throw: the attempt then fails). */
  onRemoteHandshake(message: Uint8Array | undefined): void
}

/**
 * The signals of one attempt, both ways.
 *
 * @internal (used by `ConnectAttempt`)
 */
export class AttemptSignalling {
  readonly #ctx: AttemptSignallingContext
  readonly #outgoing: string[] = []
  /** Transport addresses of the local candidates signalled so far. */
  readonly #signalled = new Set<string>()
  #outgoingEnd = false
  #flushScheduled = false
  #descriptionSent = false
  #remote: SessionDescription | undefined
  /** Remote candidate batches that came before the offer/answer. */
  readonly #early: Uint8Array[] = []

  constructor(ctx: AttemptSignallingContext) {
    this.#ctx = ctx
  }

  /** The peer's offer/answer, once accepted. */
  get remote(): SessionDescription | undefined {
    return this.#remote
  }

  /** Whether our offer/answer went out. */
  get descriptionSent(): boolean {
    return this.#descriptionSent
  }

  /** The peer's offer or answer. */
  acceptDescription(payload: Uint8Array): void {
    if (this.#remote !== undefined) return
    const ctx = this.#ctx
    const description = decodeSessionDescription(this.#open(ctx.initiator ? 'answer' : 'offer', payload))
    this.#remote = description
    ctx.agent.setRemoteCredentials(description.ice)
    ctx.emit(ctx.initiator ? 'answer' : 'offer', { candidates: description.candidates.length })
    this.#addLines(description.candidates, description.end)
    for (const early of this.#early.splice(0)) this.#addRemoteCandidates(early)
    // After the candidates: the checks they start are scheduled before what the handshake
    // message schedules (attempt-handshake.ts).
    ctx.onRemoteHandshake(description.noise)
    ctx.onDescription()
  }

  /** A batch of the peer's trickled candidates (held until its offer/answer came). */
  acceptCandidates(payload: Uint8Array): void {
    if (this.#remote === undefined) {
      if (this.#early.length < MAX_SIGNAL_CANDIDATES) this.#early.push(payload)
    } else {
      this.#addRemoteCandidates(payload)
    }
  }

  /** Queues a local candidate to trickle (once per transport address). */
  queue(candidate: LocalCandidate): void {
    const key = candidateAddressKey(candidate)
    if (this.#signalled.has(key)) return
    this.#signalled.add(key)
    this.#outgoing.push(formatCandidate(candidate))
    this.scheduleFlush()
  }

  /** Signals end-of-candidates after the queued ones. */
  end(): void {
    this.#outgoingEnd = true
    this.scheduleFlush()
  }

  /** Sends what is queued (the offer/answer first) on the next turn of the event loop. */
  scheduleFlush(): void {
    if (this.#flushScheduled || this.#ctx.finished()) return
    this.#flushScheduled = true
    setImmediate(this.#flush)
  }

  /**
   * Tells the peer the attempt is abandoned with `error` (a `close` signal), unless we
   * are a listening side that has not answered.
   */
  abandon(error: Error): void {
    const ctx = this.#ctx
    // A listening side that has not answered stays silent, except to say that the offer
    // was not signed for it (the connecting side then knows at once it reached the wrong
    // peer: a misrouting Beacon) or that its handshake message was not one it could read
    // (a peer of another version; the offer's signature showed who sent it), instead of
    // leaving the connecting side to its timeout.
    if (!this.#descriptionSent && !ctx.initiator && !(error instanceof PeerIdentityMismatchError) && !(error instanceof HandshakeFailedError)) return
    const reason = error instanceof PeerlinkError ? error.code : 'ERR_CONNECT_FAILED'
    ctx.beacons.signal(ctx.peerId, { kind: 'close', session: ctx.session, payload: encodeCloseSignal(reason) }).catch(() => {})
  }

  #addRemoteCandidates(payload: Uint8Array): void {
    const batch = decodeCandidateBatch(this.#open('candidate', payload))
    this.#ctx.emit('candidate', { remote: batch.candidates.length, end: batch.end })
    this.#addLines(batch.candidates, batch.end)
  }

  #addLines(lines: readonly string[], end: boolean): void {
    const agent = this.#ctx.agent
    for (const line of lines) {
      try {
        agent.addRemoteCandidate(line)
      } catch {
        // One candidate we cannot use (another address family, a malformed line) does
        // not end the attempt: ICE fails only if no pair works.
      }
    }
    if (end) agent.endOfRemoteCandidates()
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    const ctx = this.#ctx
    if (ctx.finished()) return
    // The responder answers only once it has the offer (it always has: it was created by it).
    const candidates = this.#outgoing.splice(0, MAX_SIGNAL_CANDIDATES)
    const end = this.#outgoingEnd && this.#outgoing.length === 0
    if (!this.#descriptionSent) {
      let noise: Uint8Array | undefined
      try {
        noise = ctx.localHandshake()
      } catch (err) {
        // The offer's handshake message was not valid: no answer.
        ctx.abort(err)
        return
      }
      this.#descriptionSent = true
      const payload = encodeSessionDescription({ ice: ctx.agent.localCredentials, stream: ctx.localStream, candidates, end, noise })
      if (end) this.#outgoingEnd = false
      this.#send(ctx.initiator ? 'offer' : 'answer', payload, true)
    } else if (candidates.length > 0 || end) {
      if (end) this.#outgoingEnd = false
      this.#send('candidate', encodeCandidateBatch({ candidates, end }), false)
    }
    if (this.#outgoing.length > 0) this.scheduleFlush()
  }

  /** The body of a sealed signal from the peer (`signal-seal.ts`): signed by its key, for this attempt. */
  #open(kind: SealedSignalKind, payload: Uint8Array): Uint8Array {
    const ctx = this.#ctx
    return openSignal(kind, { session: ctx.session, from: ctx.peerId, to: ctx.identity.peerId }, payload, ctx.expectedKey())
  }

  #send(kind: SealedSignalKind, body: Uint8Array, fatal: boolean): void {
    const ctx = this.#ctx
    const payload = sealSignal(ctx.identity, kind, { session: ctx.session, from: ctx.identity.peerId, to: ctx.peerId }, body)
    ctx.beacons.signal(ctx.peerId, { kind, session: ctx.session, payload }, { signal: ctx.signal }).then(
      () => {},
      (err: unknown) => {
        // The offer must reach the peer (no Beacon knows it: fail at once); a lost
        // trickled candidate only leaves one pair unchecked.
        if (fatal && !ctx.finished()) ctx.abort(err)
      },
    )
  }
}

/**
 * The error of an attempt the peer abandoned with close reason `reason` (a code, as
 * {@link AttemptSignalling.abandon} sends). `ERR_PEER_IDENTITY_MISMATCH` means the peer
 * found our offer was not signed for it: whoever the Beacon routed us to is not `peerId`.
 */
export function closeError(peerId: string, reason: string): Error {
  if (reason === 'ERR_PEER_IDENTITY_MISMATCH') {
    return new PeerIdentityMismatchError(peerId, 'a peer that does not hold its key (our offer was not signed for it)')
  }
  return new ConnectFailedError(`The peer abandoned the attempt: ${reason || 'no reason given'}`)
}
