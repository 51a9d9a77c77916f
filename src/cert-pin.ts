/**
 * Certificate pins: `HOST:PORT#CERT_HASH` (ARCHITECTURE §5). CERT_HASH is
 * base64url (no padding, 43 characters) of the SHA-256 of the server's DER certificate,
 * the content of the server's `certificate_hash.txt`. A pinned client accepts exactly
 * that certificate, self-signed or not, whatever its names and dates: the pin is the
 * trust decision.
 *
 * ## Why not `checkServerIdentity` alone
 *
 * Node calls `tls.connect`'s `checkServerIdentity` only after the certificate chain has
 * verified against the CAs. A self-signed server certificate never verifies, so with
 * `rejectUnauthorized: false` the callback is silently skipped and any certificate is
 * accepted. For self-signed servers use {@link connectTlsPinned} (or
 * {@link verifyCertificatePin} on `secureConnect`, before writing anything);
 * {@link pinnedCertificateCheck} is for the case where the chain does verify (a
 * CA-issued certificate, or `ca: theCertificate`) and the pin is an extra check.
 *
 * This module sits below both the clients and the servers: the `peerlink-server`
 * command writes the hash with {@link certificateHash}, clients check it here.
 *
 * @module
 */
import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import tls from 'node:tls'
import { AbortError, CertificatePinMismatchError, ConnectFailedError, InvalidArgumentError, throwIfAborted } from './errors.js'

const HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/

/**
 * The pin of a certificate: base64url (no padding) of SHA-256 over its DER encoding.
 *
 * @param certificate - PEM text (the first certificate in it counts) or DER bytes.
 * @throws `InvalidArgumentError` when `certificate` is not an X.509 certificate.
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises'
 * import { certificateHash } from 'peerlink/server'
 *
 * certificateHash(await readFile('cert.pem', 'utf8')) // 'weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk'
 * ```
 */
export function certificateHash(certificate: string | Uint8Array): string {
  return createHash('sha256').update(certificateDer(certificate)).digest('base64url')
}

/**
 * The DER bytes of a certificate given as PEM text or DER bytes.
 *
 * @throws `InvalidArgumentError` when `certificate` is not an X.509 certificate.
 */
export function certificateDer(certificate: string | Uint8Array): Buffer {
  if (typeof certificate !== 'string' && !(certificate instanceof Uint8Array)) {
    throw new InvalidArgumentError('certificate must be PEM text or DER bytes')
  }
  try {
    return new X509Certificate(typeof certificate === 'string' ? certificate : Buffer.from(certificate)).raw
  } catch (err) {
    throw new InvalidArgumentError('not an X.509 certificate (PEM or DER)', { cause: err })
  }
}

/**
 * Checks the form of a pin (43 base64url characters encoding 32 bytes) and returns its bytes.
 *
 * @throws `InvalidArgumentError` when `hash` is not a certificate hash.
 */
export function parseCertificateHash(hash: string): Buffer {
  const bytes = typeof hash === 'string' && HASH_PATTERN.test(hash) ? Buffer.from(hash, 'base64url') : undefined
  if (bytes === undefined || bytes.byteLength !== 32 || bytes.toString('base64url') !== hash) {
    throw new InvalidArgumentError('a certificate hash is 43 base64url characters: the SHA-256 of the DER certificate')
  }
  return bytes
}

/**
 * Compares a presented certificate with a pin in constant time.
 *
 * @param presented - the certificate's DER bytes (`peerCertificate.raw`); `undefined` (no certificate) never matches.
 * @returns `undefined` when it matches, else the error to fail with.
 * @throws `InvalidArgumentError` when `hash` is not a certificate hash.
 */
export function checkCertificatePin(presented: Uint8Array | undefined, hash: string): CertificatePinMismatchError | undefined {
  const expected = parseCertificateHash(hash)
  if (presented === undefined || presented.byteLength === 0) return new CertificatePinMismatchError(hash, '(no certificate)')
  const actual = createHash('sha256').update(presented).digest()
  return timingSafeEqual(actual, expected) ? undefined : new CertificatePinMismatchError(hash, actual.toString('base64url'))
}

/**
 * A `checkServerIdentity` for `tls.connect` / `https` / `ws` that accepts only the
 * certificate whose hash is `hash` (its names are not checked: the pin replaces them).
 *
 * Node only calls it once the chain has verified (see the module notes): for a
 * self-signed server, use {@link connectTlsPinned} instead.
 *
 * @throws `InvalidArgumentError` at once when `hash` is not a certificate hash.
 * @example
 * ```ts
 * import tls from 'node:tls'
 * import { pinnedCertificateCheck } from 'peerlink/server'
 *
 * tls.connect({ host, port, ca: certPem, checkServerIdentity: pinnedCertificateCheck(hash) })
 * ```
 */
