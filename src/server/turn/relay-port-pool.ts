/**
 * Relay UDP ports of the TURN server: sockets bound to a port of the configured range
 * on a relay IP, EVEN-PORT allocations and RESERVATION-TOKEN reservations of the next
 * port (RFC 8656 §7.2, §14.6, §14.9).
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { TurnUdpSocket, type UdpBindError } from './udp-socket.js'

/** How long a reserved port waits for the Allocate that claims it (RFC 8656 §14.9: about 30 s). */
export const RESERVATION_LIFETIME_MS = 30_000

/** Binding failures tolerated (ports used by other processes) before answering 508. */
const MAX_BIND_FAILURES = 32

/** A bound relay socket. */
export interface RelayPort {
  /** The socket, bound to `ip:port`. */
  socket: TurnUdpSocket
  /** Relay IP. */
  ip: string
  /** Port. */
  port: number
}

/** Result of {@link RelayPortPool.bind}. */
export interface BoundRelayPort extends RelayPort {
  /** Token of the reserved next port, when one was asked for. */
  reservationToken?: Uint8Array
}

/** Options of {@link RelayPortPool}. */
export interface RelayPortPoolOptions {
  /** Lowest port. */
  minPort: number
  /** Highest port. */
  maxPort: number
  /**
   * Monotonic clock in ms.
   * @default performance.now
   */
  now?: () => number
}

interface Reservation extends RelayPort {
  expiresAt: number
}

/** Receive buffer asked for on relay sockets (the kernel caps it at `net.core.rmem_max`). */
export const RELAY_SOCKET_BUFFER_BYTES = 1024 * 1024

/** Binds a relay socket, or returns the bind error. */
function bindSocket(ip: string, port: number): TurnUdpSocket | UdpBindError {
  try {
    return TurnUdpSocket.bind(ip, port, RELAY_SOCKET_BUFFER_BYTES)
  } catch (err) {
    return err as UdpBindError
  }
}

/** The relay port range shared by all allocations. */
export class RelayPortPool {
  readonly #min: number
  readonly #max: number
  readonly #now: () => number
  /** Ports in use (bound or being bound, or reserved) per relay IP. */
  readonly #used = new Map<string, Set<number>>()
  readonly #reservations = new Map<string, Reservation>()

  constructor(options: RelayPortPoolOptions) {
    this.#min = options.minPort
    this.#max = options.maxPort
    this.#now = options.now ?? (() => performance.now())
  }

  #usedOn(ip: string): Set<number> {
    let used = this.#used.get(ip)
    if (used === undefined) {
      used = new Set()
      this.#used.set(ip, used)
    }
    return used
  }

  /** Number of ports in use (bound, binding or reserved) on `ip`. */
  usedCount(ip: string): number {
    return this.#used.get(ip)?.size ?? 0
  }

  /**
   * Binds a socket on a free port of the range. With `even`, the port is even (RFC 8656
   * §14.6 EVEN-PORT); with `reserveNext` too, port + 1 is bound and held for
   * {@link RESERVATION_LIFETIME_MS} under the returned token. Resolves `undefined` when
   * no port could be bound (the caller answers 508 Insufficient Capacity).
   */
  async bind(ip: string, options: { even?: boolean; reserveNext?: boolean } = {}): Promise<BoundRelayPort | undefined> {
    const used = this.#usedOn(ip)
    const even = options.even === true || options.reserveNext === true
    const step = even ? 2 : 1
    const first = even ? this.#min + (this.#min & 1) : this.#min
    const last = options.reserveNext === true ? this.#max - 1 : this.#max
    if (first > last) return undefined
    const slots = Math.floor((last - first) / step) + 1
    const start = Math.floor(Math.random() * slots)
    let failures = 0
    for (let i = 0; i < slots && failures < MAX_BIND_FAILURES; i++) {
      const port = first + ((start + i) % slots) * step
      if (used.has(port) || (options.reserveNext === true && used.has(port + 1))) continue
      used.add(port)
      if (options.reserveNext === true) used.add(port + 1)
      const socket = bindSocket(ip, port)
      if (socket instanceof Error) {
        used.delete(port)
        if (options.reserveNext === true) used.delete(port + 1)
        failures++
        continue
      }
      if (options.reserveNext !== true) return { socket, ip, port }
      const next = bindSocket(ip, port + 1)
      if (next instanceof Error) {
        await socket.close()
        used.delete(port)
        used.delete(port + 1)
        failures++
        continue
      }
      const token = new Uint8Array(randomBytes(8))
      this.#reservations.set(Buffer.from(token).toString('hex'), {
        socket: next,
        ip,
        port: port + 1,
        expiresAt: this.#now() + RESERVATION_LIFETIME_MS,
      })
      return { socket, ip, port, reservationToken: token }
    }
    return undefined
  }

  /**
   * Takes the port reserved under `token` (RFC 8656 §7.2 RESERVATION-TOKEN), or
   * `undefined` if the token is unknown or expired.
   */
  claim(token: Uint8Array): RelayPort | undefined {
    const key = Buffer.from(token).toString('hex')
    const reservation = this.#reservations.get(key)
    if (reservation === undefined) return undefined
    this.#reservations.delete(key)
    return { socket: reservation.socket, ip: reservation.ip, port: reservation.port }
  }

  /** Returns a port to the pool (its socket is closed by the caller). */
  release(ip: string, port: number): void {
    this.#used.get(ip)?.delete(port)
  }

  /** Frees reservations nobody claimed in time. */
  sweep(): Promise<void> {
    const now = this.#now()
    const closing: Promise<void>[] = []
    for (const [key, reservation] of this.#reservations) {
      if (reservation.expiresAt <= now) {
        this.#reservations.delete(key)
        this.release(reservation.ip, reservation.port)
        closing.push(reservation.socket.close())
      }
    }
    return Promise.all(closing).then(() => {})
  }

  /** Closes every reserved socket. */
  async close(): Promise<void> {
    const all = [...this.#reservations.values()]
    this.#reservations.clear()
    for (const reservation of all) this.release(reservation.ip, reservation.port)
    await Promise.all(all.map((reservation) => reservation.socket.close()))
  }
}
