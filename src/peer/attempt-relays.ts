/**
 * The relay candidates of one connection attempt: leases the peer's TURN allocations,
 * opens a relay shim for each (so a stream can start on it the moment its pair is
 * selected), hands them to the ICE agent, and at the end releases every one the
 * connection does not run on.
 *
 * @module
 */
import { PeerlinkError } from '../errors.js'
import { addressKey } from '../ice/canonical-address.js'
import type { IceAgent } from '../ice/ice-agent.js'
import type { PeerSocket } from '../transport/peer-socket.js'
import type { TurnRelayEndpoint } from '../turn/turn-relay-endpoint.js'
import { TurnRelayShim } from '../turn/turn-relay-shim.js'
import type { AttemptEvent } from './peer-options.js'
import type { ReflexiveCache } from './reflexive-cache.js'
import type { TurnRelayLease, TurnRelayPool } from './turn-relays.js'

/** Options of {@link AttemptRelays}. */
export interface AttemptRelaysOptions {
  /** The peer's relays. */
  pool: TurnRelayPool
  /** The peer's socket (the shims' stream sockets share its udx-native instance). */
  socket: PeerSocket
  /** The attempt's ICE agent. */
  agent: IceAgent
  /** The peer's UDP reachability (UDP blocked: relay pairs are nominated at once). */
  reflexive: ReflexiveCache
  /** Reports `relay` (a relay candidate gathered) and `relay-failed` steps. */
  emit: (step: AttemptEvent['step'], detail: Record<string, unknown>) => void
  /** Called once every server has answered or failed, with the number of relays gathered. */
  onSettled: (count: number) => void
}

/** A relay the connection runs on; `close()` ends the shim and the lease. */
export interface KeptRelay {
  /** The relay. */
  relay: TurnRelayEndpoint
  /** Closes the shim and releases the lease. Idempotent. */
  close(): void
}

/** How long a closed connection's shim keeps relaying while its stream finishes. */
export const SHIM_CLOSE_GRACE_MS = 2000

interface Entry {
  lease: TurnRelayLease
  shim: TurnRelayShim
}

/** See the module notes. */
export class AttemptRelays {
  readonly #options: AttemptRelaysOptions
  readonly #entries = new Map<string, Entry>()
  readonly #kept = new Map<string, TurnRelayShim>()
  #pending = 0
  #gathered = 0
  #closed = false

  constructor(options: AttemptRelaysOptions) {
    this.#options = options
  }

  /** Servers not answered yet. */
  get pending(): number {
    return this.#pending
  }

  /** Starts leasing a relay on every server (once). */
  gather(): void {
    const { pool } = this.#options
    this.#pending = pool.servers.length
    const started = performance.now()
    // UDP known to be blocked: no UDP Allocate waiting for its timeout.
    const udp = this.#options.reflexive.udp !== 'blocked'
    for (const server of pool.servers) {
      pool
        .acquire(server, { udp })
        .then(async (lease) => {
          if (this.#closed) {
            lease.release()
            return
          }
          let shim: TurnRelayShim
          try {
            shim = await TurnRelayShim.open(lease.relay, { sibling: this.#options.socket })
          } catch (err) {
            lease.release()
            throw err
          }
          if (this.#closed) {
            void shim.close()
            lease.release()
            return
          }
          this.#add(lease, shim, Math.round(performance.now() - started))
        })
        .catch((err: unknown) => {
          if (this.#closed) return
          this.#options.emit('relay-failed', {
            server: server.url,
            code: err instanceof PeerlinkError ? err.code : 'ERR_INTERNAL',
            message: err instanceof Error ? err.message : String(err),
          })
        })
        .finally(() => {
          this.#pending--
          if (this.#pending === 0 && !this.#closed) this.#options.onSettled(this.#gathered)
        })
    }
  }

  #add(lease: TurnRelayLease, shim: TurnRelayShim, ms: number): void {
    const { agent } = this.#options
    const { relay } = lease
    const key = addressKey(relay.relayed.host, relay.relayed.port)
    if (this.#entries.has(key)) {
      void shim.close()
      lease.release()
      return
    }
    this.#entries.set(key, { lease, shim })
    const candidate = agent.addRelay(relay)
    if (candidate === undefined) return
    this.#gathered++
    this.#options.emit('relay', { server: relay.url, transport: relay.transport, relayed: `${relay.relayed.host}:${relay.relayed.port}`, allocationMs: ms })
    // No UDP to the TURN server (it answered over TCP/TLS only), or no UDP at all: no
    // direct pair is coming, so the relay pairs need not wait.
    if (relay.transport !== 'udp' || this.#options.reflexive.udp === 'blocked') agent.nominateRelaysNow()
  }

  /** The shim of the relay with relayed address `key` (`addressKey` form). */
  shimFor(key: string): TurnRelayShim | undefined {
    return this.#entries.get(key)?.shim
  }

  /**
   * Every open shim, by relayed address: the attempt's and the ones kept for the
   * connection (path recovery moves the stream between them).
   */
  get shims(): ReadonlyMap<string, TurnRelayShim> {
    const all = new Map(this.#kept)
    for (const [key, entry] of this.#entries) all.set(key, entry.shim)
    return all
  }

  /** Takes the relay `key` out of this attempt for the connection; {@link AttemptRelays.close} leaves it alone. */
  keep(key: string): KeptRelay | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    this.#entries.delete(key)
    this.#kept.set(key, entry.shim)
    let closed = false
    return {
      relay: entry.lease.relay,
      close: () => {
        if (closed) return
        closed = true
        this.#kept.delete(key)
        // The stream's last packets still need the shim for a moment (see TurnRelayShim.close).
        this.#options.pool.track(entry.shim.close({ grace: SHIM_CLOSE_GRACE_MS }).finally(() => entry.lease.release()))
      },
    }
  }

  /**
   * Closes every shim and releases every lease not kept (relays still being allocated
   * are released when they come). `grace`: see `TurnRelayShim.close` (a connection that
   * kept the attempt's relays for path recovery may run on any of them). Idempotent.
   */
  close(options: { grace?: number } = {}): void {
    this.#closed = true
    for (const { lease, shim } of this.#entries.values()) this.#options.pool.track(shim.close(options).finally(() => lease.release()))
    this.#entries.clear()
  }
}
