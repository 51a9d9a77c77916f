/**
 * The tunnel step of a peer's connection ladder (`PeerOptions.tunnels`): the WebSocket
 * tunnel's peer path (`docs/tunnel-protocol.md`, "Peer path") turned into
 * {@link PeerConnection}s like those of the UDP paths.
 *
 * - **Listening**: a {@link TunnelPeerListener} keeps the peer registered under its
 *   PeerId on the tunnel servers (it reconnects by itself). Each verified incoming
 *   stream gets the stream multiplexer; once the connecting side opens the main stream
 *   it is a `PeerConnection` (`path: 'tunnel'`). A stream closed before that is a path
 *   the connecting side dropped because another one won the race: it is discarded
 *   silently.
 * - **Connecting** races the tunnel against the UDP attempt (ICE): the UDP attempt starts
 *   at once; the tunnel starts as soon as UDP is known to be blocked (no STUN server
 *   answered the peer's last gathering) unless TURN relays may be used (TURN over
 *   TCP/TLS comes first on the ladder), when the UDP attempt fails, or when it has not
 *   selected a working pair (direct or relayed) within `fallbackDelay` ms. The first verified connection
 *   wins; the other attempt is aborted and a late loser closed before its main stream is
 *   opened, so the listening side never sees it as a connection.
 *
 * The identity check is the same on every path: the tunnel's Noise handshake
 * ({@link secureTunnelStream}) rejects another key with `ERR_PEER_IDENTITY_MISMATCH`.
 *
 * @module
 */
import type { Socket } from 'node:net'
import type { MuxStream } from '../connection/mux-stream.js'
import { StreamMux } from '../connection/stream-mux.js'
import {
  AbortError,
  ConnectFailedError,
  InvalidArgumentError,
  PeerIdentityMismatchError,
  PeerNotFoundError,
  PeerlinkError,
  TunnelPeerNotFoundError,
  TunnelUnavailableError,
  throwIfAborted,
} from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { type TunnelServerSpec, parseTunnelSpec } from '../server-spec.js'
import { openTunnelPeerStream } from '../tunnel/tunnel-peer-connector.js'
import { TunnelPeerListener, type TunnelPeerRequest } from '../tunnel/tunnel-peer-listener.js'
import { type TunnelSecureConnection, secureTunnelStream } from '../tunnel/tunnel-secure-connection.js'
import type { WebSocketDuplex } from '../tunnel/websocket-duplex.js'
import { MAIN_STREAM_LABEL, PeerConnection } from './peer-connection.js'
import type { AttemptEvent, ConnectionInfo, PeerOptions } from './peer-options.js'
import type { ReflexiveCache } from './reflexive-cache.js'
import { DEFAULT_TUNNEL_FALLBACK_DELAY, type PeerTunnelOptions } from './tunnel-options.js'
import { abortable } from '../abortable.js'
import { positiveMs } from './option-checks.js'

const DEFAULT_TUNNEL_CONNECT_TIMEOUT = 10_000

/** Why the tunnel attempt of a `connect()` started (the `'tunnel'` attempt event's `detail.reason`). */
export type TunnelStartReason = 'udp-blocked' | 'udp-failed' | 'deadline' | 'only-path'

/** The UDP attempt a race runs: resolves with its verified connection; aborted through `signal`. */
export type UdpAttemptRunner = (signal: AbortSignal, onEvent: (event: AttemptEvent) => void) => Promise<PeerConnection>

/** What a {@link TunnelPath} needs from its Peer. */
export interface TunnelPathContext {
  identity: Identity
  /** The peer's options (`tunnels`, `tunnel`). */
  options: PeerOptions
  handshakeTimeout: number
  /** Where UDP reachability is known from. */
  reflexive: ReflexiveCache
  /** Attempt events (the Peer's `'attempt'`). */
  emit: (event: AttemptEvent) => void
  /** A verified incoming connection over the tunnel. */
  onConnection: (connection: PeerConnection) => void
  /** An incoming tunnel connection that failed (the Peer's `'incoming-error'`). */
  onError: (error: Error, peerId: string) => void
}

