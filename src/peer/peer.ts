/**
 * The peer: one identity, one UDP socket, the Beacons; connects to other peers by
 * PeerId and accepts their connections, each verified to be the peer it claims.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { BeaconSet } from '../beacon/beacon-set.js'
import type { IncomingSignal } from '../beacon/beacon-client-options.js'
import { AbortError, BeaconUnavailableError, ConnectFailedError, InvalidArgumentError, SocketClosedError, throwIfAborted } from '../errors.js'
import { type Identity, createIdentity } from '../identity/identity.js'
import { parseBeaconSpec, parseStunSpec } from '../server-spec.js'
import type { StunServerAddress } from '../stun/binding-client.js'
import { PeerSocket } from '../transport/peer-socket.js'
import { type AttemptContext, ConnectAttempt, SESSION_ID_BYTES } from './connect-attempt.js'
import { checkPathRecoveryOptions } from './path-manager.js'
import type { PeerConnection } from './peer-connection.js'
import { ReflexiveCache } from './reflexive-cache.js'
import { rendezvousTopic, runRendezvous } from './rendezvous.js'
import { remoteKeyOf } from './remote-key.js'
import { TurnRelayPool, turnServerList } from './turn-relays.js'
import { TunnelPath, type UdpAttemptRunner, tunnelServerList } from './tunnel-path.js'
import { type AttemptEvent, CONNECTION_PATHS, type ConnectOptions, type ListenOptions, type PeerEvents, type PeerOptions } from './peer-options.js'
import { abortable } from '../abortable.js'
import { positiveMs } from './option-checks.js'

const DEFAULT_CONNECT_TIMEOUT = 30_000
const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
/** Incoming attempts at once (a flood of offers cannot exhaust the socket). */
const MAX_INCOMING_ATTEMPTS = 64
/** Signals kept for an attempt whose offer has not arrived yet, and for how long. */
const MAX_EARLY_SESSIONS = 64
const EARLY_SIGNAL_MS = 10_000

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * Creates a peer: binds its UDP socket and starts connecting to its Beacons.
 *
 * @example
 * ```ts
 * import { createPeer } from 'peerlink'
 * const peer = await createPeer({ beacons: ['beacon.example.com:4264#weOs…'] })
 * console.log('I am', peer.peerId)
 * await peer.listen()
 * peer.on('connection', (conn) => conn.pipe(conn))        // echo
 * const conn = await peer.connect(otherPeerId)           // verified to be otherPeerId
 * conn.write('hello')
 * ```
 *
 * @throws InvalidArgumentError (rejects) for bad options; `SocketBindError` when the
 * UDP socket cannot be bound.
 */
export async function createPeer(options: PeerOptions = {}): Promise<Peer> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('createPeer needs an options object')
  throwIfAborted(options.signal)
  const stunServers = stunServerList(options)
  const connectTimeout = positiveMs(options.connectTimeout, DEFAULT_CONNECT_TIMEOUT, 'connectTimeout')
  const handshakeTimeout = positiveMs(options.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, 'handshakeTimeout')
  // Checked before anything is bound (throws InvalidServerSpecError / InvalidArgumentError).
  tunnelServerList(options)
  turnServerList(options.turn)
  checkPathRecoveryOptions(options.recovery)
  const identity = options.identity ?? createIdentity()
  const socket = await PeerSocket.bind({ ...(options.host !== undefined ? { host: options.host } : {}), ...(options.port !== undefined ? { port: options.port } : {}) })
  let beacons: BeaconSet | undefined
  try {
    beacons = options.beacons !== undefined && options.beacons.length > 0 ? new BeaconSet({ identity, beacons: options.beacons }) : undefined
  } catch (err) {
    await socket.close()
    throw err
  }
  return new Peer({ identity, socket, beacons, stunServers, connectTimeout, handshakeTimeout, options })
}

interface PeerParts {
  identity: Identity
  socket: PeerSocket
  beacons: BeaconSet | undefined
  stunServers: StunServerAddress[]
  connectTimeout: number
  handshakeTimeout: number
  options: PeerOptions
}

/**
 * A peer (see {@link createPeer}).
 *
 * @example
 * ```ts
 * import { createPeer, loadOrCreateIdentity } from 'peerlink'
 *
 * const peer = await createPeer({ identity: await loadOrCreateIdentity('./peer.key'), beacons: ['beacon.example.com:4264'] })
 * peer.on('connection', (conn) => conn.end(`hello ${conn.remotePeerId}\n`))
 * peer.on('attempt', (e) => console.error(e.step, e.peerId, `${e.ms} ms`))
 * await peer.listen({ signal: AbortSignal.timeout(10_000) })
 * console.log(`listening as ${peer.peerId} on UDP port ${peer.address.port}`)
 * process.once('SIGINT', () => peer.close())
 * ```
 */
