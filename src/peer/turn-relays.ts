/**
 * The peer's TURN relays: the servers of `PeerOptions.turn`, and one shared allocation
 * per server for the attempts that need it.
 *
 * TURN over UDP is sent from the peer's one socket, and a server keeps one allocation
 * per client 5-tuple (RFC 8656 §2.2): two attempts at once cannot each have their own.
 * So attempts lease the server's allocation: it is made by the first, shared by the
 * attempts and connections that follow, and deallocated when the last lease ends.
 *
 * @module
 */
import { InvalidArgumentError, SocketClosedError } from '../errors.js'
import { parseTurnSpec } from '../server-spec.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import { checkTurnCredentials, turnRestCredentials, type TurnCredentials } from '../turn/credentials.js'
import { allocateTurnRelay, type TurnRelayServer } from '../turn/turn-relay-allocator.js'
import type { TurnRelayEndpoint } from '../turn/turn-relay-endpoint.js'
import type { TurnTlsOptions } from '../turn/turn-transport.js'
// Referenced from TSDoc only.
import type { PeerOptions } from './peer-options.js'

/** A TURN server of {@link PeerOptions.turn} (the shape of WebRTC's `RTCIceServer`). */
export interface PeerTurnServer {
  /**
   * One URI or several sharing the credentials: `turn:HOST:PORT?transport=udp|tcp`,
   * `turns:HOST:PORT` (optionally `#CERT_HASH` to pin a self-signed certificate).
   */
  urls: string | readonly string[]
  /**
   * Long-term credential user name (with `credential`).
   * @default undefined
   */
  username?: string
  /**
   * Long-term credential password (with `username`).
   * @default undefined
   */
  credential?: string
  /**
   * TURN REST API shared secret (coturn's `static-auth-secret`): time-limited credentials
   * are derived from it (`username` then is the optional user id appended to the expiry).
   * @default undefined
   */
  secret?: string
  /**
   * TLS settings for `turns:` URIs (e.g. a CA).
   * @default {}
   */
  tls?: TurnTlsOptions
}

/**
 * Checks and expands `PeerOptions.turn` into one entry per URI.
 *
 * @throws InvalidArgumentError / InvalidServerSpecError on a malformed entry.
 */
export function turnServerList(entries: ReadonlyArray<PeerTurnServer> | undefined): TurnRelayServer[] {
  if (entries === undefined) return []
  if (!Array.isArray(entries)) throw new InvalidArgumentError('turn must be an array of { urls, username, credential } or { urls, secret }')
  const servers: TurnRelayServer[] = []
  for (const entry of entries as ReadonlyArray<PeerTurnServer>) {
    if (entry === null || typeof entry !== 'object') throw new InvalidArgumentError('turn entries must be { urls, username, credential } or { urls, secret }')
    const urls = typeof entry.urls === 'string' ? [entry.urls] : entry.urls
    if (!Array.isArray(urls) || urls.length === 0) throw new InvalidArgumentError('turn entry needs urls')
    const credentials = credentialsOf(entry)
    for (const url of urls as readonly string[]) {
      if (typeof url !== 'string') throw new InvalidArgumentError('turn urls must be strings')
      const hash = url.indexOf('#')
      parseTurnSpec(hash < 0 ? url : url.slice(0, hash))
      const server: TurnRelayServer = { url, credentials, ...(entry.tls === undefined ? {} : { tls: entry.tls }) }
      // TURN REST API credentials expire: each allocation derives fresh ones.
      if (entry.secret !== undefined) Object.defineProperty(server, 'credentials', { get: () => credentialsOf(entry), enumerable: true })
      servers.push(server)
    }
  }
  return servers
}

function credentialsOf(entry: PeerTurnServer): TurnCredentials {
  if (entry.secret !== undefined) {
    // One day: an allocation is refreshed with the credentials it was made with.
    return turnRestCredentials({ secret: entry.secret, ...(entry.username === undefined ? {} : { user: entry.username }) })
  }
  const credentials = { username: entry.username as string, password: entry.credential as string }
  checkTurnCredentials(credentials)
  return credentials
}