/** Options of {@link TunnelPath.connect}. */
export interface TunnelRaceOptions {
  /** The UDP attempt to race, if the paths allow one. */
  udp: UdpAttemptRunner | undefined
  /** Milliseconds for the whole connection. */
  timeout: number
  /** Aborts everything (rejects with `AbortError`). */
  signal: AbortSignal | undefined
  /**
   * Whether the UDP attempt may use TURN relays (over TCP/TLS too): then blocked UDP
   * does not start the tunnel at once — TURN comes first on the ladder — and the tunnel
   * waits for the fallback delay or the attempt's failure.
   * @default false
   */
  relayed?: boolean
}

/**
 * Parses and checks `options.tunnels` and `options.tunnel` (throws at once on misuse).
 *
 * @throws InvalidArgumentError or `InvalidServerSpecError` for bad entries.
 */
export function tunnelServerList(options: PeerOptions): TunnelServerSpec[] {
  const tunnels = options.tunnels ?? []
  if (!Array.isArray(tunnels)) throw new InvalidArgumentError('tunnels must be an array of ws:// or wss:// URLs')
  const specs = tunnels.map((entry: unknown) => {
    if (typeof entry === 'string') return parseTunnelSpec(entry)
    if (entry !== null && typeof entry === 'object' && (entry as TunnelServerSpec).kind === 'tunnel') return entry as TunnelServerSpec
    throw new InvalidArgumentError('tunnels entries must be ws:// / wss:// URLs or parsed tunnel specs')
  })
  const tunnel: PeerTunnelOptions = options.tunnel ?? {}
  if (tunnel === null || typeof tunnel !== 'object') throw new InvalidArgumentError('tunnel must be an object')
  positiveMs(tunnel.fallbackDelay, DEFAULT_TUNNEL_FALLBACK_DELAY, 'tunnel.fallbackDelay')
  positiveMs(tunnel.connectTimeout, DEFAULT_TUNNEL_CONNECT_TIMEOUT, 'tunnel.connectTimeout')
  if (tunnel.token !== undefined && (typeof tunnel.token !== 'string' || tunnel.token === '')) throw new InvalidArgumentError('tunnel.token must be a non-empty string')
  return specs
}

/** The tunnel step of one peer (see the module notes). */
export class TunnelPath {
  /** The tunnel servers. */
  readonly servers: readonly TunnelServerSpec[]
  /** Milliseconds the UDP attempt gets before the tunnel starts too. */
  readonly fallbackDelay: number
  readonly #ctx: TunnelPathContext
  readonly #options: PeerTunnelOptions
  readonly #connectTimeout: number
  readonly #pending = new Set<TunnelSecureConnection>()
  /** Races in progress: each ends with the given error when the peer closes. */
  readonly #races = new Set<(error: Error) => void>()
  #listener: TunnelPeerListener | undefined
  #registered: Promise<void> | undefined
  #closed = false

