/**
 * Where a Beacon keeps its registrations (PeerId tokens and announced rendezvous
 * identifiers) and how it reaches sessions held by other instances of a fleet.
 *
 * One small interface, two implementations: {@link MemoryRegistry} (one process, the
 * default) and `RedisRegistry` (a fleet sharing a Redis server, loaded only when
 * configured). Registrations belong to a session of an instance; they disappear when
 * the session closes, and, in Redis, when their instance stops refreshing its liveness
 * key (it died).
 *
 * @module
 */
import type { TransportAddress } from '../../stun/address.js'

/** What a registration records about its peer. */
export interface RegistryEntry {
  /** The authenticated PeerId of the registering session. */
  peerId: string
  /** The session's addresses as its Beacon saw them. */
  observed: TransportAddress[]
  /** The announcement's id (symmetric mode). */
  mid?: Uint8Array
  /** The announcement's opaque payload (symmetric mode). */
  payload?: Uint8Array
  /** When it was registered (milliseconds since the epoch); lookups return the newest first. */
  at: number
}

/** A registration found by {@link BeaconRegistry.lookup}. */
export interface RegistryRecord {
  /** The instance holding the session. */
  instance: string
  /** The session's id within its instance. */
  session: number
  /** What was registered. */
  entry: RegistryEntry
}

/** Storage of registrations and delivery between instances. */
export interface BeaconRegistry {
  /** This instance's id (unique in the fleet). */
  readonly instanceId: string
  /** `memory` or `redis`. */
  readonly kind: 'memory' | 'redis'
  /** Registers (or replaces) `session`'s entry under `key`. */
  add(key: string, session: number, entry: RegistryEntry): Promise<void>
  /** Removes `session`'s entry under `key` (no-op when absent). */
  remove(key: string, session: number): Promise<void>
  /** Up to `limit` live registrations under `key`, newest first. */
  lookup(key: string, limit: number): Promise<RegistryRecord[]>
  /** Forgets a registration found dead (its instance did not take a forwarded message). */
  forget(record: RegistryRecord, key: string): Promise<void>
  /**
   * Hands `envelope` to instance `instance` (its {@link BeaconRegistry.onForward} handler).
   * Resolves false when no such instance is running.
   */
  forward(instance: string, envelope: Uint8Array): Promise<boolean>
  /** Sets the handler of envelopes forwarded to this instance. */
  onForward(handler: (envelope: Uint8Array) => void): void
  /** Removes every registration of this instance and releases connections; idempotent. */
  close(): Promise<void>
}

/**
 * Registrations in this process's memory: a single Beacon instance. Forwarding to
 * another instance always fails (there is none).
 *
 * @example
 * ```ts
 * import { MemoryRegistry, type RegistryEntry } from 'peerlink/server'
 * import { beaconPeerKey } from 'peerlink'
 *
 * const registry = new MemoryRegistry('beacon-1')
 * const entry: RegistryEntry = { peerId, observed: [{ family: 'IPv4', host: '198.51.100.7', port: 40000 }], at: Date.now() }
 * await registry.add(beaconPeerKey(peerId), 1, entry)
 * const [record] = await registry.lookup(beaconPeerKey(peerId), 1)   // { instance: 'beacon-1', session: 1, entry }
 * ```
 */
export class MemoryRegistry implements BeaconRegistry {
  readonly instanceId: string
  readonly kind = 'memory' as const
  // Insertion order is registration order: re-adding moves an entry to the end (newest).
  readonly #keys = new Map<string, Map<number, RegistryRecord>>()

  constructor(instanceId: string) {
    this.instanceId = instanceId
  }

  /** Number of keys with at least one registration. */
  get size(): number {
    return this.#keys.size
  }

  add(key: string, session: number, entry: RegistryEntry): Promise<void> {
    this.addNow(key, session, entry)
    return Promise.resolve()
  }

  remove(key: string, session: number): Promise<void> {
    this.removeNow(key, session)
    return Promise.resolve()
  }

  lookup(key: string, limit: number): Promise<RegistryRecord[]> {
    return Promise.resolve(this.lookupNow(key, limit))
  }

  /** {@link MemoryRegistry.add}, done when it returns (the Beacon's in-memory fast path). */
  addNow(key: string, session: number, entry: RegistryEntry): void {
    let sessions = this.#keys.get(key)
    if (sessions === undefined) {
      sessions = new Map()
      this.#keys.set(key, sessions)
    }
    sessions.delete(session)
    sessions.set(session, { instance: this.instanceId, session, entry })
  }

  /** {@link MemoryRegistry.remove}, done when it returns. */
  removeNow(key: string, session: number): void {
    const sessions = this.#keys.get(key)
    if (sessions !== undefined && sessions.delete(session) && sessions.size === 0) this.#keys.delete(key)
  }

  /** {@link MemoryRegistry.lookup}, with the answer at once. */
  lookupNow(key: string, limit: number): RegistryRecord[] {
    const sessions = this.#keys.get(key)
    if (sessions === undefined || limit <= 0) return []
    if (sessions.size === 1) {
      // The common case (one peer per PeerId token): no copy of the map.
      for (const record of sessions.values()) return [record]
    }
    const all = [...sessions.values()]
    const records: RegistryRecord[] = []
    for (let i = all.length - 1; i >= 0 && records.length < limit; i--) records.push(all[i]!)
    return records
  }

  forget(record: RegistryRecord, key: string): Promise<void> {
    return this.remove(key, record.session)
  }

  forward(): Promise<boolean> {
    return Promise.resolve(false)
  }

  onForward(): void {}

  close(): Promise<void> {
    this.#keys.clear()
    return Promise.resolve()
  }
}