export class Peer extends EventEmitter<PeerEvents> {
  /** This peer's identity. */
  readonly identity: Identity
  readonly #socket: PeerSocket
  readonly #beacons: BeaconSet | undefined
  readonly #context: Omit<AttemptContext, 'beacons'>
  readonly #connectTimeout: number
  readonly #reflexive: ReflexiveCache
  readonly #attempts = new Map<string, ConnectAttempt>()
  readonly #early = new Map<string, { signals: IncomingSignal[]; timer: ReturnType<typeof setTimeout> }>()
  readonly #connections = new Set<PeerConnection>()
  /** Beacons (by index) whose last connection attempt failed. */
  readonly #beaconsDown = new Set<number>()
  /** The tunnel step of the ladder (`options.tunnels`), if any. */
  readonly #tunnel: TunnelPath | undefined
  /** The TURN relays (`options.turn`), if any. */
  readonly #relays: TurnRelayPool | undefined
  #listening = false
  /** Rendezvous waiting for the other side's connection: PeerId → who takes it. */
  readonly #expected = new Map<string, (connection: PeerConnection) => void>()
  #registered: Promise<void> | undefined
  #closing: Promise<void> | undefined

  /** @internal */
  constructor(parts: PeerParts) {
    super()
    this.identity = parts.identity
    this.#socket = parts.socket
    this.#beacons = parts.beacons
    this.#connectTimeout = parts.connectTimeout
    this.#reflexive = new ReflexiveCache(parts.socket, parts.stunServers, parts.options.gather ?? {})
    const turnServers = turnServerList(parts.options.turn)
    this.#relays = turnServers.length > 0 ? new TurnRelayPool(parts.socket, turnServers) : undefined
    this.#context = {
      relays: this.#relays,
      socket: parts.socket,
      identity: parts.identity,
      stunServers: parts.stunServers,
      gather: parts.options.gather ?? {},
      ice: parts.options.ice ?? {},
      recovery: parts.options.recovery,
      handshakeTimeout: parts.handshakeTimeout,
      reflexive: this.#reflexive,
      emit: (event) => this.emit('attempt', event),
      done: (attempt) => {
        const key = hex(attempt.session)
        if (this.#attempts.get(key) === attempt) this.#attempts.delete(key)
      },
    }
    this.#tunnel =
      (parts.options.tunnels ?? []).length === 0
        ? undefined
        : new TunnelPath({
            identity: parts.identity,
            options: parts.options,
            handshakeTimeout: parts.handshakeTimeout,
            reflexive: this.#reflexive,
            emit: (event) => this.emit('attempt', event),
            onConnection: (connection) => {
              this.#track(connection)
              if (!connection.destroyed) this.emit('connection', connection)
            },
            onError: (error, peerId) => this.emit('incoming-error', error, peerId),
          })
    this.#beacons?.on('signal', this.#onSignal)
    this.#beacons?.on('disconnected', ({ index }) => this.#beaconsDown.add(index))
    this.#beacons?.on('connected', ({ index }) => this.#beaconsDown.delete(index))
    this.#beacons?.start()
    this.#reflexive.refresh()
    parts.options.signal?.addEventListener('abort', () => void this.close(), { once: true })
  }

  /** This peer's PeerId. */
  get peerId(): string {
    return this.identity.peerId
  }

  /** The local address of the peer's UDP socket. */
  get address(): { host: string; port: number } {
    const address = this.#socket.address()
    return { host: address.host, port: address.port }
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined
  }

