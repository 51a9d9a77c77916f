/**
 * One connection attempt between two peers, from either side: signalling through the
 * Beacons, ICE on the peer's one UDP socket, then the verified encrypted session and
 * the stream multiplexer on the selected path.
 *
 * ```text
 * connecting side (ICE controlling)          listening side (ICE controlled)
 *   gather ── offer {ice, stream, cands, noise: msg 1} ──▶   gather
 *          ◀── answer {ice, stream, cands, noise: msg 2} ──
 *          ◀─── candidate … (trickle) ───────▶
 *   ICE checks on the pairs; nomination ◀──▶  selection of the nominated pair
 *   udx stream to the selected remote address: Noise message 3, then records
 *   (both verify the PeerId; attempt-handshake.ts, docs/secure-connection.md)
 *   stream multiplexer; the main stream
 * ```
 *
 * Signals may arrive in any order (each may come through a different Beacon): trickled
 * candidates that arrive before the offer or answer are held until it comes.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { BeaconSet } from '../beacon/beacon-set.js'
import type { IncomingSignal } from '../beacon/beacon-client-options.js'
import { StreamMux } from '../connection/stream-mux.js'
import { AbortError, BeaconPeerNotFoundError, ConnectFailedError, IceFailedError, PeerNotFoundError, PeerlinkError } from '../errors.js'
import type { LocalCandidate } from '../ice/candidate.js'
import { addressKey } from '../ice/canonical-address.js'
import { IceAgent } from '../ice/ice-agent.js'
import type { IceAgentOptions, IceGatherOptions, IceSelection } from '../ice/ice-agent-options.js'
import type { Identity } from '../identity/identity.js'
import type { StunServerAddress } from '../stun/binding-client.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import { type SecureConnection, openSecureConnection } from '../transport/secure-connection.js'
import type { SecureHandshake } from '../transport/secure-handshake.js'
import { AttemptHandshake } from './attempt-handshake.js'
import { AttemptSignalling, closeError } from './attempt-signalling.js'
import { type SessionDescription, decodeCloseReason } from './connect-signal.js'
import { type OpenedMainStream, firstMainStream, openMainStream } from './main-stream.js'
import { MAIN_STREAM_LABEL, PeerConnection } from './peer-connection.js'
import type { AttemptEvent, ConnectionInfo, ConnectionPath } from './peer-options.js'
import { CONNECTION_PATHS } from './peer-options.js'
import { REFLEXIVE_FRESH_MS, type ReflexiveCache } from './reflexive-cache.js'
import { remoteKeyOf } from './remote-key.js'
import type { TurnRelayPool } from './turn-relays.js'
import { AttemptRelays, SHIM_CLOSE_GRACE_MS } from './attempt-relays.js'
import { PathManager, type PathRecoveryOptions } from './path-manager.js'
import { PEER_ICE_DEFAULTS } from './peer-ice-defaults.js'
import { StreamSplice } from './stream-splice.js'
import { untilAborted } from '../abortable.js'

export { PEER_ICE_DEFAULTS } from './peer-ice-defaults.js'

/**
 * How long a connected attempt keeps trickling candidates both ways (relayed candidates
 * allocated after the selection), so path recovery has pairs to move to, ms.
 */
export const TRICKLE_LINGER_MS = 10_000

/** Bytes of a session id. */
export const SESSION_ID_BYTES = 16

/** What an attempt needs from its Peer. */
export interface AttemptContext {
  socket: PeerSocket
  identity: Identity
  beacons: BeaconSet
  stunServers: readonly StunServerAddress[]
  gather: IceGatherOptions
  ice: Partial<IceAgentOptions>
  handshakeTimeout: number
  /** The peer's recent public mappings: sent in the offer/answer, fed by our gathering. */
  reflexive: ReflexiveCache
  emit: (event: AttemptEvent) => void
  /** Called once the attempt is over (connected or failed). */
  done: (attempt: ConnectAttempt) => void
  /**
   * The peer's TURN relays (`PeerOptions.turn`).
   * @default undefined (no relay candidates)
   */
  relays?: TurnRelayPool | undefined
  /**
   * Paths this attempt may use (`ConnectOptions.paths`): without `direct` only relayed
   * candidates are offered (relay-only policy), without `turn` no relay is allocated.
   * @default every path
   */
  paths?: readonly ConnectionPath[] | undefined
  /**
   * Path recovery and upgrade of the connection (`PeerOptions.recovery`); `false` turns it off.
   * @default {} (on, default timings)
   */
  recovery?: PathRecoveryOptions | false | undefined
}

