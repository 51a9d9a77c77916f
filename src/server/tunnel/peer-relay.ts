/**
 * The tunnel server's peer path: listening peers keep a socket registered under their
 * PeerId (`…/v1/peer/listen`, logged in with a signature of their identity); a peer
 * that connects to that PeerId (`…/v1/peer/connect?peer=…&from=…`) has its socket
 * joined to a transfer socket the listener opens for it. The two peers then run a
 * verified Noise handshake through the join: the server relays only ciphertext.
 *
 * Registrations are fleet-wide (in the {@link TunnelState}'s name table, under
 * `@<PeerId>`): a connect socket that reaches a server other than the listener's gets
 * `peer-moved` with the URL of the right one. Listeners follow the device rules:
 * a token from the server's list, or a PeerId in `allowedPeerIds` (or `*`); they count
 * as devices (`maxDevices`, the fleet's load), their sockets per IP address against
 * `maxConnectionsPerIp`, their connections against `maxConnectionsPerDevice`. Anyone may
 * connect to a registered listener, as anyone may reach a device's public port: the
 * listener's Noise handshake decides whom it talks to.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import http, { type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { isPeerId } from '../../identity/peer-id.js'
import { joinStreams } from '../../tunnel/join-streams.js'
import { TUNNEL_NONCE_BYTES, TUNNEL_PROTOCOL_VERSION, type TunnelAddress, type TunnelErrorReason } from '../../tunnel/tunnel-messages.js'
import { verifyTunnelPeerListen } from '../../tunnel/tunnel-peer-auth.js'
import {
  PEER_CONNECT_PATH,
  type TunnelPeerErrorReason,
  type TunnelPeerListenMessage,
  type TunnelPeerListenerMessage,
  type TunnelPeerServerMessage,
  decodeTunnelPeerListenerMessage,
  encodeTunnelPeerMessage,
} from '../../tunnel/tunnel-peer-messages.js'
import { WebSocketDuplex } from '../../tunnel/websocket-duplex.js'
import type { TransferStream } from '../../tunnel/websocket-stream.js'
import { CONTROL_CLOSE_CODES } from './control-session.js'
import { remoteOf } from './http-proxy.js'
import type { PendingConnections, PendingFailure } from './pending-connections.js'
import { TokenList } from './token-list.js'
import type { ResolvedTunnelServerOptions } from './tunnel-server-options.js'
import type { TunnelServerStats } from './tunnel-server-stats.js'
import type { TunnelState } from './tunnel-state.js'

/** What a {@link PeerRelay} works with. */
export interface PeerRelayContext {
  /** The server's options. */
  readonly options: ResolvedTunnelServerOptions
  /** Registrations (fleet-wide) and the fleet registry. */
  readonly state: TunnelState
  /** Counters to keep. */
  readonly stats: TunnelServerStats
  /** Connections waiting for transfer sockets (shared with devices). */
  readonly pending: PendingConnections
  /** The channel binding listeners sign (certificate hash, or zeros). */
  readonly binding: Uint8Array
}

/** The state-table key of a listener's registration. */
export function peerRegistrationKey(peerId: string): string {
  return `@${peerId}`
}

interface Listener {
  readonly ws: WebSocket
  readonly host: string
  readonly createdAt: number
  nonce: Uint8Array | undefined
  state: 'challenged' | 'admitting' | 'ready' | 'closed'
  peerId: string
  secret: Uint8Array | undefined
  alive: boolean
  connections: number
  tokens: number
  tokensAt: number
}

/** Listening peers and the joins to them (see the module notes). */
export class PeerRelay {
  readonly #options: ResolvedTunnelServerOptions
  readonly #state: TunnelState
  readonly #stats: TunnelServerStats
  readonly #pending: PendingConnections
  readonly #binding: Uint8Array
  readonly #tokens: TokenList
  readonly #serverId: string
  readonly #sockets = new Set<Listener>()
  readonly #listeners = new Map<string, Listener>()
  readonly #perIp = new Map<string, number>()
  readonly #connects = new Set<WebSocket>()
  readonly #streams = new Set<TransferStream>()
  readonly #listenWss: WebSocketServer
  readonly #connectWss: WebSocketServer
  readonly #timers: Array<ReturnType<typeof setInterval>>
  #closing = false

