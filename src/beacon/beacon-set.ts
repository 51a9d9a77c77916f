/**
 * Every configured Beacon at once: registrations and announcements go to all of them,
 * a signal is sent through every connected one and the first answer wins, and what
 * arrives through several Beacons (the same signal, the same introduction) is
 * delivered once.
 *
 * @module
 */
import { EventEmitter } from 'node:events'
import { BeaconPeerNotFoundError, BeaconUnavailableError, InvalidArgumentError, throwIfAborted } from '../errors.js'
import {
  type BeaconAddress,
  BeaconClient,
  type BeaconClientOptions,
  type BeaconRequestOptions,
  type IncomingSignal,
  type Introduction,
  type OutgoingSignal,
  type SignalResult,
} from './beacon-client.js'
import { BEACON_ID_BYTES } from './beacon-messages.js'
import { randomId } from './random-id.js'
import { RecentSet } from './recent-set.js'

/** Options of {@link BeaconSet}: those of {@link BeaconClient} for every Beacon, and the Beacons. */
export interface BeaconSetOptions extends Omit<BeaconClientOptions, 'server'> {
  /** The Beacons; an entry that is a list names alternative addresses of one fleet. */
  beacons: ReadonlyArray<BeaconAddress | readonly BeaconAddress[]>
  /**
   * Milliseconds a signal or introduction id is remembered to drop duplicates.
   * @default 120_000
   */
  dedupeWindowMs?: number
}

/** Events of a {@link BeaconSet}. */
export interface BeaconSetEvents {
  /** A signal from another peer (the first copy; duplicates through other Beacons are dropped). */
  signal: [signal: IncomingSignal]
  /** An introduction (the first copy). */
  introduction: [introduction: Introduction]
  /** One of the Beacons connected. */
  connected: [info: { server: string; index: number }]
  /** One of the Beacons disconnected or failed to connect (it keeps retrying). */
  disconnected: [info: { server: string; index: number; error: Error | undefined }]
}

/**
 * A {@link BeaconClient} per configured Beacon, used together (see the module notes).
 *
 * @example
 * ```ts
 * import { BeaconSet } from 'peerlink'
 *
 * const beacons = new BeaconSet({ identity, beacons: ['a.example.com#…', 'b.example.com#…'] }).start()
 * await beacons.ready()
 * await beacons.listen()
 * beacons.on('signal', (s) => …)
 * const { observed } = await beacons.signal(peerId, { kind: 'offer', session, payload })
 * ```
 */
export class BeaconSet extends EventEmitter<BeaconSetEvents> {
  /** One client per Beacon, in the order given. */
  readonly clients: readonly BeaconClient[]
  readonly #seen: RecentSet
  #closing: Promise<void> | undefined

  /** @throws {@link InvalidArgumentError} or `InvalidServerSpecError` for bad options. */
  constructor(options: BeaconSetOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('BeaconSet needs options')
    const { beacons, dedupeWindowMs = 120_000, ...common } = options
    if (!Array.isArray(beacons) || beacons.length === 0) throw new InvalidArgumentError('beacons must list at least one Beacon')
    if (!(Number.isFinite(dedupeWindowMs) && dedupeWindowMs > 0)) throw new InvalidArgumentError('dedupeWindowMs must be a positive number')
    this.#seen = new RecentSet(dedupeWindowMs)
    this.clients = beacons.map((server, index) => {
      const client = new BeaconClient({ ...common, server: server as BeaconClientOptions['server'] })
      client.on('signal', (signal) => {
        if (this.#seen.add(`s/${signal.from}/${hex(signal.mid)}`)) this.emit('signal', signal)
      })
      client.on('introduction', (intro) => {
        if (this.#seen.add(`i/${intro.peerId}/${hex(intro.topic)}/${hex(intro.mid)}`)) this.emit('introduction', intro)
      })
      client.on('connected', ({ server }) => this.emit('connected', { server, index }))
      client.on('disconnected', (error) => this.emit('disconnected', { server: client.server, index, error }))
      return client
    })
  }

  /** Starts every client; idempotent. */
  start(): this {
    for (const client of this.clients) client.start()
    return this
  }

  /** Clients connected now. */
  get connected(): BeaconClient[] {
    return this.clients.filter((client) => client.state === 'connected')
  }

  /**
   * Resolves when at least one Beacon is connected.
   *
   * @throws `AbortError` (rejects) when `signal` fires or every client closes first.
   */
  async ready(options: BeaconRequestOptions = {}): Promise<void> {
    throwIfAborted(options.signal)
    if (this.connected.length > 0) return
    const controller = new AbortController()
    const onAbort = () => controller.abort(options.signal?.reason)
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.any(this.clients.map((client) => client.ready({ signal: controller.signal })))
    } catch (err) {
      throwIfAborted(options.signal)
      throw (err as AggregateError).errors[0]
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      controller.abort() // release the other waiters
    }
  }

  /** Registers the PeerId token at every Beacon (see {@link BeaconClient.listen}); rejects only if all fail. */
  listen(options: BeaconRequestOptions = {}): Promise<void> {
    return this.#all((client) => client.listen(options))
  }

  /** Removes the PeerId registration from every Beacon. */
  unlisten(options: BeaconRequestOptions = {}): Promise<void> {
    return this.#all((client) => client.unlisten(options))
  }

  /** Announces an identifier at every Beacon with one announcement id (see {@link BeaconClient.announce}); rejects only if all fail. */
  announce(topic: Uint8Array | string, options: BeaconRequestOptions & { payload?: Uint8Array } = {}): Promise<void> {
    const mid = randomId(BEACON_ID_BYTES)
    return this.#all((client) => client.announce(topic, { ...options, mid }))
  }

  /** Withdraws an identifier from every Beacon. */
  withdraw(topic: Uint8Array | string, options: BeaconRequestOptions = {}): Promise<void> {
    return this.#all((client) => client.withdraw(topic, options))
  }

  /**
   * Sends a signal through every connected Beacon (one message id, so the receiver
   * keeps one copy) and resolves with the first Beacon that delivered it.
   *
   * @throws `BeaconPeerNotFoundError` (rejects) when no Beacon knows the peer.
   * @throws `BeaconUnavailableError` (rejects) when no Beacon is connected.
   */
  async signal(to: string, message: OutgoingSignal, options: BeaconRequestOptions = {}): Promise<SignalResult> {
    const clients = this.connected
    if (clients.length === 0) throw new BeaconUnavailableError('no Beacon is connected')
    const withMid = { ...message, mid: message.mid ?? randomId(BEACON_ID_BYTES) }
    try {
      return await Promise.any(clients.map((client) => client.signal(to, withMid, options)))
    } catch (err) {
      const errors = (err as AggregateError).errors as Error[]
      throw errors.find((e) => e instanceof BeaconPeerNotFoundError) ?? errors[0]
    }
  }

  /** Closes every client. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.clients.map((client) => client.close())).then(() => {})
    return this.#closing
  }

  async #all(fn: (client: BeaconClient) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(this.clients.map(fn))
    if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}