  /** @throws InvalidArgumentError or `InvalidServerSpecError` for bad options; at least one server is needed. */
  constructor(ctx: TunnelPathContext) {
    this.#ctx = ctx
    this.servers = tunnelServerList(ctx.options)
    if (this.servers.length === 0) throw new InvalidArgumentError('a tunnel path needs at least one tunnel server')
    this.#options = ctx.options.tunnel ?? {}
    this.fallbackDelay = positiveMs(this.#options.fallbackDelay, DEFAULT_TUNNEL_FALLBACK_DELAY, 'tunnel.fallbackDelay')
    this.#connectTimeout = positiveMs(this.#options.connectTimeout, DEFAULT_TUNNEL_CONNECT_TIMEOUT, 'tunnel.connectTimeout')
  }

  /** The URL of the tunnel server the peer is registered at now, if any. */
  get server(): string | undefined {
    return this.#listener?.server
  }

  /**
   * Registers the peer on the tunnel servers (once; it stays registered and reconnects
   * by itself). Resolves once a server has it; rejects when every server failed once
   * (the listener keeps trying in the background) or with `AbortError`.
   */
  listen(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new AbortError('The peer is closing'))
    if (this.#listener?.state === 'listening') return Promise.resolve()
    if (this.#listener === undefined) {
      const listener = new TunnelPeerListener({
        servers: this.servers,
        identity: this.#ctx.identity,
        connectTimeout: this.#connectTimeout,
        handshakeTimeout: this.#ctx.handshakeTimeout,
        ...(this.#options.token === undefined ? {} : { token: this.#options.token }),
        ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
      })
      this.#listener = listener
      listener.on('connection', this.#onIncoming)
      listener.on('handshakeError', (error, request) => this.#ctx.onError(error, request.from))
      this.#registered = firstRegistration(listener)
      listener.start()
    }
    return abortable(this.#registered!, signal)
  }

  readonly #onIncoming = (secure: TunnelSecureConnection, request: TunnelPeerRequest): void => {
    const started = performance.now()
    if (this.#closed) {
      secure.destroy()
      return
    }
    this.#pending.add(secure)
    const mux = new StreamMux(secure, { isInitiator: false })
    waitForMainStream(mux, this.#ctx.handshakeTimeout).then(
      (opened) => {
        this.#pending.delete(secure)
        if (opened === undefined) {
          // The connecting side closed this path before using it: another path won.
          mux.destroy()
          secure.destroy()
          return
        }
        const ms = Math.round(performance.now() - started)
        const server = this.#listener?.server
        const info: ConnectionInfo = {
          remotePeerId: secure.remotePeerId,
          initiator: false,
          path: 'tunnel',
          local: { address: '', port: 0, type: 'tunnel' },
          remote: { address: request.remote.host, port: request.remote.port, type: 'tunnel' },
          rttMs: undefined,
          ms,
          phases: { iceMs: 0, handshakeMs: ms },
          ...(server === undefined ? {} : { server }),
        }
        const connection = new PeerConnection({ mux, secure, agent: undefined, main: opened.main, early: opened.early, info, onClose: () => {} })
        opened.stop()
        this.#ctx.onConnection(connection)
      },
      (err: unknown) => {
        this.#pending.delete(secure)
        mux.destroy()
        secure.destroy()
        this.#ctx.onError(err as Error, secure.remotePeerId)
      },
    )
  }

  /**
   * Connects to `peerId`, racing the tunnel against `udp` (see the module notes).
   * Resolves with the first verified connection.
   *
   * @throws `PeerIdentityMismatchError` (rejects) when a path reached another key and none reached `peerId`.
   * @throws `PeerNotFoundError` when no path knows the peer; `ConnectFailedError` for the other failures (its `cause` holds each path's error); `AbortError`.
   */
  connect(peerId: string, options: TunnelRaceOptions): Promise<PeerConnection> {
    if (options.signal?.aborted === true) return Promise.reject(new AbortError('The connection attempt was aborted', { cause: options.signal.reason }))
    if (this.#closed) return Promise.reject(new AbortError('The peer is closing'))
    const started = performance.now()
    const ms = (): number => Math.round(performance.now() - started)
    const emit = (step: AttemptEvent['step'], detail: Record<string, unknown>): void => this.#ctx.emit({ peerId, initiator: true, step, ms: ms(), detail })
    const udpController = new AbortController()
    const tunnelController = new AbortController()
    const errors: Array<{ path: 'udp' | 'tunnel'; error: Error }> = []
    let udpRunning = options.udp !== undefined
    let tunnelState: 'idle' | 'running' | 'done' = 'idle'

    return new Promise<PeerConnection>((resolve, reject) => {
      let settled = false
      let deadline: ReturnType<typeof setTimeout> | undefined
      const timeout = setTimeout(() => {
        finish(undefined, new ConnectFailedError(`No connection to ${peerId} within the timeout`, { cause: combinedCause(errors) }))
      }, options.timeout)
      const onAbort = (): void => finish(undefined, new AbortError('The connection attempt was aborted', { cause: options.signal?.reason }))
      let unsubscribe = (): void => {}

      const finish = (connection: PeerConnection | undefined, error?: Error): void => {
        if (settled) {
          connection?.destroy()
          return
        }
        settled = true
        this.#races.delete(end)
        clearTimeout(timeout)
        clearTimeout(deadline)
        unsubscribe()
        options.signal?.removeEventListener('abort', onAbort)
        const reason = error ?? new AbortError('Another path connected first')
        udpController.abort(reason)
        tunnelController.abort(reason)
        if (connection !== undefined) resolve(connection)
        else reject(error)
      }
      const failedAll = (): void => {
        if (!settled && !udpRunning && tunnelState === 'done') finish(undefined, this.#failure(peerId, errors))
      }
      const startTunnel = (reason: TunnelStartReason): void => {
        if (settled || tunnelState !== 'idle' || this.#closed) return
        tunnelState = 'running'
        clearTimeout(deadline)
        unsubscribe()
        emit('tunnel', { reason, servers: this.servers.map((spec) => spec.url) })
        this.#connectTunnel(peerId, tunnelController.signal, started).then(
          (connection) => {
            emit('verified', { path: 'tunnel', ms: connection.info.ms, server: connection.info.server })
            finish(connection)
          },
          (err: unknown) => {
            tunnelState = 'done'
            if (settled) return
            const error = err instanceof Error ? err : new Error(String(err))
            errors.push({ path: 'tunnel', error })
            emit('failed', { path: 'tunnel', code: error instanceof PeerlinkError ? error.code : 'ERR_INTERNAL', message: error.message })
            failedAll()
          },
        )
      }

      const end = (error: Error): void => finish(undefined, error)
      this.#races.add(end)
      if (options.signal !== undefined) options.signal.addEventListener('abort', onAbort, { once: true })
      const udp = options.udp
      if (udp === undefined) {
        startTunnel('only-path')
        return
      }
      let working = false
      udp(udpController.signal, (event) => {
        // A working pair: the handshake on it follows at once; no need for the tunnel yet.
        if (event.step !== 'selected') return
        working = true
        clearTimeout(deadline)
      }).then(
        (connection) => finish(connection),
        (err: unknown) => {
          udpRunning = false
          if (settled) return
          errors.push({ path: 'udp', error: err instanceof Error ? err : new Error(String(err)) })
          if (tunnelState === 'idle') startTunnel('udp-failed')
          else failedAll()
        },
      )
      if (options.relayed !== true) {
        if (this.#ctx.reflexive.udp === 'blocked') {
          // Known from the last gathering; look again for the next connection.
          this.#ctx.reflexive.refresh()
          startTunnel('udp-blocked')
          return
        }
        unsubscribe = this.#ctx.reflexive.onUdp((state) => {
          if (state === 'blocked') startTunnel('udp-blocked')
        })
      }
      if (!working) deadline = setTimeout(() => startTunnel('deadline'), this.fallbackDelay)
    })
  }

  /** One tunnel attempt: each server in turn until one joins us, then the verified handshake. */
  async #connectTunnel(peerId: string, signal: AbortSignal, started: number): Promise<PeerConnection> {
    const failures: Error[] = []
    for (const spec of this.servers) {
      throwIfAborted(signal)
      let raw: WebSocketDuplex
      try {
        raw = await openTunnelPeerStream({
          server: spec,
          peerId,
          from: this.#ctx.identity.peerId,
          timeout: this.#connectTimeout,
          signal,
          ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
        })
      } catch (err) {
        if (err instanceof AbortError || signal.aborted) throw err
        failures.push(err as Error)
        continue
      }
      const joinedMs = Math.round(performance.now() - started)
      const local = localAddressOf(raw)
      const secure = await secureTunnelStream({ stream: raw, isInitiator: true, keyPair: this.#ctx.identity.keyPair, expectedPeerId: peerId, handshakeTimeout: this.#ctx.handshakeTimeout, signal })
      if (signal.aborted) {
        // Another path won meanwhile: close this one before its main stream exists, so
        // the listening side never takes it for a connection.
        void secure.close({ timeout: 1_000 })
        throw new AbortError('Another path connected first')
      }
      const ms = Math.round(performance.now() - started)
      const info: ConnectionInfo = {
        remotePeerId: peerId,
        initiator: true,
        path: 'tunnel',
        local: { address: local.address, port: local.port, type: 'tunnel' },
        remote: { address: spec.host, port: spec.port, type: 'tunnel' },
        rttMs: undefined,
        ms,
        phases: { iceMs: joinedMs, handshakeMs: ms - joinedMs },
        server: spec.url,
      }
      const mux = new StreamMux(secure, { isInitiator: true })
      const main = mux.openStream({ label: MAIN_STREAM_LABEL })
      return new PeerConnection({ mux, secure, agent: undefined, main, info, onClose: () => {} })
    }
    throw failures.find((e) => e instanceof TunnelPeerNotFoundError) ?? failures.at(-1) ?? new TunnelUnavailableError('no tunnel server could be reached')
  }

  /** The error of a race every path lost. */
  #failure(peerId: string, errors: ReadonlyArray<{ path: 'udp' | 'tunnel'; error: Error }>): Error {
    const mismatch = errors.find((e) => e.error instanceof PeerIdentityMismatchError)
    if (mismatch !== undefined) return mismatch.error
    const aborted = errors.find((e) => e.error instanceof AbortError)
    if (aborted !== undefined && errors.length === 1) return aborted.error
    const notFound = (e: Error): boolean => e instanceof PeerNotFoundError || e instanceof TunnelPeerNotFoundError
    if (errors.length > 0 && errors.every((e) => notFound(e.error))) return new PeerNotFoundError(peerId, { cause: combinedCause(errors) })
    if (errors.length === 1 && errors[0]!.error instanceof ConnectFailedError) return errors[0]!.error
    const summary = [...errors].sort((a, b) => (a.path === b.path ? 0 : a.path === 'udp' ? -1 : 1)).map((e) => `${e.path === 'udp' ? 'UDP' : 'tunnel'}: ${e.error.message}`).join('; ')
    return new ConnectFailedError(`No path to ${peerId} (${summary})`, { cause: combinedCause(errors) })
  }

  /** Unregisters from the tunnel servers and drops incoming connections not yet handed over. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    for (const end of [...this.#races]) end(new AbortError('The peer is closing'))
    for (const secure of this.#pending) secure.destroy()
    this.#pending.clear()
    await this.#listener?.close()
  }
}

function combinedCause(errors: ReadonlyArray<{ error: Error }>): Error | undefined {
  if (errors.length === 0) return undefined
  if (errors.length === 1) return errors[0]!.error
  return new AggregateError(
    errors.map((e) => e.error),
    'every path failed',
  )
}

/** Resolves once the listener is registered; rejects when every server failed once (it keeps trying). */
function firstRegistration(listener: TunnelPeerListener): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failures = 0
    const done = (err?: Error): void => {
      listener.off('listening', onListening)
      listener.off('disconnected', onDisconnected)
      listener.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onListening = (): void => done()
    const onDisconnected = (error: PeerlinkError | undefined): void => {
      if (++failures >= listener.serverCount || error === undefined) done(error ?? new TunnelUnavailableError('no tunnel server could be reached'))
    }
    const onClose = (error: PeerlinkError | undefined): void => done(error ?? new AbortError('The tunnel listener closed'))
    listener.on('listening', onListening)
    listener.on('disconnected', onDisconnected)
    listener.on('close', onClose)
  })
}

/**
 * The connecting side's main stream on an incoming tunnel connection, and the streams it
 * opened right after it; `undefined` when the session closed before (the connecting side
 * chose another path).
 *
 * @throws ConnectFailedError (rejects) when it does not come within `timeout` ms.
 */
function waitForMainStream(mux: StreamMux, timeout: number): Promise<{ main: MuxStream; early: MuxStream[]; stop: () => void } | undefined> {
  return new Promise((resolve, reject) => {
    let main: MuxStream | undefined
    const early: MuxStream[] = []
    const timer = setTimeout(() => {
      cleanup()
      reject(new ConnectFailedError(`The main stream did not open within ${timeout} ms of the tunnel handshake`))
    }, timeout)
    const onStream = (stream: MuxStream): void => {
      if (main !== undefined) early.push(stream)
      else if (stream.label === MAIN_STREAM_LABEL) {
        main = stream
        clearTimeout(timer)
        mux.off('close', onClose)
        resolve({ main, early, stop: () => mux.off('stream', onStream) })
      }
    }
    const onClose = (): void => {
      cleanup()
      resolve(undefined)
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      mux.off('stream', onStream)
      mux.off('close', onClose)
    }
    mux.on('stream', onStream)
    mux.once('close', onClose)
    // Errors end in 'close'; this keeps them from being unhandled meanwhile.
    mux.on('error', () => {})
  })
}

/** The local address of the TCP connection under a tunnel WebSocket (best effort). */
function localAddressOf(raw: WebSocketDuplex): { address: string; port: number } {
  const socket = (raw.webSocket as unknown as { _socket?: Socket })._socket
  return { address: socket?.localAddress ?? '', port: socket?.localPort ?? 0 }
}
