/**
 * What a Beacon does with its sessions' requests: registrations in the registry,
 * introductions between peers that announced the same identifier, and signals to a
 * PeerId — delivered to a local session, or forwarded to the fleet instance that
 * holds it.
 *
 * @module
 */
import { decode, encode } from '@msgpack/msgpack'
import { beaconPeerKey, beaconTopicKey } from '../../beacon/beacon-auth.js'
import {
  BEACON_ID_BYTES,
  BEACON_MAX_ADDRESSES,
  type AnnounceMessage,
  type BeaconErrorReason,
  type SignalRequest,
  type WithdrawMessage,
  encodeServerMessage,
} from '../../beacon/beacon-messages.js'
import type { TransportAddress } from '../../stun/address.js'
import type { BeaconRegistry, RegistryEntry, RegistryRecord } from './registry.js'
import { type BeaconSession, type SessionHost, type SessionLimits, SessionReplyError } from './session.js'

/** Counters of a running Beacon instance. */
export interface BeaconServerStats {
  /** Open WebSocket connections. */
  connections: number
  /** Open connections that proved their key. */
  authenticated: number
  /** Connections accepted since start. */
  accepted: number
  /** PeerId tokens registered by this instance's sessions. */
  registrations: number
  /** Rendezvous identifiers announced by this instance's sessions. */
  announcements: number
  /** Introductions made (symmetric mode): one per peer told about another, counted by the instance of the announcer. */
  introductions: number
  /** Signals accepted for delivery (connect-by-PeerId). */
  signals: number
  /** Messages refused, by reason. */
  refused: Record<BeaconErrorReason, number>
}

/** The logging interface of the Beacon: a subset of pino's `Logger` (pass a pino logger as is). */
export interface BeaconServerLogger {
  /** Lifecycle events. */
  info(obj: Record<string, unknown>, msg?: string): void
  /** Refusals worth an operator's attention (failed proofs of key). */
  warn(obj: Record<string, unknown>, msg?: string): void
  /** Unexpected failures (Redis errors). */
  error(obj: Record<string, unknown>, msg?: string): void
}

/** Options of {@link BeaconRouter}. */
export interface BeaconRouterOptions {
  registry: BeaconRegistry
  certHash: Uint8Array
  limits: SessionLimits
  maxIntroductions: number
  logger: BeaconServerLogger
}

const NO_MID = new Uint8Array(BEACON_ID_BYTES)

/** Implements the Beacon's requests for every session of one instance. */
export class BeaconRouter implements SessionHost {
  readonly certHash: Uint8Array
  readonly limits: SessionLimits
  /** Counters. */
  readonly stats: BeaconServerStats = {
    connections: 0,
    authenticated: 0,
    accepted: 0,
    registrations: 0,
    announcements: 0,
    introductions: 0,
    signals: 0,
    refused: { protocol: 0, 'too-large': 0, version: 0, auth: 0, 'rate-limited': 0, limit: 0, 'peer-not-found': 0, unavailable: 0 },
  }
  /** Open sessions by id. */
  readonly sessions = new Map<number, BeaconSession>()
  /** Sessions that have not proved their key yet. */
  readonly unauthenticated = new Set<BeaconSession>()
  readonly #registry: BeaconRegistry
  readonly #maxIntroductions: number
  readonly #logger: BeaconServerLogger
  readonly #cleanups = new Set<Promise<void>>()

  constructor(options: BeaconRouterOptions) {
    this.#registry = options.registry
    this.certHash = options.certHash
    this.limits = options.limits
    this.#maxIntroductions = options.maxIntroductions
    this.#logger = options.logger
    this.#registry.onForward((envelope) => this.#onForward(envelope))
  }

  /** Adds a new session (before its challenge is sent). */
  add(session: BeaconSession): void {
    this.sessions.set(session.id, session)
    this.unauthenticated.add(session)
    this.stats.connections++
    this.stats.accepted++
  }

  authenticated(session: BeaconSession): void {
    this.unauthenticated.delete(session)
    this.stats.authenticated++
  }

  refused(session: BeaconSession, reason: BeaconErrorReason, error?: unknown): void {
    this.stats.refused[reason]++
    if (reason === 'auth') this.#logger.warn({ event: 'beacon-auth-refused', peer: session.peerId, address: session.observed.host })
    else if (reason === 'unavailable') this.#logger.error({ event: 'beacon-unavailable', error: String(error) }, 'registry failed')
  }

  async register(session: BeaconSession): Promise<void> {
    const key = beaconPeerKey(session.peerId!)
    await this.#registry.add(key, session.id, { peerId: session.peerId!, observed: [session.observed], at: Date.now() })
    if (!session.keys.has(key)) {
      session.keys.add(key)
      this.stats.registrations++
    }
  }

  async unregister(session: BeaconSession): Promise<void> {
    const key = beaconPeerKey(session.peerId!)
    if (!session.keys.delete(key)) return
    this.stats.registrations--
    await this.#registry.remove(key, session.id)
  }

