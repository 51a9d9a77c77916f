/**
 * Relayed local candidates in the ICE agent (RFC 8445 §5.1.1.2, §7.2): each relay (a
 * TURN allocation) is its own base, so checks for a pair whose local candidate is
 * relayed go out through that relay and not from the peer's socket, and checks that
 * come in through a relay belong to its relayed candidate.
 *
 * The agent's one STUN transaction manager sends every request through one function;
 * {@link RelayRoutes} remembers, per transaction id, which relay a request must take.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'
import type { TransportAddress } from '../stun/address.js'
import type { DatagramEndpoint, DatagramSource } from '../stun/datagram-endpoint.js'
import type { StunMessage } from '../stun/message.js'
import type { StunRequestOptions, StunResponse, StunTransactionManager } from '../stun/transaction.js'
import { createLocalCandidate, type IceCandidate, type LocalCandidate } from './candidate.js'
import { addressKey, canonicalHost } from './canonical-address.js'

/** A relay as the ICE agent needs it (a TURN allocation: see `TurnRelayEndpoint`). */
export interface IceRelay extends DatagramEndpoint {
  /** The relayed transport address: the candidate's address and base. */
  localAddress(): TransportAddress | undefined
  /** Installs a permission for a remote candidate's IP ahead of the checks (RFC 8656 §9). */
  permit(host: string): void
  /** The TURN server's address (part of the candidate's foundation). */
  readonly server: { host: string; port: number }
}

/** Local preference of relayed candidates (they already have the lowest type preference). */
const RELAY_LOCAL_PREFERENCE = 65535

interface RelayEntry {
  relay: IceRelay
  candidate: LocalCandidate
  unsubscribe: () => void
}

/** Called with a datagram that arrived through a relay, and the key of that relay. */
export type RelayDatagramHandler = (data: Uint8Array, from: DatagramSource, relayKey: string) => void

/** The relays of one ICE agent and the routes of its transactions. */
export class RelayRoutes {
  readonly #relays = new Map<string, RelayEntry>()
  readonly #routes = new Map<string, string>()
  readonly #onDatagram: RelayDatagramHandler

  constructor(onDatagram: RelayDatagramHandler) {
    this.#onDatagram = onDatagram
  }

  /** How many relays there are. */
  get size(): number {
    return this.#relays.size
  }

  /**
   * Adds a relay: returns its relayed candidate (its own base), or `undefined` if that
   * relayed address is already known.
   *
   * @throws InvalidArgumentError when the relay reports no address.
   */
  add(relay: IceRelay): LocalCandidate | undefined {
    const address = relay?.localAddress?.()
    if (address === undefined) throw new InvalidArgumentError('A relay must report its relayed address')
    const host = canonicalHost(address.host)
    if (host === undefined) throw new InvalidArgumentError(`Relayed address ${JSON.stringify(address.host)} is not an IP literal`)
    const key = addressKey(host, address.port)
    if (this.#relays.has(key)) return undefined
    // RFC 8445 §5.1.1.2: the base of a relayed candidate is the candidate itself.
    const candidate = createLocalCandidate({
      type: 'relay',
      address: host,
      port: address.port,
      base: { address: host, port: address.port },
      localPreference: RELAY_LOCAL_PREFERENCE,
      serverAddress: relay.server.host,
    })
    const unsubscribe = relay.onMessage((data, from) => this.#onDatagram(data, from, key))
    this.#relays.set(key, { relay, candidate, unsubscribe })
    return candidate
  }

  /** The key of the relay a local candidate sends through, or `undefined` for the socket. */
  keyOf(local: Pick<LocalCandidate, 'type' | 'base'>): string | undefined {
    if (local.type !== 'relay') return undefined
    const key = addressKey(local.base.address, local.base.port)
    return this.#relays.has(key) ? key : undefined
  }

  /** The relayed candidate of a relay. */
  candidate(key: string): LocalCandidate | undefined {
    return this.#relays.get(key)?.candidate
  }

  /** Installs permissions on every relay for a remote candidate's IP (RFC 8656 §9). */
  permit(remote: Pick<IceCandidate, 'address'>): void {
    for (const { relay } of this.#relays.values()) relay.permit(remote.address)
  }

  /** Sends one datagram through relay `key`; false if there is no such relay. */
  send(key: string, data: Uint8Array, port: number, host: string): boolean {
    const entry = this.#relays.get(key)
    if (entry === undefined) return false
    try {
      entry.relay.send(data, port, canonicalHost(host) ?? host)
    } catch {
      // A closed relay: lost, like any datagram.
    }
    return true
  }

  /** Requests with this transaction id go through relay `key` (until {@link RelayRoutes.unroute}). */
  route(transactionId: Uint8Array, key: string): void {
    this.#routes.set(Buffer.from(transactionId).toString('hex'), key)
  }

  /** Forgets a transaction's route. */
  unroute(transactionId: Uint8Array): void {
    this.#routes.delete(Buffer.from(transactionId).toString('hex'))
  }

  /**
   * The relay an encoded STUN request must take (from its transaction id, bytes 8–19,
   * RFC 8489 §5), or `undefined` for the socket.
   */
  routeOf(data: Uint8Array): string | undefined {
    if (this.#routes.size === 0 || data.length < 20) return undefined
    return this.#routes.get(Buffer.from(data.buffer, data.byteOffset + 8, 12).toString('hex'))
  }

  /**
   * Runs the STUN transaction of a check (or consent check) for `pair`: from its local
   * candidate's base (RFC 8445 §7.2.4) — through the relay for a relayed candidate, else
   * from the socket, to `wireHost(remote address)`.
   */
  request(
    transactions: StunTransactionManager,
    request: StunMessage,
    pair: { local: Pick<LocalCandidate, 'type' | 'base'>; remote: Pick<IceCandidate, 'address' | 'port'> },
    wireHost: (address: string) => string,
    options: Omit<StunRequestOptions, 'host' | 'port'>,
  ): Promise<StunResponse> {
    const key = this.keyOf(pair.local)
    if (key === undefined) return transactions.request(request, { ...options, host: wireHost(pair.remote.address), port: pair.remote.port })
    this.route(request.transactionId, key)
    return transactions.request(request, { ...options, host: pair.remote.address, port: pair.remote.port }).finally(() => this.unroute(request.transactionId))
  }

  /** Stops listening to every relay (the relays themselves belong to the caller). */
  close(): void {
    for (const entry of this.#relays.values()) entry.unsubscribe()
    this.#relays.clear()
    this.#routes.clear()
  }
}