  constructor(context: PeerRelayContext) {
    const options = context.options
    this.#options = options
    this.#state = context.state
    this.#stats = context.stats
    this.#pending = context.pending
    this.#binding = context.binding
    this.#tokens = new TokenList(options.tokens)
    this.#serverId = options.serverId
    this.#listenWss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: options.maxMessageBytes * 4 })
    this.#connectWss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: options.maxFrameBytes })
    this.#timers = [
      setInterval(() => this.#heartbeat(), options.heartbeatMs),
      setInterval(() => this.#expireHellos(), Math.max(50, Math.min(1_000, options.helloTimeoutMs / 2))),
    ]
  }

  /** Listeners registered here now. */
  get listeners(): number {
    return this.#listeners.size
  }

  // ---------------------------------------------------------------- listeners

  /** Takes the upgrade of a listen socket. */
  upgradeListen(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.#closing) return void socket.destroy()
    const host = remoteOf(socket).host
    this.#listenWss.handleUpgrade(req, socket, head, (ws) => this.#acceptListener(ws, host))
  }

  #acceptListener(ws: WebSocket, host: string): void {
    ws.on('error', ignore)
    const listener: Listener = { ws, host, createdAt: performance.now(), nonce: undefined, state: 'challenged', peerId: '', secret: undefined, alive: true, connections: 0, tokens: this.#options.messageBurst, tokensAt: performance.now() }
    const count = this.#perIp.get(host) ?? 0
    if (count >= this.#options.maxConnectionsPerIp || this.#closing) {
      this.#stats.refusedLimit++
      this.#refuse(listener, this.#closing ? 'unavailable' : 'limit', `more than ${this.#options.maxConnectionsPerIp} listen sockets from ${host}`)
      return
    }
    this.#perIp.set(host, count + 1)
    this.#sockets.add(listener)
    ws.on('message', (data, isBinary) => this.#onListenerMessage(listener, data as Buffer, isBinary))
    ws.on('ping', () => (listener.alive = true))
    ws.on('pong', () => (listener.alive = true))
    ws.once('close', () => this.#listenerClosed(listener))
    listener.nonce = randomBytes(TUNNEL_NONCE_BYTES)
    this.#send(ws, { type: 'challenge', version: TUNNEL_PROTOCOL_VERSION, nonce: listener.nonce, server: this.#serverId })
  }

  #onListenerMessage(listener: Listener, data: Buffer, isBinary: boolean): void {
    listener.alive = true
    if (listener.state === 'closed') return
    if (!this.#take(listener)) {
      this.#stats.refusedRateLimited++
      return this.#reply(listener, 'rate-limited', `more than ${this.#options.messagesPerSecond} messages per second`)
    }
    if (!isBinary) return this.#protocol(listener, 'protocol', 'messages are binary frames')
    if (data.byteLength > this.#options.maxMessageBytes) return this.#protocol(listener, 'too-large', `message of ${data.byteLength} bytes exceeds ${this.#options.maxMessageBytes}`)
    let message: TunnelPeerListenerMessage
    try {
      message = decodeTunnelPeerListenerMessage(data)
    } catch (err) {
      return this.#protocol(listener, 'protocol', (err as Error).message.slice(0, 200))
    }
    switch (message.type) {
      case 'peer-listen':
        if (listener.state !== 'challenged') return this.#protocol(listener, 'protocol', 'peer-listen was already sent')
        return void this.#admit(listener, message)
      case 'reject':
        if (listener.state !== 'ready') return this.#protocol(listener, 'protocol', 'reject before welcome')
        this.#pending.reject(listenKey(listener.peerId), message.id, message.reason)
        return
      case 'ping':
        this.#send(listener.ws, { type: 'pong', id: message.id })
        return
      case 'pong':
        return
    }
  }

  async #admit(listener: Listener, hello: TunnelPeerListenMessage): Promise<void> {
    const options = this.#options
    if (hello.version !== TUNNEL_PROTOCOL_VERSION) {
      this.#stats.refusedProtocol++
      return this.#refuse(listener, 'version', `this server speaks tunnel protocol version ${TUNNEL_PROTOCOL_VERSION}, not ${hello.version}`, CONTROL_CLOSE_CODES.protocol)
    }
    const nonce = listener.nonce!
    listener.nonce = undefined
    const tokenOk = hello.token !== undefined && this.#tokens.matches(hello.token)
    if (hello.token !== undefined && !tokenOk) return this.#authFailed(listener, 'the token is not valid on this server')
    if (!verifyTunnelPeerListen(hello.peerId, hello.signature, TUNNEL_PROTOCOL_VERSION, nonce, this.#binding)) {
      return this.#authFailed(listener, 'the signature does not prove the key of this PeerId for this server')
    }
    if (!tokenOk && !options.anyPeerId && !options.allowedPeerIds.has(hello.peerId)) return this.#authFailed(listener, 'this PeerId is not allowed on this server')
    const previous = this.#listeners.get(hello.peerId)
    if (previous === undefined && this.#stats.devices >= options.maxDevices) {
      this.#stats.refusedLimit++
      return this.#refuse(listener, 'limit', 'this server has as many devices as it accepts')
    }
    listener.state = 'admitting'
    listener.peerId = hello.peerId
    const key = listenKey(hello.peerId)
    try {
      await this.#state.claimName(peerRegistrationKey(hello.peerId), key, this.#serverId, null)
    } catch {
      listener.state = 'challenged'
      return this.#refuse(listener, 'unavailable', 'the tunnel server cannot register listeners now')
    }
    if ((listener.state as Listener['state']) === 'closed' || this.#closing) {
      if (!this.#closing && !this.#listeners.has(hello.peerId)) void this.#release(hello.peerId)
      return
    }
    const old = this.#listeners.get(hello.peerId)
    if (old !== undefined && old !== listener) {
      // The same peer logged in again (its old socket may be dead without anyone knowing yet).
      this.#offline(old)
      this.#reply(old, 'replaced', 'this peer logged in on another connection')
      closeSoon(old.ws, CONTROL_CLOSE_CODES.replaced, 'replaced')
    }
    listener.state = 'ready'
    listener.secret = new Uint8Array(randomBytes(32))
    this.#listeners.set(hello.peerId, listener)
    this.#stats.devices++
    this.#stats.admissions++
    this.#send(listener.ws, { type: 'peer-welcome', version: TUNNEL_PROTOCOL_VERSION, secret: listener.secret, heartbeatMs: options.heartbeatMs, connectTimeoutMs: options.connectTimeoutMs })
    options.logger.info({ event: 'tunnel-peer-listening', peer: hello.peerId, from: listener.host }, 'tunnel peer listening')
  }

  /** A registered listener leaves (its socket closed, or a newer login replaced it). */
  #offline(listener: Listener): void {
    if (listener.state !== 'ready' || this.#listeners.get(listener.peerId) !== listener) return
    this.#listeners.delete(listener.peerId)
    this.#stats.devices--
    this.#pending.failAll('offline', listenKey(listener.peerId))
  }

  #listenerClosed(listener: Listener): void {
    const wasRegistered = listener.state === 'ready' && this.#listeners.get(listener.peerId) === listener
    this.#offline(listener)
    listener.state = 'closed'
    this.#sockets.delete(listener)
    const left = (this.#perIp.get(listener.host) ?? 1) - 1
    if (left <= 0) this.#perIp.delete(listener.host)
    else this.#perIp.set(listener.host, left)
    if (wasRegistered && !this.#closing) {
      this.#options.logger.info({ event: 'tunnel-peer-offline', peer: listener.peerId }, 'tunnel peer offline')
      void this.#release(listener.peerId)
    }
  }

  async #release(peerId: string): Promise<void> {
    try {
      await this.#state.releaseName(peerRegistrationKey(peerId), listenKey(peerId), this.#serverId)
    } catch (err) {
      this.#options.logger.warn({ event: 'tunnel-state-error', error: (err as Error).message }, 'tunnel state error')
    }
  }

  #authFailed(listener: Listener, text: string): void {
    this.#stats.refusedAuth++
    this.#refuse(listener, 'auth', text)
  }

  /** A protocol violation: answered; fatal before the welcome. */
  #protocol(listener: Listener, code: TunnelErrorReason, text: string): void {
    this.#stats.refusedProtocol++
    if (listener.state === 'ready') this.#reply(listener, code, text)
    else this.#refuse(listener, code, text)
  }

  #refuse(listener: Listener, code: TunnelErrorReason, text: string, closeCode: number = CONTROL_CLOSE_CODES.policy): void {
    this.#reply(listener, code, text)
    closeSoon(listener.ws, closeCode, code)
  }

