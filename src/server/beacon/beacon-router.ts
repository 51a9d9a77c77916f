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
} from '../../beacon/beacon-messages.js'
import type { TransportAddress } from '../../stun/address.js'
import { type BeaconRegistry, MemoryRegistry, type RegistryEntry, type RegistryRecord } from './registry.js'
import { encodeServerFrame, frameOf, framePayload } from './server-frame.js'
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
  /** The registry, when it is the in-memory one (whose operations are done at once). */
  readonly #memory: MemoryRegistry | undefined
  readonly #peerKeys = new Map<string, string>()

  constructor(options: BeaconRouterOptions) {
    this.#registry = options.registry
    this.certHash = options.certHash
    this.limits = options.limits
    this.#maxIntroductions = options.maxIntroductions
    this.#logger = options.logger
    this.#memory = options.registry instanceof MemoryRegistry ? options.registry : undefined
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

  register(session: BeaconSession): void | Promise<void> {
    const key = session.peerKey(beaconPeerKey)
    return after(this.#add(key, session.id, { peerId: session.peerId!, observed: [session.observed], at: Date.now() }), () => {
      if (!session.keys.has(key)) {
        session.keys.add(key)
        this.stats.registrations++
      }
    })
  }

  unregister(session: BeaconSession): void | Promise<void> {
    const key = session.peerKey(beaconPeerKey)
    if (!session.keys.delete(key)) return
    this.stats.registrations--
    return this.#remove(key, session.id)
  }

  announce(session: BeaconSession, message: AnnounceMessage): void | Promise<void> {
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
    return after(this.#add(key, session.id, entry), () => {
      if (!known) {
        session.keys.add(key)
        session.topics++
        this.stats.announcements++
      }
      return after(this.#lookup(key, this.#maxIntroductions + 2), (found) => {
        const others = found.filter((record) => record.entry.peerId !== peerId).slice(0, this.#maxIntroductions)
        if (others.length === 0) return
        const toOthers = encodeServerFrame({ type: 'introduction', topic: message.topic, peerId, observed: entry.observed, mid: entry.mid!, ...optionalPayload(entry) })
        return after(all(others.map((record) => this.#deliver(record, key, toOthers))), (delivered) => {
          others.forEach((record, i) => {
            if (!delivered[i]) return
            this.stats.introductions++
            if (session.state === 'closed') return
            const { peerId: other, observed, mid } = record.entry
            if (session.send({ type: 'introduction', topic: message.topic, peerId: other, observed, mid: mid ?? NO_MID, ...optionalPayload(record.entry) })) {
              this.stats.introductions++
            }
          })
        })
      })
    })
  }

  withdraw(session: BeaconSession, message: WithdrawMessage): void | Promise<void> {
    const key = beaconTopicKey(message.topic)
    if (!session.keys.delete(key)) return
    session.topics--
    this.stats.announcements--
    return this.#remove(key, session.id)
  }

  signal(session: BeaconSession, message: SignalRequest): TransportAddress[] | Promise<TransportAddress[]> {
    const key = this.#peerKey(message.to)
    if (this.#memory !== undefined) {
      // The hot path of an in-memory Beacon, written out: no promise, no closure.
      const records = this.#memory.lookupNow(key, BEACON_MAX_ADDRESSES)
      let frame: Uint8Array | undefined
      let observed: TransportAddress[] | undefined
      for (const record of records) {
        frame ??= signalFrame(session, message)
        if (this.#deliverLocal(record.session, key, frame)) observed = addObserved(observed ?? [], record.entry.observed)
      }
      return this.#signalled(message, observed)
    }
    return this.#registry.lookup(key, BEACON_MAX_ADDRESSES).then(async (records) => {
      if (records.length === 0) return this.#signalled(message, undefined)
      const frame = signalFrame(session, message)
      const delivered = await Promise.all(records.map((record) => this.#deliver(record, key, frame)))
      let observed: TransportAddress[] | undefined
      records.forEach((record, i) => {
        if (delivered[i]) observed = addObserved(observed ?? [], record.entry.observed)
      })
      return this.#signalled(message, observed)
    })
  }

  /** The addresses of the peers a signal reached; throws `peer-not-found` when it reached none. */
  #signalled(message: SignalRequest, observed: TransportAddress[] | undefined): TransportAddress[] {
    if (observed === undefined) throw new SessionReplyError('peer-not-found', `peer ${message.to} is not registered here`)
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

  /** The registry key of a PeerId's token, remembered (hashing it costs more than the rest of a signal's routing). */
  #peerKey(peerId: string): string {
    let key = this.#peerKeys.get(peerId)
    if (key === undefined) {
      if (this.#peerKeys.size >= PEER_KEY_CACHE) this.#peerKeys.clear()
      key = beaconPeerKey(peerId)
      this.#peerKeys.set(peerId, key)
    }
    return key
  }

  // The registry's operations, done at once by the in-memory one (no promise, no
  // microtask: a request is answered before its message handler returns).
  #add(key: string, session: number, entry: RegistryEntry): void | Promise<void> {
    if (this.#memory !== undefined) return this.#memory.addNow(key, session, entry)
    return this.#registry.add(key, session, entry)
  }

  #remove(key: string, session: number): void | Promise<void> {
    if (this.#memory !== undefined) return this.#memory.removeNow(key, session)
    return this.#registry.remove(key, session)
  }

  #lookup(key: string, limit: number): RegistryRecord[] | Promise<RegistryRecord[]> {
    if (this.#memory !== undefined) return this.#memory.lookupNow(key, limit)
    return this.#registry.lookup(key, limit)
  }

  /** Delivers `frame` to the session of `record` if it still holds `key`: at once when it is here, else through the registry. */
  #deliver(record: RegistryRecord, key: string, frame: Uint8Array): boolean | Promise<boolean> {
    if (record.instance === this.#registry.instanceId) return this.#deliverLocal(record.session, key, frame)
    return this.#forward(record, key, frame)
  }

  async #forward(record: RegistryRecord, key: string, frame: Uint8Array): Promise<boolean> {
    // Between instances travels the message itself, not our WebSocket frame.
    const envelope = encode({ s: record.session, k: key, m: framePayload(frame) })
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

  #deliverLocal(id: number, key: string, frame: Uint8Array): boolean {
    const session = this.sessions.get(id)
    return session !== undefined && session.keys.has(key) && session.sendFrame(frame)
  }

  #onForward(envelope: Uint8Array): void {
    try {
      const { s, k, m } = decode(envelope) as { s: unknown; k: unknown; m: unknown }
      if (typeof s === 'number' && typeof k === 'string' && m instanceof Uint8Array) this.#deliverLocal(s, k, frameOf(m))
    } catch {
      // Not an envelope of ours: ignore it.
    }
  }
}

