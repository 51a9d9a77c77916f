/**
 * The verified Noise handshake, over any transport: waits until secret-stream has run the
 * handshake *and* the remote's key is exactly the expected one *and* the remote's header
 * frame has arrived (so the first application byte cannot be lost to a race), or fails
 * with a typed error. Used by the tunnel path (`tunnel-secure-connection.ts`, over a
 * WebSocket); the UDP paths run their own handshake and records (`secure-connection.ts`,
 * docs/secure-connection.md).
 *
 * On an identity mismatch the secret stream is destroyed inside its `handshake` event,
 * before it writes its own header: no application byte is ever exchanged with an impostor.
 *
 * @module
 */
import { timingSafeEqual } from 'node:crypto'
import type NoiseSecretStream from '@hyperswarm/secret-stream'
import { AbortError, PeerIdentityMismatchError, type PeerlinkError } from '../errors.js'
import { createFrameCounter, remoteFramesUntilHeader } from './frame-counter.js'

/** The raw transport under the secret stream, as far as the handshake needs it. */
export interface HandshakeTransport {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown
  off(event: 'data', listener: (chunk: Uint8Array) => void): unknown
  destroy(): unknown
}

/** Options of {@link verifiedHandshake}. */
export interface VerifiedHandshakeOptions {
  /** The secret stream, just created over `raw`. */
  secret: NoiseSecretStream
  /** Its transport (frames are counted on it to see the remote's header). */
  raw: HandshakeTransport
  /** Whether this side started the handshake. */
  isInitiator: boolean
  /** The remote static key the handshake must prove (32 bytes). */
  expected: Buffer
  /** The PeerId text of a public key, for messages. */
  formatPeerId: (publicKey: Uint8Array) => string
  /** Milliseconds before {@link VerifiedHandshakeOptions.timeoutError}. */
  timeoutMs: number
  /** The error after `timeoutMs`. */
  timeoutError: () => PeerlinkError
  /** The error for an error of the secret stream during the handshake. */
  errorOf: (err: Error) => PeerlinkError
  /** The error when the secret stream closes during the handshake. */
  closeError: () => PeerlinkError
  /**
   * Cancels the handshake (`AbortError`).
   * @default undefined
   */
  signal?: AbortSignal | undefined
  /**
   * Count frames only from the next microtask: for a Node `Duplex` transport, where
   * secret-stream attaches its own `'data'` listener in a microtask and the counter must
   * not set the stream flowing before that.
   * @default false
   */
  deferCounter?: boolean
  /**
   * Destroy the transport as well as the secret stream on failure.
   * @default false
   */
  destroyRawOnFail?: boolean
  /**
   * Call `create()` as soon as the remote's key is verified, before its header comes,
   * and give the result to this callback (the promise still resolves with it once the
   * header has come). The caller may write at once: secret-stream sends what is written
   * after its own header, readable only by the verified remote.
   * @default undefined
   */
  onVerified?: ((value: unknown) => void) | undefined
}

/**
 * Resolves with `create()` — called synchronously once the handshake is verified and the
 * remote's header has come (or at verification, with `onVerified`) — or rejects with
 * `PeerIdentityMismatchError`, the errors of the options, or `AbortError`.
 */
export function verifiedHandshake<T>(options: VerifiedHandshakeOptions, create: () => T): Promise<T> {
  const { secret, raw, expected, signal } = options
  return new Promise<T>((resolve, reject) => {
    let settled = false
    let verified = false
    let confirmed = false

    const countFrames = createFrameCounter(remoteFramesUntilHeader(options.isInitiator), () => {
      confirmed = true
      raw.off('data', countFrames)
      // Let secret-stream process the header in the same chunk before deciding.
      queueMicrotask(maybeResolve)
    })

    const cleanup = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      raw.off('data', countFrames)
      secret.off('handshake', onHandshake)
      secret.off('error', onError)
      secret.off('close', onClose)
    }

    const fail = (err: PeerlinkError): void => {
      if (settled) return
      settled = true
      cleanup()
      // Destroying inside 'handshake' stops secret-stream before it writes its header.
      secret.destroy()
      if (options.destroyRawOnFail === true) raw.destroy()
      reject(err)
    }

    let early: { value: T } | undefined
    function maybeResolve(): void {
      if (settled || !verified || !confirmed) return
      if (secret.destroying) return // its 'error' / 'close' handler reports why
      settled = true
      cleanup()
      resolve(early === undefined ? create() : early.value)
    }

    function onHandshake(): void {
      const actual = secret.remotePublicKey
      if (actual === null || actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        fail(new PeerIdentityMismatchError(options.formatPeerId(expected), actual === null ? '(none)' : options.formatPeerId(actual)))
        return
      }
      verified = true
      if (options.onVerified !== undefined && !confirmed) {
        try {
          early = { value: create() }
          options.onVerified(early.value)
        } catch (err) {
          fail(options.errorOf(err as Error))
          return
        }
      }
      maybeResolve()
    }

    function onError(err: Error): void {
      fail(options.errorOf(err))
    }

    function onClose(): void {
      fail(options.closeError())
    }

    function onAbort(): void {
      fail(new AbortError(undefined, { cause: signal?.reason }))
    }

    const timer = setTimeout(() => fail(options.timeoutError()), options.timeoutMs)

    secret.on('handshake', onHandshake)
    secret.on('error', onError)
    secret.on('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (options.deferCounter === true) {
      queueMicrotask(() => {
        if (!settled) raw.on('data', countFrames)
      })
    } else {
      raw.on('data', countFrames)
    }
  })
}