/** A connection attempt (see the module notes). */
export class ConnectAttempt {
  /** The session id (chosen by the connecting side). */
  readonly session: Uint8Array
  /** The other peer. */
  readonly peerId: string
  /** Whether we are the connecting side. */
  readonly initiator: boolean
  readonly #ctx: AttemptContext
  readonly #agent: IceAgent
  readonly #localStream: number
  readonly #started = performance.now()
  readonly #controller = new AbortController()
  /** The cached server-reflexive candidates this attempt started with. */
  readonly #remembered: ReadonlySet<LocalCandidate>
  /** The offer/answer and trickled candidates, both ways. */
  readonly #signalling: AttemptSignalling
  #finished = false
  /** The key the remote must prove (decoded from its PeerId while the network works). */
  #expectedKey: Uint8Array | undefined
  #remoteResolve: (() => void) | undefined
  readonly #remoteKnown: Promise<void>
  /** The relay candidates of this attempt (TURN allocations and their shims). */
  readonly #relays: AttemptRelays | undefined
  readonly #direct: boolean

  constructor(ctx: AttemptContext, peerId: string, initiator: boolean, session?: Uint8Array) {
    this.#ctx = ctx
    this.peerId = peerId
    this.initiator = initiator
    this.session = session ?? new Uint8Array(randomBytes(SESSION_ID_BYTES))
    this.#localStream = ctx.socket.allocateStreamId()
    // Our public mappings as last seen go out with the offer/answer rather than one STUN
    // round trip later; learnt a moment ago, they are not asked for again at all.
    const fresh = ctx.reflexive.candidates(REFLEXIVE_FRESH_MS)
    const known = fresh.length > 0 ? fresh : ctx.reflexive.candidates()
    const paths = ctx.paths ?? CONNECTION_PATHS
    this.#direct = paths.includes('direct')
    const turn = paths.includes('turn') && ctx.relays !== undefined && ctx.relays.servers.length > 0
    this.#remembered = new Set(this.#direct ? known : [])
    this.#agent = new IceAgent({
      ...PEER_ICE_DEFAULTS,
      ...ctx.ice,
      socket: ctx.socket,
      role: initiator ? 'controlling' : 'controlled',
      // Relay-only: no host or server-reflexive candidates at all.
      stunServers: fresh.length > 0 || !this.#direct ? [] : ctx.stunServers,
      gather: this.#direct ? { ...ctx.gather, reflexive: known } : { ...ctx.gather, hostAddresses: [], reflexive: [] },
      ...(this.#direct ? {} : { relayDelay: 0 }),
      signal: this.#controller.signal,
    })
    this.#signalling = new AttemptSignalling({
      session: this.session,
      peerId,
      initiator,
      identity: ctx.identity,
      beacons: ctx.beacons,
      agent: this.#agent,
      localStream: this.#localStream,
      signal: this.#controller.signal,
      expectedKey: () => this.#remoteKey(),
      finished: () => this.#finished,
      abort: (reason) => this.#controller.abort(reason),
      emit: (step, detail) => this.#emit(step, detail),
      onDescription: () => this.#remoteResolve?.(),
      localHandshake: () => this.#handshake.localMessage(),
      onRemoteHandshake: (message) => this.#handshake.onRemote(message),
    })
    this.#handshake = new AttemptHandshake({
      initiator,
      keyPair: ctx.identity.keyPair,
      expectedKey: () => this.#remoteKey(),
      abort: (reason) => this.#controller.abort(reason),
      finished: () => this.#finished,
    })
    this.#relays = turn
      ? new AttemptRelays({
          pool: ctx.relays as TurnRelayPool,
          socket: ctx.socket,
          agent: this.#agent,
          reflexive: ctx.reflexive,
          emit: (step, detail) => this.#emit(step, detail),
          onSettled: (count) => this.#onRelaysSettled(count),
        })
      : undefined
    this.#remoteKnown = new Promise((resolve) => (this.#remoteResolve = resolve))
    if (ctx.recovery !== false && turn) {
      // Only a connection that can fall back to a relay needs the splice (it costs
      // throughput: one more loopback hop per packet). Bound now (a loopback bind), used
      // synchronously when a pair is selected.
      StreamSplice.open(ctx.socket).then(
        (splice) => {
          if (this.#finished && !this.#keepAgent) void splice.close()
          else this.#splice = splice
        },
        () => {
          // No splice: the connection runs on the peer socket directly (it can still
          // upgrade, but cannot fail over from a dead path).
        },
      )
    }
    this.#agent.on('candidate', this.#onLocalCandidate)
    this.#agent.on('end-of-candidates', this.#onLocalEnd)
    this.#agent.on('selected', this.#onSelected)
  }

  /** Messages 1 and 2 of the secure connection's handshake, in the signalling. */
  readonly #handshake: AttemptHandshake

  /** The key the remote must prove, decoded from its PeerId once. */
  #remoteKey(): Uint8Array {
    return (this.#expectedKey ??= remoteKeyOf(this.peerId))
  }

  /** Milliseconds since the attempt started. */
  get elapsed(): number {
    return Math.round(performance.now() - this.#started)
  }

  #emit(step: AttemptEvent['step'], detail?: Record<string, unknown>): void {
    this.#ctx.emit({ peerId: this.peerId, initiator: this.initiator, step, ms: this.elapsed, ...(detail ? { detail } : {}) })
  }

  /**
   * Runs the attempt: resolves with the verified connection, rejects with a coded
   * error (`ERR_CONNECT_FAILED` with the ICE outcome as cause, `ERR_PEER_IDENTITY_MISMATCH`,
   * `ERR_PEER_NOT_FOUND`, `ERR_ABORTED`, …).
   */
  async run(options: { signal?: AbortSignal | undefined; timeout: number; offer?: IncomingSignal }): Promise<PeerConnection> {
    const timeoutSignal = AbortSignal.timeout(options.timeout)
    const signal = options.signal === undefined ? timeoutSignal : AbortSignal.any([options.signal, timeoutSignal])
    const onAbort = (): void => this.#controller.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      if (signal.aborted) throw new AbortError()
      if (options.offer !== undefined) this.#signalling.acceptDescription(options.offer.payload)
      if (!this.#direct && this.#relays === undefined) throw new ConnectFailedError('paths leave only TURN, and the peer has no TURN server (options.turn)')
      void this.#agent.gather({ signal: this.#controller.signal }).catch(() => {
        // Gathering failures (a STUN server not answering) leave the host candidates.
      })
      this.#relays?.gather()
      this.#signalling.scheduleFlush()
      // Decoding the PeerId costs about half a millisecond: do it after the offer/answer
      // went out, while the signalling and the checks are in flight.
      setImmediate(() => this.#remoteKey())
      if (this.initiator) await untilAborted(this.#remoteKnown, this.#controller.signal)
      const selection = await this.#agent.connect({ signal: this.#controller.signal, timeout: options.timeout })
      const iceMs = this.elapsed
      this.#emit('selected', describeSelection(selection))
      const connection = await this.#secure(selection, iceMs)
      this.#emit('verified', { path: connection.path, ms: connection.info.ms })
      return connection
    } catch (err) {
      const error = this.#failure(err, signal, options.signal, timeoutSignal)
      // No path: our remembered public mappings may be what went wrong.
      if (error instanceof ConnectFailedError) this.#ctx.reflexive.forget()
      this.#emit('failed', { code: error instanceof PeerlinkError ? error.code : 'ERR_INTERNAL', message: error.message })
      this.#signalling.abandon(error)
      throw error
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.#finish()
    }
  }

  /**
   * Opens the secure connection on the selected pair the moment ICE selects it, from
   * the agent's synchronous `selected` event: on the listening side that is before the
   * nomination is answered, so our udx stream already listens when the connecting side's
   * first handshake packet comes (a packet for a stream that does not exist yet is
   * dropped, and udx retransmits it only after a second).
   */
  readonly #onSelected = (selection: IceSelection): void => {
    const remote = this.#signalling.remote
    if (this.#securing !== undefined || this.#finished || remote === undefined) return
    const started = performance.now()
    let promise: Promise<SecureConnection>
    try {
      promise = this.#openSecure(selection, remote, this.#handshake.forSelection())
    } catch (err) {
      promise = Promise.reject(err)
    }
    // Awaited by #secure; an attempt that ends first never gets there.
    promise.catch(() => {})
    this.#securing = { promise, started }
  }

  /** Opens the secure connection on `selection` (with messages 1 and 2 done, when `handshake` is given). */
  #openSecure(selection: IceSelection, remote: SessionDescription, handshake: SecureHandshake | undefined): Promise<SecureConnection> {
    try {
      // Our candidate relayed: the stream runs through the relay shim; otherwise (even to
      // a peer's relayed address) from the peer's socket.
      const shim = selection.local.type === 'relay' ? this.#relays?.shimFor(addressKey(selection.local.base.address, selection.local.base.port)) : undefined
      if (selection.local.type === 'relay' && shim === undefined) throw new ConnectFailedError('The selected relay is gone')
      shim?.connect({ host: selection.remote.address, port: selection.remote.port })
      const outer = {
        socket: shim?.socket ?? this.#ctx.socket,
        ...(shim?.proxyAddress ?? { host: selection.remote.address, port: selection.remote.port }),
        localStreamId: this.#localStream,
        remoteStreamId: remote.stream,
      }
      // With path recovery the secure stream runs through the splice (stream-splice.ts).
      const end = this.#splice?.connect(outer)
      if (end === undefined) {
        void this.#splice?.close()
        this.#splice = undefined
      }
      return openSecureConnection({
        socket: end?.socket ?? outer.socket,
        remote: end?.remote ?? { host: outer.host, port: outer.port },
        localStreamId: end?.localStreamId ?? outer.localStreamId,
        remoteStreamId: end?.remoteStreamId ?? outer.remoteStreamId,
        isInitiator: this.initiator,
        keyPair: this.#ctx.identity.keyPair,
        expectedRemotePublicKey: this.#remoteKey(),
        ...(handshake === undefined ? {} : { handshake }),
        handshakeTimeout: this.#ctx.handshakeTimeout,
        signal: this.#controller.signal,
        // The connecting side opens the main stream as soon as the listener's key is
        // verified, right behind our last handshake message rather than a round trip
        // later: the listener has its connection (and can write) that much sooner.
        ...(this.initiator ? { onVerified: (secure: SecureConnection) => afterNextPoll(() => this.#openMain(secure)) } : {}),
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The multiplexer and main stream of the connecting side, opened at verification. */
  #opened: OpenedMainStream | undefined

  #openMain(secure: SecureConnection): void {
    if (this.#opened !== undefined || secure.destroyed || this.#finished) return
    this.#opened = openMainStream(secure)
  }

  async #secure(selection: IceSelection, iceMs: number): Promise<PeerConnection> {
    this.#onSelected(selection)
    const securing = this.#securing
    if (securing === undefined) throw new ConnectFailedError('No offer/answer from the peer')
    const secure = await securing.promise
    const handshakeStart = securing.started
    // The listening side confirms the handshake with its header, written as the last
    // Noise message came: let it leave before setting the connection up (what the
    // connecting side sent meanwhile waits in the secure connection).
    if (!this.initiator) await new Promise<void>((resolve) => afterNextPoll(resolve))
    if (this.initiator) this.#openMain(secure)
    const early = this.#opened?.secure === secure ? this.#opened : undefined
    const mux = early?.mux ?? new StreamMux(secure, { isInitiator: this.initiator })
    const opened = this.initiator
      ? (early ?? { main: mux.openStream({ label: MAIN_STREAM_LABEL }), early: [], stop: () => {} })
      : await firstMainStream(mux, this.#controller.signal)
    const main = opened.main
    const info: ConnectionInfo = {
      remotePeerId: this.peerId,
      initiator: this.initiator,
      path: selection.remote.type === 'relay' || selection.local.type === 'relay' ? 'turn' : 'direct',
      local: { address: selection.local.address, port: selection.local.port, type: selection.local.type },
      remote: { address: selection.remote.address, port: selection.remote.port, type: selection.remote.type },
      rttMs: selection.rttMs,
      ms: this.elapsed,
      phases: { iceMs, handshakeMs: Math.round(performance.now() - handshakeStart) },
    }
    const agent = this.#agent
    const used = selection.local.type === 'relay' ? this.#relays?.keep(addressKey(selection.local.base.address, selection.local.base.port)) : undefined
    if (used !== undefined) {
      info.relay = { server: used.relay.url, transport: used.relay.transport, relayed: { address: selection.local.address, port: selection.local.port } }
    }
    this.#keepAgent = true
    const relays = this.#relays
    const recovery = this.#ctx.recovery === false ? undefined : (this.#ctx.recovery ?? {})
    this.#recovering = recovery !== undefined
    let manager: PathManager | undefined
    const splice = this.#splice
    const connection = new PeerConnection({
      mux,
      secure,
      agent,
      main,
      early: opened.early,
      info,
      onClose: () => {
        manager?.close()
        this.#endLinger()
        agent.close()
        used?.close()
        if (recovery !== undefined) relays?.close({ grace: SHIM_CLOSE_GRACE_MS })
        // The outer relay runs on the peer socket or a relay shim's socket (same udx
        // instance, so the same stream ids): the id stayed reserved until the streams close.
        const closing = splice?.close({ grace: SHIM_CLOSE_GRACE_MS }) ?? Promise.resolve()
        if (splice !== undefined) this.#ctx.relays?.track(closing)
        void closing.finally(() => this.#ctx.socket.releaseStreamId(this.#localStream))
      },
    })
    opened.stop()
    if (recovery !== undefined && !connection.destroyed) {
      manager = new PathManager({
        ...recovery,
        agent,
        socket: this.#ctx.socket,
        shims: () => relays?.shims ?? new Map(),
        localStreamId: this.#localStream,
        // The peer's stream id (the secure stream's remote is the splice's inner relay).
        remoteStreamId: (this.#signalling.remote as SessionDescription).stream,
        // Only a connection that may move to a relay needs relay-sized packets.
        clampMtu: splice !== undefined && relays !== undefined ? () => splice.clampMtu() : undefined,
        info,
        onChange: (change) => connection.emit('path', change),
      })
      manager.start()
    }
    return connection
  }

  #keepAgent = false
  /** The splice the secure stream runs through (path recovery), once bound. */
  #splice: StreamSplice | undefined
  /** The connection keeps the agent and the relays for path recovery. */
  #recovering = false
  /** Connected: candidates still trickle both ways until {@link TRICKLE_LINGER_MS}. */
  #lingering = false
  #lingerTimer: ReturnType<typeof setTimeout> | undefined
  #securing: { promise: Promise<SecureConnection>; started: number } | undefined

  /** A signal for this attempt from the other peer. */
  onSignal(signal: IncomingSignal): void {
    if (this.#finished) return
    try {
      switch (signal.kind) {
        case 'answer':
          if (this.initiator) this.#signalling.acceptDescription(signal.payload)
          break
        case 'candidate':
          this.#signalling.acceptCandidates(signal.payload)
          break
        case 'close':
          if (this.#lingering) break // the connection is the peer's business now
          this.#controller.abort(closeError(this.peerId, decodeCloseReason(signal.payload)))
          break
        default:
          break
      }
    } catch (err) {
      this.#controller.abort(err)
    }
  }

  /** Abandons the attempt (the Peer is closing). */
  abort(reason: Error): void {
    this.#controller.abort(reason)
  }

  readonly #onLocalCandidate = (candidate: LocalCandidate): void => {
    // Only what a STUN server just told us renews the cache, not what it gave us.
    if (!this.#remembered.has(candidate)) this.#ctx.reflexive.learn(candidate)
    this.#signalling.queue(candidate)
  }

  #localGatherEnded = false

  readonly #onLocalEnd = (): void => {
    this.#localGatherEnded = true
    // End-of-candidates waits for the relay candidates still being allocated.
    if (this.#relays !== undefined && this.#relays.pending > 0) return
    this.#signalling.end()
  }

  #onRelaysSettled(count: number): void {
    if (this.#finished) return
    if (count === 0 && !this.#direct && !this.#lingering) {
      this.#controller.abort(new ConnectFailedError('No TURN relay could be allocated (relay-only attempt)'))
      return
    }
    if (this.#localGatherEnded) this.#signalling.end()
  }

  #failure(err: unknown, signal: AbortSignal, userSignal: AbortSignal | undefined, timeoutSignal: AbortSignal): Error {
    // The reason the attempt was aborted with is the real error (a peer not found, a
    // close from the peer, a malformed signal); the agent's AbortError only echoes it.
    const reason: unknown = this.#controller.signal.aborted ? this.#controller.signal.reason : err
    if (userSignal?.aborted === true && signal.reason === userSignal.reason) return new AbortError('The connection attempt was aborted', { cause: userSignal.reason })
    if (timeoutSignal.aborted && reason === timeoutSignal.reason) {
      return new ConnectFailedError(`No connection to ${this.peerId} within the timeout`, { cause: err instanceof IceFailedError ? err : undefined })
    }
    if (reason instanceof BeaconPeerNotFoundError) return new PeerNotFoundError(this.peerId, { cause: reason })
    if (reason instanceof IceFailedError) return new ConnectFailedError(`No ${this.#relays === undefined ? 'direct ' : ''}path to ${this.peerId}: ${reason.message}`, { cause: reason })
    if (reason instanceof PeerlinkError) return reason
    if (reason instanceof Error) return new ConnectFailedError(`Connecting to ${this.peerId} failed: ${reason.message}`, { cause: reason })
    return new ConnectFailedError(`Connecting to ${this.peerId} failed`, { cause: reason })
  }

  #finish(): void {
    if (this.#finished || this.#lingering) return
    if (this.#keepAgent && this.#recovering) {
      // Connected with path recovery: keep trickling for a while (relayed candidates that
      // come after the selection), then detach.
      this.#lingering = true
      this.#lingerTimer = setTimeout(() => this.#endLinger(), TRICKLE_LINGER_MS)
      this.#lingerTimer.unref?.()
      return
    }
    this.#detach()
  }

  /** Ends the trickling of a connected attempt (idempotent). */
  #endLinger(): void {
    if (!this.#lingering) return
    clearTimeout(this.#lingerTimer)
    this.#lingering = false
    this.#detach()
  }

  #detach(): void {
    if (this.#finished) return
    this.#finished = true
    this.#agent.off('candidate', this.#onLocalCandidate)
    this.#agent.off('end-of-candidates', this.#onLocalEnd)
    this.#agent.off('selected', this.#onSelected)
    // Every relay but the one the connection runs on (if any) is released now — or, with
    // path recovery, when the connection closes.
    if (!this.#recovering) this.#relays?.close()
    if (!this.#keepAgent) {
      // A session that got verified after all is not ours to keep.
      this.#securing?.promise.then((secure) => secure.destroy(), () => {})
      this.#controller.abort(new AbortError('The connection attempt ended'))
      this.#agent.close()
      void this.#splice?.close()
      this.#ctx.socket.releaseStreamId(this.#localStream)
    }
    this.#ctx.done(this)
  }
}

function describeSelection(selection: IceSelection): Record<string, unknown> {
  return {
    local: `${selection.local.type} ${selection.local.address}:${selection.local.port}`,
    remote: `${selection.remote.type} ${selection.remote.address}:${selection.remote.port}`,
    rttMs: selection.rttMs,
    path: selection.local.type === 'relay' || selection.remote.type === 'relay' ? 'turn' : 'direct',
  }
}

/**
 * Runs `fn` after the event loop's next poll phase (two turns of `setImmediate`): udx
 * sends what was written only when it polls, so work deferred this way no longer holds
 * back the packets written before it.
 */
function afterNextPoll(fn: () => void): void {
  setImmediate(() => setImmediate(fn))
}