  #reply(listener: Listener, code: TunnelErrorReason, text: string): void {
    this.#send(listener.ws, { type: 'error', code, message: text.slice(0, 256) })
  }

  #send(ws: WebSocket, message: TunnelPeerServerMessage): void {
    if (ws.readyState !== ws.OPEN) return
    if (ws.bufferedAmount > this.#options.maxBufferedBytes) return void ws.terminate()
    ws.send(encodeTunnelPeerMessage(message))
  }

  #take(listener: Listener): boolean {
    const now = performance.now()
    const { messagesPerSecond, messageBurst } = this.#options
    listener.tokens = Math.min(messageBurst, listener.tokens + ((now - listener.tokensAt) / 1000) * messagesPerSecond)
    listener.tokensAt = now
    if (listener.tokens < 1) return false
    listener.tokens -= 1
    return true
  }

  #heartbeat(): void {
    for (const listener of this.#sockets) {
      if (!listener.alive) {
        listener.ws.terminate()
        continue
      }
      listener.alive = false
      if (listener.ws.readyState === listener.ws.OPEN) listener.ws.ping()
    }
  }

  #expireHellos(): void {
    const deadline = performance.now() - this.#options.helloTimeoutMs
    for (const listener of this.#sockets) {
      if (listener.state !== 'challenged' || listener.createdAt > deadline) continue
      this.#authFailed(listener, 'no peer-listen in time')
    }
  }

  // ---------------------------------------------------------------- connecting peers

  /** Takes the upgrade of a connect socket (`?peer=PEERID&from=PEERID[&moved=1]`). */
  upgradeConnect(req: IncomingMessage, socket: Socket, head: Buffer, url: URL): void {
    const peer = url.searchParams.get('peer') ?? ''
    const from = url.searchParams.get('from') ?? ''
    if (!isPeerId(peer) || !isPeerId(from)) {
      this.#stats.refusedProtocol++
      return refuseUpgrade(socket, 400, 'protocol')
    }
    if (this.#closing) return refuseUpgrade(socket, 503, 'unavailable')
    const remote = remoteOf(socket)
    const moved = url.searchParams.has('moved')
    this.#connectWss.handleUpgrade(req, socket, head, (ws) => void this.#serveConnect(ws, peer, from, remote, moved))
  }

  async #serveConnect(ws: WebSocket, peer: string, from: string, remote: TunnelAddress, moved: boolean): Promise<void> {
    ws.on('error', ignore)
    this.#connects.add(ws)
    ws.once('close', () => this.#connects.delete(ws))
    // Nothing may come before peer-ready: the connecting peer waits for it.
    const early = () => this.#connectError(ws, 'protocol', 'data before peer-ready')
    ws.on('message', early)
    const fail = (code: TunnelPeerErrorReason, text: string) => {
      ws.off('message', early)
      this.#connectError(ws, code, text)
    }
    let holder
    try {
      holder = await this.#state.getName(peerRegistrationKey(peer))
    } catch {
      return fail('unavailable', 'the tunnel server cannot look up peers now')
    }
    if (ws.readyState !== ws.OPEN) return
    if (holder !== undefined && holder.server !== this.#serverId && holder.expiresAt === null && !moved) {
      const target = await this.#state.listServers().then(
        (servers) => servers.find((s) => s.id === holder.server),
        () => undefined,
      )
      if (target !== undefined) {
        this.#stats.redirects++
        const base = target.url.endsWith('/') ? target.url : `${target.url}/`
        ws.off('message', early)
        this.#send(ws, { type: 'peer-moved', url: `${base}${PEER_CONNECT_PATH}?peer=${peer}&from=${from}&moved=1` })
        closeSoon(ws, 1000, 'moved')
        return
      }
    }
    const listener = this.#listeners.get(peer)
    if (listener === undefined || listener.secret === undefined) return fail('not-found', `no peer listens as ${peer} on this tunnel server`)
    if (this.#closing) return fail('unavailable', 'the tunnel server is shutting down')
    if (listener.connections >= this.#options.maxConnectionsPerDevice) {
      this.#stats.refusedLimit++
      return fail('limit', 'the peer has too many connections')
    }
    listener.connections++
    this.#stats.pendingConnections++
    const { id, cancel } = this.#pending.add(
      listenKey(peer),
      listener.secret,
      (stream) => {
        ws.off('close', cancel)
        ws.off('message', early)
        this.#stats.pendingConnections--
        if (ws.readyState !== ws.OPEN || this.#closing) {
          listener.connections--
          stream.destroy()
          return
        }
        this.#stats.activeConnections++
        this.#stats.connections++
        this.#send(ws, { type: 'peer-ready' })
        const joined = new WebSocketDuplex(ws)
        joined.on('error', ignore)
        this.#streams.add(joined)
        this.#streams.add(stream)
        joinStreams(joined, stream, () => {
          this.#streams.delete(joined)
          this.#streams.delete(stream)
          this.#stats.activeConnections--
          listener.connections--
        })
      },
      (reason: PendingFailure) => {
        ws.off('close', cancel)
        this.#stats.pendingConnections--
        listener.connections--
        if (reason === 'timeout') this.#stats.unclaimedConnections++
        else if (reason === 'refused' || reason === 'unreachable' || reason === 'limit') this.#stats.rejectedConnections++
        if (reason !== 'cancelled') fail(...connectFailure(reason))
      },
    )
    ws.once('close', cancel)
    this.#send(listener.ws, { type: 'peer-connection', id, from, remote })
  }

  #connectError(ws: WebSocket, code: TunnelPeerErrorReason, text: string): void {
    this.#send(ws, { type: 'peer-error', code, message: text.slice(0, 256) })
    closeSoon(ws, CONTROL_CLOSE_CODES.policy, code)
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Stops: listeners are told (`unavailable`, close 1001) and their registrations
   * released; joins are cut. Pending connects are failed by the server
   * (`PendingConnections.failAll`). Resolves when every socket is closed.
   */
  async close(): Promise<void> {
    this.#closing = true
    for (const timer of this.#timers) clearInterval(timer)
    const closed: Array<Promise<void>> = []
    const releases: Array<Promise<void>> = []
    for (const listener of this.#sockets) {
      closed.push(closedPromise(listener.ws))
      if (listener.state === 'ready' && this.#listeners.get(listener.peerId) === listener) releases.push(this.#release(listener.peerId))
      this.#reply(listener, 'unavailable', 'the tunnel server is shutting down')
      closeSoon(listener.ws, CONTROL_CLOSE_CODES.goingAway, 'server shutting down', 1_000)
    }
    for (const ws of this.#connects) {
      closed.push(closedPromise(ws))
      if (ws.readyState === ws.OPEN && ![...this.#streams].some((s) => s instanceof WebSocketDuplex && s.webSocket === ws)) this.#connectError(ws, 'unavailable', 'the tunnel server is shutting down')
    }
    for (const stream of this.#streams) stream.terminate()
    await Promise.all([...closed, ...releases])
  }
}

function listenKey(peerId: string): string {
  return `listen:${peerId}`
}

function connectFailure(reason: PendingFailure): [TunnelPeerErrorReason, string] {
  switch (reason) {
    case 'timeout':
      return ['timeout', 'the peer did not take the connection in time']
    case 'limit':
      return ['limit', 'the peer has too many connections']
    case 'refused':
    case 'unreachable':
      return ['refused', 'the peer refused the connection']
    default:
      return ['unavailable', 'the peer went offline or the server is shutting down']
  }
}

function closedPromise(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => (ws.readyState === ws.CLOSED ? resolve() : ws.once('close', () => resolve())))
}

/** Starts the closing handshake; destroys the socket if it has not closed after `graceMs`. */
function closeSoon(ws: WebSocket, code: number, reason: string, graceMs = 2_000): void {
  if (ws.readyState === ws.CLOSED) return
  ws.close(code, reason)
  const timer = setTimeout(() => ws.terminate(), graceMs)
  timer.unref?.()
  ws.once('close', () => clearTimeout(timer))
}

function refuseUpgrade(socket: Socket, status: number, code: string): void {
  socket.on('error', ignore)
  if (!socket.writable) return void socket.destroy()
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nx-peerlink-error: ${code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`)
}

function ignore(): void {}
