/**
 * Connections announced to devices and waiting for their transfer sockets. Each gets a
 * random 16-byte id; a transfer socket claims it by id with the proof of its session
 * secret, exactly once. One that nobody claims within the timeout fails with
 * `'timeout'`; one the device refuses fails with its reason.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { verifyTransferProof } from '../../tunnel/tunnel-auth.js'
import { TUNNEL_CONNECTION_ID_BYTES, type TunnelRejectReason } from '../../tunnel/tunnel-messages.js'
import type { TransferStream } from '../../tunnel/websocket-stream.js'

/** Why a pending connection failed. */
export type PendingFailure = TunnelRejectReason | 'timeout' | 'offline' | 'cancelled' | 'closing'

/** A connection waiting for its device. */
export interface PendingConnection {
  /** Its id (16 random bytes). */
  readonly id: Uint8Array
  /** The key of the device it was announced to. */
  readonly device: string
  /** The secret of the control session it was announced on. */
  readonly secret: Uint8Array
  /** Called once when a transfer socket claims it. */
  readonly onClaim: (stream: TransferStream) => void
  /** Called once when it fails. */
  readonly onFail: (reason: PendingFailure) => void
  /** The timeout. */
  timer: ReturnType<typeof setTimeout>
}

/** What {@link PendingConnections.claim} found. */
export type ClaimOutcome = { ok: true; pending: PendingConnection } | { ok: false; why: 'unknown' | 'proof' }

/** The registry of pending connections (see the module notes). */
export class PendingConnections {
  readonly #byId = new Map<string, PendingConnection>()
  readonly #timeoutMs: number

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  /** Connections waiting now. */
  get size(): number {
    return this.#byId.size
  }

  /** Registers a connection for `device`; returns its id (to announce) and a cancel function. */
  add(device: string, secret: Uint8Array, onClaim: (stream: TransferStream) => void, onFail: (reason: PendingFailure) => void): { id: Uint8Array; cancel: () => void } {
    const id = new Uint8Array(randomBytes(TUNNEL_CONNECTION_ID_BYTES))
    const key = Buffer.from(id).toString('base64url')
    const pending: PendingConnection = {
      id,
      device,
      secret,
      onClaim,
      onFail,
      timer: setTimeout(() => this.#fail(key, 'timeout'), this.#timeoutMs),
    }
    this.#byId.set(key, pending)
    return { id, cancel: () => this.#fail(key, 'cancelled') }
  }

  /** Takes the connection `id` if `proof` proves its session; it is then gone from the registry. */
  claim(id: Uint8Array, proof: Uint8Array): ClaimOutcome {
    const key = Buffer.from(id).toString('base64url')
    const pending = this.#byId.get(key)
    if (pending === undefined) return { ok: false, why: 'unknown' }
    if (!verifyTransferProof(pending.secret, id, proof)) return { ok: false, why: 'proof' }
    this.#byId.delete(key)
    clearTimeout(pending.timer)
    return { ok: true, pending }
  }

  /** Fails the connection `id` of `device` (the device refused it). */
  reject(device: string, id: Uint8Array, reason: TunnelRejectReason): void {
    const key = Buffer.from(id).toString('base64url')
    if (this.#byId.get(key)?.device === device) this.#fail(key, reason)
  }

  /** Fails every connection of `device` (or of every device). */
  failAll(reason: PendingFailure, device?: string): void {
    for (const [key, pending] of this.#byId) if (device === undefined || pending.device === device) this.#fail(key, reason)
  }

  #fail(key: string, reason: PendingFailure): void {
    const pending = this.#byId.get(key)
    if (pending === undefined) return
    this.#byId.delete(key)
    clearTimeout(pending.timer)
    pending.onFail(reason)
  }
}