/** PeerId → registry key entries remembered (then the cache starts over). */
const PEER_KEY_CACHE = 65_536

/** The `signal` a request becomes for its target. */
function signalFrame(session: BeaconSession, message: SignalRequest): Uint8Array {
  return encodeServerFrame({
    type: 'signal',
    from: session.peerId!,
    observed: [session.observed],
    kind: message.kind,
    session: message.session,
    mid: message.mid,
    payload: message.payload,
  })
}

/** Adds `addresses` to `observed` (no duplicates, at most {@link BEACON_MAX_ADDRESSES}); returns `observed`. */
function addObserved(observed: TransportAddress[], addresses: readonly TransportAddress[]): TransportAddress[] {
  for (const address of addresses) {
    if (observed.length < BEACON_MAX_ADDRESSES && !observed.some((a) => a.host === address.host && a.port === address.port)) observed.push(address)
  }
  return observed
}

/** `fn(value)`, at once for a plain value, after it settles for a promise. */
function after<T, R>(value: T | Promise<T>, fn: (value: T) => R | Promise<R>): R | Promise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value)
}

/** The values, at once when none is a promise, else a promise of them all. */
function all<T>(values: Array<T | Promise<T>>): T[] | Promise<T[]> {
  return values.some((value) => value instanceof Promise) ? Promise.all(values) : (values as T[])
}

function optionalPayload(entry: RegistryEntry): { payload?: Uint8Array } {
  return entry.payload === undefined ? {} : { payload: entry.payload }
}
