/**
 * Messages 1 and 2 of the secure connection's handshake, carried by a connection
 * attempt's signalling (docs/secure-connection.md, "Handshake in the signalling"):
 *
 * ```text
 * connecting side                                listening side
 *   offer  { …, noise: message 1 } ───────────▶
 *                                  ◀─────────── answer { …, noise: message 2 }
 *   ICE selects a pair ─ message 3 and the records on the udx stream ─▶
 * ```
 *
 * The udx stream then carries only message 3 and the records: the connection is
 * verified one round trip sooner after the selection. The connecting side reads message
 * 2 on the turn of the event loop after the answer (its first checks on the answer's
 * candidates go out before that Diffie–Hellman) or, at the latest, when a pair is
 * selected. (Sending message 2 in a signal of its own after the answer, so that the
 * answer waits for no Diffie–Hellman, measured slower in the NAT lab: the extra signal's
 * signature checks and the Diffie–Hellman then fall in the middle of the ICE checks.)
 *
 * @module
 */
import { IceSignalInvalidError } from '../errors.js'
import type { TransportKeyPair } from '../transport/secure-connection-options.js'
import { SecureHandshake } from '../transport/secure-handshake.js'

/** What an {@link AttemptHandshake} needs of its attempt. @internal */
export interface AttemptHandshakeContext {
  initiator: boolean
  keyPair: TransportKeyPair
  /** The key the listening side must prove. */
  expectedKey(): Uint8Array
  /** Ends the attempt. */
  abort(reason: unknown): void
  /** Whether the attempt is over. */
  finished(): boolean
}

/**
 * One attempt's half of messages 1 and 2.
 *
 * @internal (used by `ConnectAttempt`)
 */
export class AttemptHandshake {
  readonly #ctx: AttemptHandshakeContext
  #handshake: SecureHandshake | undefined
  /** The offer's message 1, until the answer is built (listening side). */
  #message1: Uint8Array | undefined
  /** The answer's message 2, until it is read (connecting side). */
  #message2: Uint8Array | undefined
  #accepted = false

  constructor(ctx: AttemptHandshakeContext) {
    this.#ctx = ctx
  }

  /**
   * The message for our offer (message 1) or answer (message 2, from the offer's
   * message 1; undefined when the offer carried none).
   *
   * @throws HandshakeFailedError for an offer's message 1 that is not valid.
   */
  localMessage(): Uint8Array | undefined {
    if (this.#ctx.initiator) {
      this.#handshake ??= SecureHandshake.initiate(this.#ctx.keyPair)
      return this.#handshake.message
    }
    const message1 = this.#message1
    this.#message1 = undefined
    if (message1 !== undefined) this.#handshake = SecureHandshake.respond(this.#ctx.keyPair, message1)
    return this.#handshake?.message
  }

  /**
   * The handshake message of the peer's offer (message 1, listening side) or answer
   * (message 2, connecting side).
   *
   * @throws IceSignalInvalidError for an answer without message 2 to an offer with one.
   */
  onRemote(message: Uint8Array | undefined): void {
    if (!this.#ctx.initiator) {
      this.#message1 = message
      return
    }
    if (this.#handshake === undefined) return
    if (message === undefined) throw new IceSignalInvalidError('The answer carries no handshake message')
    this.#message2 = message
    // Our first checks on the answer's candidates go out before its Diffie-Hellman.
    setImmediate(() => void this.#accept())
  }

  /**
   * The handshake for `openSecureConnection` when a pair is selected, or undefined when
   * there is none (the whole handshake then runs on the stream).
   *
   * @throws IceSignalInvalidError when message 2 was refused (the attempt has ended).
   */
  forSelection(): SecureHandshake | undefined {
    if (this.#ctx.initiator && this.#handshake !== undefined && !this.#accept()) throw new IceSignalInvalidError("The answer's handshake message was refused")
    return this.#handshake
  }

  /** Reads message 2 (checks the listening side's key) once; ends the attempt if it fails. */
  #accept(): boolean {
    if (this.#accepted) return true
    const message2 = this.#message2
    if (message2 === undefined || this.#ctx.finished()) return false
    this.#message2 = undefined
    try {
      this.#handshake!.accept(message2, this.#ctx.expectedKey())
      this.#accepted = true
      return true
    } catch (err) {
      this.#ctx.abort(err)
      return false
    }
  }
}
