/**
 * The first two messages of the secure connection's Noise XX handshake, run ahead of the
 * connection through another channel — peerlink's signalling, which already travels
 * between the two peers before any path exists: message 1 rides in the offer, message 2
 * in the answer. The udx stream then carries only message 3 and the records, so the
 * connection is verified one round trip sooner after ICE selects a path
 * (docs/secure-connection.md, "Handshake in the signalling").
 *
 * Nothing of the handshake's security depends on the channel: Noise XX messages are
 * meant to cross untrusted networks, the initiator checks the responder's static key in
 * message 2 as it would on the stream, and the responder checks the initiator's in
 * message 3, which still comes over the stream.
 *
 * @module
 */
import NoiseState from 'noise-handshake'
import curve from 'noise-curve-ed'
import { timingSafeEqual } from 'node:crypto'
import { HandshakeFailedError, InvalidArgumentError, PeerIdentityMismatchError } from '../errors.js'
import { peerIdFromPublicKey } from '../identity/peer-id.js'
import type { TransportKeyPair } from './secure-connection-options.js'

/** Domain separation of the Noise handshake (mixed into its hash as the prologue). */
export const SECURE_CONNECTION_PROLOGUE = Buffer.from('peerlink/secure-connection/v1')

/** The largest handshake message accepted (XX messages with empty payloads are 32–96 bytes). */
export const MAX_HANDSHAKE_MESSAGE = 1024

/** A new Noise XX state with our key and the protocol's prologue. @internal */
export function newNoiseState(isInitiator: boolean, keyPair: TransportKeyPair): NoiseState {
  const noise = new NoiseState('XX', isInitiator, { publicKey: toBuffer(keyPair.publicKey), secretKey: toBuffer(keyPair.secretKey) }, { curve })
  noise.initialise(SECURE_CONNECTION_PROLOGUE)
  return noise
}

/** Reads a handshake message whose payload must be empty; throws what `recv` throws, or for a payload. @internal */
export function readHandshakeMessage(noise: NoiseState, message: Uint8Array): void {
  // Every handshake payload is empty in this version: anything else is not ours.
  if (noise.recv(message).length > 0) throw new Error('a handshake message carries a payload')
}

/**
 * Whether `actual` is `expected`, in constant time.
 *
 * @internal
 */
export function sameKey(actual: Uint8Array, expected: Uint8Array): boolean {
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/**
 * Messages 1 and 2 of a secure connection's handshake, exchanged out of band; give the
 * result to `openSecureConnection`'s `handshake` option (once: it is then used up).
 *
 * @example
 * ```ts
 * // connecting side                               // listening side
 * const mine = SecureHandshake.initiate(keyPair)
 * // offer carries mine.message  ───────────────▶ const theirs = SecureHandshake.respond(keyPair, offerMessage)
 * // answer carries theirs.message ◀────────────
 * mine.accept(answerMessage, expectedKey)         // throws ERR_PEER_IDENTITY_MISMATCH for another key
 * await openSecureConnection({ …, isInitiator: true, handshake: mine })
 * ```
 */
export class SecureHandshake {
  /** The message to send to the other side (message 1 from the initiator, 2 from the responder). */
  readonly message: Uint8Array
  /** Whether this is the initiator's half. */
  readonly isInitiator: boolean
  #noise: NoiseState | null
  #ready: boolean

  private constructor(noise: NoiseState, message: Uint8Array, isInitiator: boolean, ready: boolean) {
    this.#noise = noise
    this.message = message
    this.isInitiator = isInitiator
    this.#ready = ready
  }

  /** The initiator's half: message 1 to send. */
  static initiate(keyPair: TransportKeyPair): SecureHandshake {
    const noise = newNoiseState(true, keyPair)
    return new SecureHandshake(noise, noise.send(), true, false)
  }

  /**
   * The responder's half, from the initiator's message 1: message 2 to send back.
   *
   * @throws {@link HandshakeFailedError} for a message that is not a Noise XX message 1.
   */
  static respond(keyPair: TransportKeyPair, message1: Uint8Array): SecureHandshake {
    if (!(message1 instanceof Uint8Array) || message1.length > MAX_HANDSHAKE_MESSAGE) throw new HandshakeFailedError('The handshake message 1 is missing or too long')
    const noise = newNoiseState(false, keyPair)
    try {
      readHandshakeMessage(noise, message1)
      return new SecureHandshake(noise, noise.send(), false, true)
    } catch (err) {
      throw new HandshakeFailedError(`The handshake message 1 is not valid: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * The initiator reads the responder's message 2 and checks its static key.
   *
   * @throws {@link PeerIdentityMismatchError} when it proves another key than `expected`
   *   (formatted with `formatPeerId` in the error), {@link HandshakeFailedError} for a
   *   corrupt message, {@link InvalidArgumentError} for a second call or the responder's half.
   */
  accept(message2: Uint8Array, expected: Uint8Array, formatPeerId: (publicKey: Uint8Array) => string = peerIdFromPublicKey): void {
    const noise = this.#noise
    if (!this.isInitiator || this.#ready || noise === null) throw new InvalidArgumentError('accept() is for the initiator, once')
    if (!(message2 instanceof Uint8Array) || message2.length > MAX_HANDSHAKE_MESSAGE) throw new HandshakeFailedError('The handshake message 2 is missing or too long')
    try {
      readHandshakeMessage(noise, message2)
    } catch (err) {
      this.#noise = null
      throw new HandshakeFailedError(`The handshake message 2 is not valid: ${(err as Error).message}`, { cause: err })
    }
    const actual = noise.rs!
    if (!sameKey(actual, expected)) {
      this.#noise = null
      throw new PeerIdentityMismatchError(formatPeerId(expected), formatPeerId(actual))
    }
    this.#ready = true
  }

  /**
   * The Noise state, ready for the stream (the initiator's after {@link accept}, to send
   * message 3; the responder's, to read it), or undefined when not ready or already
   * taken.
   *
   * @internal (openSecureConnection)
   */
  take(): NoiseState | undefined {
    if (!this.#ready) return undefined
    const noise = this.#noise ?? undefined
    this.#noise = null
    this.#ready = false
    return noise
  }
}

/** `bytes` as a Buffer over the same memory (no copy). @internal */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