export function pinnedCertificateCheck(hash: string): (hostname: string, certificate: PeerCertificate) => Error | undefined {
  parseCertificateHash(hash)
  return (_hostname, certificate) => checkCertificatePin(certificate?.raw, hash)
}

/**
 * Checks the certificate of a connected TLS socket against a pin. Call it on
 * `secureConnect` and before writing anything.
 *
 * @throws `CertificatePinMismatchError` when the certificate does not match.
 * @throws `InvalidArgumentError` when `hash` is not a certificate hash.
 *
 * @example
 * ```ts
 * import tls from 'node:tls'
 * import { verifyCertificatePin } from 'peerlink/server'
 *
 * const socket = tls.connect({ host: 'tunnel.example.com', port: 8443, rejectUnauthorized: false })
 * socket.once('secureConnect', () => {
 *   verifyCertificatePin(socket, 'weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk')   // throws CertificatePinMismatchError
 *   socket.write('only now is it safe to talk')
 * })
 * ```
 */
export function verifyCertificatePin(socket: TLSSocket, hash: string): void {
  const error = checkCertificatePin(socket.getPeerCertificate(true)?.raw, hash)
  if (error !== undefined) throw error
}

/** Options of {@link connectTlsPinned}: those of `tls.connect`, plus the pin. */
export interface PinnedTlsConnectOptions extends Omit<tls.ConnectionOptions, 'rejectUnauthorized' | 'checkServerIdentity'> {
  /** The pinned certificate hash (`#CERT_HASH`). */
  certHash: string
  /**
   * Milliseconds for TCP connect plus TLS handshake.
   * @default 10_000
   */
  timeout?: number
  /**
   * Cancels the connection attempt; it then rejects with `AbortError`.
   * @default undefined
   */
  signal?: AbortSignal
}

/**
 * Opens a TLS connection that is accepted only if the server presents the pinned
 * certificate. Resolves once the handshake is done and the pin checked; nothing has
 * been written yet, so no secret can reach an impostor. For `ws`, pass the socket with
 * `createConnection: () => socket`.
 *
 * @throws `InvalidArgumentError` at once when `certHash` is not a certificate hash.
 * @throws `CertificatePinMismatchError` (rejects) when the certificate does not match; the socket is destroyed.
 * @throws `ConnectFailedError` (rejects) when the connection or handshake fails or times out.
 * @throws `AbortError` (rejects) when `signal` fires first.
 * @example
 * ```ts
 * import { connectTlsPinned } from 'peerlink/server'
 *
 * const socket = await connectTlsPinned({ host: '203.0.113.5', port: 4264, certHash })
 * ```
 */
export async function connectTlsPinned(options: PinnedTlsConnectOptions): Promise<TLSSocket> {
  const { certHash, signal, timeout = 10_000, ...connectOptions } = options
  parseCertificateHash(certHash)
  if (!(Number.isFinite(timeout) && timeout > 0)) throw new InvalidArgumentError('timeout must be a positive number of milliseconds')
  throwIfAborted(signal)
  const where = `${connectOptions.host ?? 'localhost'}:${connectOptions.port ?? ''}`
  return new Promise<TLSSocket>((resolve, reject) => {
    const socket = tls.connect({ ...connectOptions, rejectUnauthorized: false })
    const timer = setTimeout(() => fail(new ConnectFailedError(`TLS connection to ${where} timed out after ${timeout} ms`)), timeout)
    const onAbort = () => fail(new AbortError(undefined, { cause: signal?.reason }))
    const onError = (err: Error) => {
      const code = (err as { code?: unknown }).code
      fail(new ConnectFailedError(`TLS connection to ${where} failed: ${typeof code === 'string' ? code : err.message}`, { cause: err }))
    }
    const onClose = () => fail(new ConnectFailedError(`TLS connection to ${where} closed during the handshake`))
    const cleanup = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off('error', onError)
      socket.off('close', onClose)
    }
    function fail(err: Error): void {
      cleanup()
      socket.destroy()
      reject(err)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.once('secureConnect', () => {
      const mismatch = checkCertificatePin(socket.getPeerCertificate(true)?.raw, certHash)
      if (mismatch !== undefined) return fail(mismatch)
      cleanup()
      resolve(socket)
    })
  })
}