  /**
   * Makes this peer reachable by its PeerId: registers it at every Beacon (proving its
   * key) and accepts incoming connections (the `'connection'` event). Resolves once a
   * Beacon has it. With tunnel servers (`options.tunnels`) it also registers there (and
   * stays registered, reconnecting by itself): it resolves once the Beacons and the
   * tunnel have both answered (the tunnel: registered, or every server failed once) and
   * at least one of them has it. A peer with tunnels and no Beacons listens on the
   * tunnel alone.
   *
   * @throws `BeaconUnavailableError` (rejects) when no Beacon could register it (and no
   * tunnel server either); without Beacons, the tunnel's error (`TunnelUnavailableError`,
   * `TunnelAuthError`, …) when no tunnel server took it.
   */
  async listen(options: ListenOptions = {}): Promise<void> {
    this.#assertOpen()
    throwIfAborted(options.signal)
    // With tunnel servers, a peer without Beacons listens on the tunnel alone.
    const tunnel = this.#tunnel?.listen(options.signal)
    if (tunnel !== undefined && this.#beacons === undefined) {
      this.#listening = true
      return tunnel
    }
    this.#needBeacons('listen()')
    this.#listening = true
    if (this.#reflexive.candidates().length === 0) this.#reflexive.refresh()
    if (tunnel === undefined) return this.#register(options.signal)
    await this.#registerBoth(this.#register(options.signal), tunnel)
    throwIfAborted(options.signal)
  }

  /**
   * Reachable once the Beacons or the tunnel have it (a firewall may let only one
   * through): resolves when the tunnel has answered (registered, or every server failed
   * once; it keeps trying by itself) and the Beacons have the peer — or, with the tunnel
   * registered, once every Beacon has failed to connect (they keep retrying, and a
   * Beacon client never gives up on its own). Rejects with the Beacons' error when both
   * failed.
   */
  #registerBoth(beacons: Promise<void>, tunnel: Promise<void>): Promise<void> {
    const clients = this.#beacons?.clients.length ?? 0
    return new Promise<void>((resolve, reject) => {
      let beacon: 'pending' | 'ok' | Error = 'pending'
      let tunnelled: 'pending' | 'ok' | 'failed' = 'pending'
      const check = (): void => {
        if (tunnelled === 'pending') return
        const beaconsDown = beacon instanceof Error || (clients > 0 && this.#beaconsDown.size >= clients)
        if (beacon === 'ok' || (tunnelled === 'ok' && beaconsDown)) done()
        else if (beacon instanceof Error && tunnelled === 'failed') done(beacon)
      }
      const onDown = (): void => check()
      const done = (err?: Error): void => {
        this.#beacons?.off('disconnected', onDown)
        if (err === undefined) resolve()
        else reject(err)
      }
      this.#beacons?.on('disconnected', onDown)
      beacons.then(
        () => ((beacon = 'ok'), check()),
        (err: unknown) => ((beacon = err instanceof Error ? err : new Error(String(err))), check()),
      )
      tunnel.then(
        () => ((tunnelled = 'ok'), check()),
        () => ((tunnelled = 'failed'), check()),
      )
    })
  }

  /**
   * Connects to the peer `peerId` through the Beacons and resolves with a connection
   * verified to be that peer. With tunnel servers the tunnel path is raced against the
   * UDP attempt (see `tunnel-path.ts`): it starts at once when UDP is known to be
   * blocked, when the UDP attempt fails, or after `tunnel.fallbackDelay` ms without a
   * working pair; the first verified connection wins.
   *
   * @throws InvalidArgumentError at once for a malformed PeerId or options.
   * @throws `ConnectFailedError` (`ERR_CONNECT_FAILED`, rejects) when no path works in
   * time (its `cause` holds the ICE outcome per candidate pair);
   * `PeerIdentityMismatchError` (`ERR_PEER_IDENTITY_MISMATCH`) when the remote is not
   * `peerId`; `PeerNotFoundError` (`ERR_PEER_NOT_FOUND`) when no Beacon knows the peer; `AbortError`.
   */
  async connect(peerId: string, options: ConnectOptions = {}): Promise<PeerConnection> {
    this.#assertOpen()
    if (!isPeerIdCached(peerId)) throw new InvalidArgumentError('peerId must be a PeerId string (12D3Koo…)')
    if (peerId === this.peerId) throw new InvalidArgumentError('A peer cannot connect to itself')
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
    const timeout = positiveMs(options.timeout, this.#connectTimeout, 'timeout')
    const paths = options.paths ?? CONNECTION_PATHS
    if (!Array.isArray(paths) || paths.some((p) => !CONNECTION_PATHS.includes(p))) {
      throw new InvalidArgumentError(`paths must list some of ${CONNECTION_PATHS.join(', ')}`)
    }
    throwIfAborted(options.signal)
    if (this.#tunnel !== undefined && paths.includes('tunnel')) {
      const udp = this.#udpRunner(peerId, paths, timeout)
      const relayed = udp !== undefined && this.#relays !== undefined && paths.includes('turn')
      return this.#track(await this.#tunnel.connect(peerId, { udp, relayed, timeout, signal: options.signal }))
    }
    if (!paths.includes('direct') && !paths.includes('turn')) throw new ConnectFailedError(`No tunnel server is configured; paths=${paths.join(',')} leaves no path`)
    const beacons = this.#needBeacons('connect()')
    // The answer comes back by our PeerId: the Beacons must know it (docs/beacon-protocol.md).
    await this.#register(options.signal)
    const attempt = new ConnectAttempt({ ...this.#context, beacons, paths }, peerId, true)
    this.#attempts.set(hex(attempt.session), attempt)
    const connection = await attempt.run({ signal: options.signal, timeout })
    return this.#track(connection)
  }

  /**
   * Meets whichever peer calls `rendezvous` with the same `identifier` (a room name, a
   * pairing code) through the Beacons' symmetric mode, and resolves with a connection
   * verified to be that peer (its PeerId is `connection.remotePeerId`). The Beacons see
   * only a hash of the identifier. Works without {@link listen}. Waits for the other peer
   * until `signal` aborts; once they are introduced, the connection gets `timeout` ms.
   *
   * @example
   * ```ts
   * const conn = await peer.rendezvous('blue-falcon-42', { signal: AbortSignal.timeout(60_000) })
   * console.log('met', conn.remotePeerId)
   * ```
   * @throws InvalidArgumentError at once for an empty identifier or one over 1024 bytes.
   * @throws `ConnectFailedError` (rejects) when the introduced peer cannot be reached in
   * time; `PeerIdentityMismatchError`, `AbortError` as for {@link connect}.
   */
  async rendezvous(identifier: string | Uint8Array, options: ConnectOptions = {}): Promise<PeerConnection> {
    this.#assertOpen()
    const topic = rendezvousTopic(identifier)
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object')
    const timeout = positiveMs(options.timeout, this.#connectTimeout, 'timeout')
    const beacons = this.#needBeacons('rendezvous()')
    throwIfAborted(options.signal)
    // Offers from the other side route to our PeerId: the Beacons must know it first.
    await this.#register(options.signal)
    return runRendezvous(topic, {
      beacons,
      self: this.peerId,
      connectTimeout: timeout,
      signal: options.signal,
      connect: (peerId, signal) => this.connect(peerId, { signal, timeout, ...(options.paths === undefined ? {} : { paths: options.paths }) }),
      accept: (peerId, signal) => this.#expect(peerId, signal),
    })
  }

  /** The next verified incoming connection from `peerId`, for a rendezvous where the other side connects. */
  #expect(peerId: string, signal: AbortSignal): Promise<PeerConnection> {
    if (this.#expected.has(peerId)) return Promise.reject(new InvalidArgumentError(`Already waiting for a rendezvous with ${peerId}`))
    return new Promise<PeerConnection>((resolve, reject) => {
      const done = (): void => {
        this.#expected.delete(peerId)
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        done()
        reject(new AbortError(undefined, { cause: signal.reason }))
      }
      this.#expected.set(peerId, (connection) => {
        done()
        resolve(connection)
      })
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** The UDP attempt the tunnel path races against, when `paths` and the Beacons allow one. */
  #udpRunner(peerId: string, paths: readonly string[], timeout: number): UdpAttemptRunner | undefined {
    if (this.#beacons === undefined || (!paths.includes('direct') && !paths.includes('turn'))) return undefined
    const beacons = this.#beacons
    return async (signal, onEvent) => {
      // No Beacon to signal through (each failed its last connection attempt and none is
      // connected): give up at once, so the tunnel starts now, not after the fallback delay.
      if (beacons.connected.length === 0 && this.#beaconsDown.size >= beacons.clients.length) {
        throw new BeaconUnavailableError('No Beacon is reachable to signal the UDP attempt through')
      }
      await this.#register(signal)
      const emit = (event: AttemptEvent): void => {
        this.emit('attempt', event)
        onEvent(event)
      }
      const attempt = new ConnectAttempt({ ...this.#context, beacons, emit, paths: paths as ConnectOptions['paths'] }, peerId, true)
      this.#attempts.set(hex(attempt.session), attempt)
      return attempt.run({ signal, timeout })
    }
  }

  #track(connection: PeerConnection): PeerConnection {
    if (this.#closing !== undefined) {
      connection.destroy(new AbortError('The peer is closing'))
      return connection
    }
    this.#connections.add(connection)
    connection.once('close', () => this.#connections.delete(connection))
    return connection
  }

  readonly #onSignal = (signal: IncomingSignal): void => {
    if (this.#closing !== undefined || signal.session.length !== SESSION_ID_BYTES) return
    const key = hex(signal.session)
    const attempt = this.#attempts.get(key)
    if (attempt !== undefined) {
      if (attempt.peerId === signal.from) attempt.onSignal(signal)
      return
    }
    if (signal.kind === 'offer') {
      this.#accept(signal, key)
      return
    }
    if (signal.kind === 'candidate' && this.#listening) this.#holdEarly(key, signal)
  }

  #holdEarly(key: string, signal: IncomingSignal): void {
    let early = this.#early.get(key)
    if (early === undefined) {
      if (this.#early.size >= MAX_EARLY_SESSIONS) return
      const timer = setTimeout(() => this.#early.delete(key), EARLY_SIGNAL_MS)
      timer.unref()
      early = { signals: [], timer }
      this.#early.set(key, early)
    }
    if (early.signals.length < 16) early.signals.push(signal)
  }

  #accept(offer: IncomingSignal, key: string): void {
    if ((!this.#listening && !this.#expected.has(offer.from)) || this.#attempts.size >= MAX_INCOMING_ATTEMPTS) return
    let attempt: ConnectAttempt
    try {
      attempt = new ConnectAttempt({ ...this.#context, beacons: this.#needBeacons('accept') }, offer.from, false, offer.session)
    } catch (err) {
      this.emit('incoming-error', err as Error, offer.from)
      return
    }
    this.#attempts.set(key, attempt)
    const early = this.#early.get(key)
    this.#early.delete(key)
    if (early !== undefined) clearTimeout(early.timer)
    attempt.run({ timeout: this.#connectTimeout, offer }).then(
      (connection) => {
        this.#track(connection)
        const expected = this.#expected.get(offer.from)
        if (expected !== undefined) expected(connection)
        else if (!connection.destroyed) this.emit('connection', connection)
      },
      (err: unknown) => this.emit('incoming-error', err as Error, offer.from),
    )
    for (const signal of early?.signals ?? []) if (signal.from === offer.from) attempt.onSignal(signal)
  }

  /** Registers our PeerId at the Beacons once (kept across reconnections by the clients). */
  async #register(signal: AbortSignal | undefined): Promise<void> {
    const beacons = this.#needBeacons('register')
    const options = signal ? { signal } : {}
    if (this.#registered === undefined) {
      this.#registered = (async () => {
        await beacons.ready()
        await beacons.listen()
      })()
      this.#registered.catch(() => (this.#registered = undefined))
    }
    await abortable(this.#registered, options.signal)
  }

  #needBeacons(what: string): BeaconSet {
    if (this.#beacons === undefined) throw new InvalidArgumentError(`${what} needs at least one Beacon (options.beacons)`)
    return this.#beacons
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new SocketClosedError('The peer is closed')
  }

  /**
   * Closes every connection and attempt, the Beacon connections and the socket.
   * Idempotent; resolves when everything is released.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#beacons?.off('signal', this.#onSignal)
      this.#reflexive.close()
      const tunnel = this.#tunnel?.close()
      for (const attempt of this.#attempts.values()) attempt.abort(new AbortError('The peer is closing'))
      for (const { timer } of this.#early.values()) clearTimeout(timer)
      this.#early.clear()
      await Promise.all([...this.#connections].map((connection) => connection.close({ timeout: 1_000 })))
      await tunnel
      await this.#relays?.close()
      await this.#beacons?.close()
      await this.#socket.close()
      this.emit('close')
    })()
    return this.#closing
  }
}

/** Whether `value` is a PeerId (decoded through the cache the attempt then uses). */
function isPeerIdCached(value: unknown): value is string {
  if (typeof value !== 'string') return false
  try {
    remoteKeyOf(value)
    return true
  } catch {
    return false
  }
}


function stunServerList(options: PeerOptions): StunServerAddress[] {
  const servers: StunServerAddress[] = []
  for (const entry of options.stun ?? []) {
    if (typeof entry === 'string') {
      const spec = parseStunSpec(entry)
      servers.push({ host: spec.host, port: spec.port })
    } else if (entry !== null && typeof entry === 'object' && typeof entry.host === 'string' && Number.isInteger(entry.port)) {
      servers.push({ host: entry.host, port: entry.port })
    } else {
      throw new InvalidArgumentError('stun entries must be `stun:HOST:PORT` strings or { host, port }')
    }
  }
  if (options.beaconStun !== false) {
    for (const entry of options.beacons ?? []) {
      for (const address of Array.isArray(entry) ? entry : [entry]) {
        const spec = typeof address === 'string' ? parseBeaconSpec(address) : address
        servers.push({ host: spec.host, port: spec.port })
      }
    }
  }
  return servers
}