  async announce(session: BeaconSession, message: AnnounceMessage): Promise<void> {
    const key = beaconTopicKey(message.topic)
    const known = session.keys.has(key)
    if (!known && session.topics >= this.limits.maxTopics) {
      throw new SessionReplyError('limit', `at most ${this.limits.maxTopics} identifiers per connection`)
    }
    const peerId = session.peerId!
    // Copies: the message's bytes are views of the (larger) receive buffer.
    const entry: RegistryEntry = { peerId, observed: [session.observed], mid: message.mid.slice(), at: Date.now() }
    if (message.payload !== undefined) entry.payload = message.payload.slice()
    // Add first, then look up: of two peers announcing at once, at least one sees the
    // other (both may: clients drop the duplicate introduction by its mid).
    await this.#registry.add(key, session.id, entry)
    if (!known) {
      session.keys.add(key)
      session.topics++
      this.stats.announcements++
    }
    const others = (await this.#registry.lookup(key, this.#maxIntroductions + 2))
      .filter((record) => record.entry.peerId !== peerId)
      .slice(0, this.#maxIntroductions)
    if (others.length === 0) return
    const toOthers = encodeServerMessage({ type: 'introduction', topic: message.topic, peerId, observed: entry.observed, mid: entry.mid!, ...optionalPayload(entry) })
    const delivered = await Promise.all(others.map((record) => this.#deliver(record, key, toOthers)))
    this.stats.introductions += delivered.filter(Boolean).length
    others.forEach((record, i) => {
      if (!delivered[i] || session.state === 'closed') return
      const { peerId: other, observed, mid } = record.entry
      if (session.send({ type: 'introduction', topic: message.topic, peerId: other, observed, mid: mid ?? NO_MID, ...optionalPayload(record.entry) })) {
        this.stats.introductions++
      }
    })
  }

  async withdraw(session: BeaconSession, message: WithdrawMessage): Promise<void> {
    const key = beaconTopicKey(message.topic)
    if (!session.keys.delete(key)) return
    session.topics--
    this.stats.announcements--
    await this.#registry.remove(key, session.id)
  }

  async signal(session: BeaconSession, message: SignalRequest): Promise<TransportAddress[]> {
    const key = beaconPeerKey(message.to)
    const records = await this.#registry.lookup(key, BEACON_MAX_ADDRESSES)
    const data = encodeServerMessage({
      type: 'signal',
      from: session.peerId!,
      observed: [session.observed],
      kind: message.kind,
      session: message.session,
      mid: message.mid,
      payload: message.payload,
    })
    const delivered = await Promise.all(records.map((record) => this.#deliver(record, key, data)))
    const observed: TransportAddress[] = []
    records.forEach((record, i) => {
      if (!delivered[i]) return
      for (const address of record.entry.observed) {
        if (observed.length < BEACON_MAX_ADDRESSES && !observed.some((a) => a.host === address.host && a.port === address.port)) observed.push(address)
      }
    })
    if (!delivered.includes(true)) throw new SessionReplyError('peer-not-found', `peer ${message.to} is not registered here`)
    this.stats.signals++
    return observed
  }

  closed(session: BeaconSession): Promise<void> {
    this.sessions.delete(session.id)
    this.unauthenticated.delete(session)
    this.stats.connections--
    if (session.peerId === undefined) return Promise.resolve()
    this.stats.authenticated--
    const keys = [...session.keys]
    session.keys.clear()
    for (const key of keys) {
      if (key.startsWith('p:')) this.stats.registrations--
      else this.stats.announcements--
    }
    if (keys.length === 0) return Promise.resolve()
    const cleanup = Promise.all(keys.map((key) => this.#registry.remove(key, session.id)))
      .then(() => {})
      .catch((err: unknown) => this.#logger.error({ event: 'beacon-registry-error', error: String(err) }, 'could not remove registrations'))
      .finally(() => this.#cleanups.delete(cleanup))
    this.#cleanups.add(cleanup)
    return cleanup
  }

  /** Resolves when every session has closed and its registrations have been removed. */
  async drain(): Promise<void> {
    while (this.sessions.size > 0 || this.#cleanups.size > 0) {
      if (this.#cleanups.size > 0) await Promise.all([...this.#cleanups])
      else await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /** Delivers encoded `data` to the session of `record` if it still holds `key`. */
  async #deliver(record: RegistryRecord, key: string, data: Uint8Array): Promise<boolean> {
    if (record.instance === this.#registry.instanceId) return this.#deliverLocal(record.session, key, data)
    const envelope = encode({ s: record.session, k: key, m: data })
    let ok = false
    try {
      ok = await this.#registry.forward(record.instance, envelope)
    } catch (err) {
      this.#logger.error({ event: 'beacon-registry-error', error: String(err) }, 'could not forward')
      return false
    }
    // Nobody listens on that instance's channel: it is gone, and so is the registration.
    if (!ok) await this.#registry.forget(record, key).catch(() => {})
    return ok
  }

  #deliverLocal(id: number, key: string, data: Uint8Array): boolean {
    const session = this.sessions.get(id)
    return session !== undefined && session.keys.has(key) && session.sendRaw(data)
  }

  #onForward(envelope: Uint8Array): void {
    try {
      const { s, k, m } = decode(envelope) as { s: unknown; k: unknown; m: unknown }
      if (typeof s === 'number' && typeof k === 'string' && m instanceof Uint8Array) this.#deliverLocal(s, k, m)
    } catch {
      // Not an envelope of ours: ignore it.
    }
  }
}

function optionalPayload(entry: RegistryEntry): { payload?: Uint8Array } {
  return entry.payload === undefined ? {} : { payload: entry.payload }
}