/** A use of a shared relay; {@link TurnRelayLease.release} ends it (idempotent). */
export interface TurnRelayLease {
  /** The relay. */
  readonly relay: TurnRelayEndpoint
  /** Ends this use; the allocation is closed when no lease is left. */
  release(): void
}

interface PoolEntry {
  relay: Promise<TurnRelayEndpoint>
  leases: number
}

/** Options of {@link TurnRelayPool}. */
export interface TurnRelayPoolOptions {
  /**
   * Milliseconds without an answer over UDP before TURN over TCP is tried.
   * @default 1000
   */
  udpTimeout?: number
}

/** One shared allocation per TURN server (see the module notes). */
export class TurnRelayPool {
  /** The servers. */
  readonly servers: readonly TurnRelayServer[]
  readonly #socket: PeerSocket
  readonly #udpTimeout: number | undefined
  readonly #entries = new Map<string, PoolEntry>()
  readonly #controller = new AbortController()
  readonly #cleanups = new Set<Promise<void>>()

  constructor(socket: PeerSocket, servers: readonly TurnRelayServer[], options: TurnRelayPoolOptions = {}) {
    this.#socket = socket
    this.servers = servers
    this.#udpTimeout = options.udpTimeout
  }

  /**
   * Leases the allocation on `server`, making it if there is none (or the last one was
   * lost); `udp: false` makes a new one over TCP/TLS only (UDP is known to be blocked). Rejects like `allocateTurnRelay`, or with `SocketClosedError` once closed.
   */
  async acquire(server: TurnRelayServer, options: { udp?: boolean } = {}): Promise<TurnRelayLease> {
    if (this.#controller.signal.aborted) throw new SocketClosedError('The peer is closing')
    let entry = this.#entries.get(server.url)
    if (entry !== undefined) {
      const existing = await entry.relay.catch(() => undefined)
      if (existing === undefined || existing.closed) {
        if (this.#entries.get(server.url) === entry) this.#entries.delete(server.url)
        entry = undefined
      }
    }
    if (entry === undefined) {
      const relay = allocateTurnRelay({
        socket: this.#socket,
        server,
        ...(this.#udpTimeout === undefined ? {} : { udpTimeout: this.#udpTimeout }),
        ...(options.udp === false ? { udp: false } : {}),
        signal: this.#controller.signal,
      })
      entry = { relay, leases: 0 }
      const created = entry
      this.#entries.set(server.url, created)
      relay.catch(() => {
        if (this.#entries.get(server.url) === created) this.#entries.delete(server.url)
      })
    }
    entry.leases++
    const leased = entry
    let relay: TurnRelayEndpoint
    try {
      relay = await leased.relay
    } catch (err) {
      leased.leases--
      throw err
    }
    let released = false
    return {
      relay,
      release: () => {
        if (released) return
        released = true
        if (--leased.leases > 0) return
        if (this.#entries.get(server.url) === leased) this.#entries.delete(server.url)
        void relay.close()
      },
    }
  }

  /** Keeps a cleanup (a closing relay shim) that {@link TurnRelayPool.close} waits for. */
  track(cleanup: Promise<void>): void {
    const settled = cleanup.catch(() => {})
    this.#cleanups.add(settled)
    void settled.then(() => this.#cleanups.delete(settled))
  }

  /** Deallocates every relay (the peer is closing), after the cleanups in progress. */
  async close(): Promise<void> {
    this.#controller.abort(new SocketClosedError('The peer is closing'))
    await Promise.all([...this.#cleanups])
    const entries = [...this.#entries.values()]
    this.#entries.clear()
    await Promise.all(entries.map((entry) => entry.relay.then((relay) => relay.close(), () => {})))
  }
}
