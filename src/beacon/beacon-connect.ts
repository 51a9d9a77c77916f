/**
 * Opening one authenticated connection to a Beacon: TLS (pinned to `#CERT_HASH`, or
 * validated against CAs without a pin), the WebSocket upgrade, then the challenge and
 * proof of key, bound to the certificate this client saw.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import WebSocket from 'ws'
import { connectTlsPinned } from '../cert-pin.js'
import {
  AbortError,
  BeaconAuthError,
  BeaconCertMismatchError,
  BeaconLimitError,
  BeaconPeerNotFoundError,
  BeaconProtocolError,
  BeaconRateLimitedError,
  BeaconUnavailableError,
  CertificatePinMismatchError,
  ConnectFailedError,
  HostUnresolvedError,
  type PeerlinkError,
  throwIfAborted,
} from '../errors.js'
import type { Identity } from '../identity/identity.js'
import type { BeaconServerSpec } from '../server-spec.js'
import { signBeaconChallenge } from './beacon-auth.js'
import {
  BEACON_MAX_MESSAGE_BYTES,
  BEACON_PROTOCOL_VERSION,
  type ErrorMessage,
  type ServerMessage,
  type WelcomeMessage,
  decodeServerMessage,
  encodeClientMessage,
} from './beacon-messages.js'

/** Options of {@link connectBeacon}. */
export interface BeaconConnectOptions {
  /** The identity to prove. */
  identity: Identity
  /** The Beacon. */
  spec: BeaconServerSpec
  /**
   * Certificates to trust besides the system's CAs, for a Beacon without a pin.
   * @default undefined (the system's CAs)
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Milliseconds for TCP, TLS, the WebSocket upgrade and the proof of key together.
   * @default 10_000
   */
  timeout?: number
  /**
   * A TLS context to reuse for a Beacon without a pin (making one with the system's CAs
   * takes tens of milliseconds); it replaces `ca`. See {@link beaconSecureContext}.
   * @default undefined (made from `ca` for this connection)
   */
  secureContext?: tls.SecureContext
  /**
   * Cancels the attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal
}

/** An authenticated connection made by {@link connectBeacon}. */
export interface BeaconConnection {
  /** The WebSocket, open; no listeners of the handshake are left on it. */
  ws: WebSocket
  /** The TLS socket under `ws` (a client may write complete frames to it, as `BeaconClient` does). */
  socket: TLSSocket
  /** The server's welcome (observed address, limits). */
  welcome: WelcomeMessage
}

/**
 * `HOST:PORT` of a spec, IPv6 in brackets.
 *
 * @example
 * ```ts
 * import { formatBeaconAddress, parseBeaconSpec } from 'peerlink'
 *
 * formatBeaconAddress({ host: '2001:db8::1', port: 4264 })   // '[2001:db8::1]:4264'
 * formatBeaconAddress(parseBeaconSpec('beacon.example.com'))  // 'beacon.example.com:4264'
 * ```
 */
export function formatBeaconAddress(spec: Pick<BeaconServerSpec, 'host' | 'port'>): string {
  return `${isIP(spec.host) === 6 ? `[${spec.host}]` : spec.host}:${spec.port}`
}

/**
 * Connects and authenticates to a Beacon.
 *
 * @throws {@link BeaconCertMismatchError} (rejects) when a pinned Beacon presents another certificate.
 * @throws {@link ConnectFailedError} (rejects) when TCP/TLS/WebSocket fails or times out (including CA validation without a pin).
 * @throws {@link HostUnresolvedError} (rejects) when the host name does not resolve.
 * @throws {@link BeaconAuthError}, {@link BeaconProtocolError}, {@link BeaconLimitError} (rejects) when the Beacon refuses.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 *
 * @example
 * ```ts
 * import { connectBeacon, loadOrCreateIdentity, parseBeaconSpec } from 'peerlink'
 *
 * const { ws, welcome } = await connectBeacon({
 *   identity: await loadOrCreateIdentity('./peer.key'),
 *   spec: parseBeaconSpec('beacon.example.com:4264#weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk'),
 *   signal: AbortSignal.timeout(15_000),
 * })
 * console.log('the Beacon sees us at', welcome.observed)
 * ws.close()
 * ```
 */
export async function connectBeacon(options: BeaconConnectOptions): Promise<BeaconConnection> {
  const { identity, spec, signal } = options
  const timeout = options.timeout ?? 10_000
  throwIfAborted(signal)
  const where = formatBeaconAddress(spec)
  // One deadline for every step; the user's signal aborts it too.
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeout)
  const onAbort = () => controller.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const settle = (err: unknown): unknown => {
    if (signal?.aborted === true) return new AbortError(undefined, { cause: signal.reason })
    if (err instanceof AbortError || controller.signal.aborted) return new ConnectFailedError(`Beacon ${where} did not answer within ${timeout} ms`, { cause: err })
    return err
  }
  try {
    let socket: TLSSocket
    try {
      socket = await openTls(options, where, timeout, controller.signal)
    } catch (err) {
      throw settle(err)
    }
    // getPeerCertificate(false): the DER is all we need (the detailed form costs 10×).
    const certHash = createHash('sha256').update(socket.getPeerCertificate(false).raw).digest()
    const ws = new WebSocket(`wss://${where}/`, {
      createConnection: () => socket,
      perMessageDeflate: false,
      maxPayload: BEACON_MAX_MESSAGE_BYTES * 4,
      handshakeTimeout: timeout,
    })
    try {
      const welcome = await handshake(ws, identity, certHash, where, controller.signal)
      return { ws, socket, welcome }
    } catch (err) {
      ws.on('error', () => {})
      ws.terminate()
      socket.destroy()
      throw settle(err)
    }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

async function openTls(options: BeaconConnectOptions, where: string, timeout: number, signal: AbortSignal): Promise<TLSSocket> {
  const { spec } = options
  const servername = spec.hostType === 'dns' ? spec.host : undefined
  if (spec.certHash !== undefined) {
    try {
      // The pin decides; CAs play no part, so every pinned connection shares one context.
      pinnedContext ??= tls.createSecureContext()
      return await connectTlsPinned({ host: spec.host, port: spec.port, certHash: spec.certHash, timeout, signal, secureContext: pinnedContext, ...(servername ? { servername } : {}) })
    } catch (err) {
      if (err instanceof CertificatePinMismatchError) throw new BeaconCertMismatchError(where, err)
      throw err
    }
  }
  const secureContext = options.secureContext ?? (options.ca === undefined ? undefined : beaconSecureContext(options.ca))
  return new Promise<TLSSocket>((resolve, reject) => {
    const socket = tls.connect({ host: spec.host, port: spec.port, rejectUnauthorized: true, ...(servername ? { servername } : {}), ...(secureContext ? { secureContext } : {}) })
    const onAbort = () => fail(new AbortError())
    const onError = (err: NodeJS.ErrnoException) => {
      if ((err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') && spec.hostType === 'dns') return fail(new HostUnresolvedError(spec.host, err))
      fail(new ConnectFailedError(`TLS connection to Beacon ${where} failed: ${err.code ?? err.message}`, { cause: err }))
    }
    const onClose = () => fail(new ConnectFailedError(`TLS connection to Beacon ${where} closed during the handshake`))
    function cleanup(): void {
      signal.removeEventListener('abort', onAbort)
      socket.off('error', onError)
      socket.off('close', onClose)
    }
    function fail(err: Error): void {
      cleanup()
      socket.destroy()
      reject(err)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.once('secureConnect', () => {
      cleanup()
      resolve(socket)
    })
  })
}

function handshake(ws: WebSocket, identity: Identity, certHash: Uint8Array, where: string, signal: AbortSignal): Promise<WelcomeMessage> {
  return new Promise<WelcomeMessage>((resolve, reject) => {
    let state: 'open' | 'challenged' = 'open'
    const onAbort = () => fail(new AbortError())
    const onError = (err: Error) => {
      const tooBig = (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
      fail(tooBig ? new BeaconProtocolError(`Beacon ${where} sent an oversized message`, { cause: err }) : new ConnectFailedError(`WebSocket to Beacon ${where} failed: ${err.message}`, { cause: err }))
    }
    const onClose = (code: number, reason: Buffer) => fail(new ConnectFailedError(`Beacon ${where} closed the connection (${code} ${reason.toString()})`))
    const onMessage = (data: Buffer, isBinary: boolean) => {
      let message: ServerMessage
      try {
        if (!isBinary) throw new BeaconProtocolError('Beacon messages are binary frames')
        message = decodeServerMessage(data)
      } catch (err) {
        return fail(err as Error)
      }
      if (message.type === 'error') return fail(errorFromReply(message, where))
      if (state === 'open' && message.type === 'challenge') {
        if (message.version !== BEACON_PROTOCOL_VERSION) {
          return fail(new BeaconProtocolError(`Beacon ${where} speaks protocol version ${message.version}, this client ${BEACON_PROTOCOL_VERSION}`))
        }
        state = 'challenged'
        const signature = signBeaconChallenge(identity, BEACON_PROTOCOL_VERSION, message.nonce, certHash)
        ws.send(encodeClientMessage({ type: 'hello', version: BEACON_PROTOCOL_VERSION, peerId: identity.peerId, signature }))
        return
      }
      if (state === 'challenged' && message.type === 'welcome') {
        if (message.peerId !== identity.peerId) return fail(new BeaconProtocolError(`Beacon ${where} welcomed another PeerId`))
        cleanup()
        return resolve(message)
      }
      fail(new BeaconProtocolError(`Beacon ${where} sent ${message.type} during the handshake`))
    }
    function cleanup(): void {
      signal.removeEventListener('abort', onAbort)
      ws.off('message', onMessage)
      ws.off('error', onError)
      ws.off('close', onClose)
    }
    function fail(err: Error): void {
      cleanup()
      reject(err)
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    ws.on('message', onMessage)
    ws.on('error', onError)
    ws.on('close', onClose)
  })
}

/**
 * The error a client raises for an `error` reply.
 *
 * @param target - the PeerId a signal was for (names it in {@link BeaconPeerNotFoundError}).
 *
 * @example
 * ```ts
 * import { decodeServerMessage, errorFromReply } from 'peerlink'
 *
 * const reply = decodeServerMessage(frame)
 * if (reply.type === 'error') throw errorFromReply(reply, 'beacon.example.com:4264', targetPeerId)
 * // e.g. BeaconPeerNotFoundError for code 'peer-not-found', BeaconRateLimitedError for 'rate-limited'
 * ```
 */
export function errorFromReply(reply: ErrorMessage, where: string, target?: string): PeerlinkError {
  const text = `Beacon ${where}: ${reply.message}`
  switch (reply.code) {
    case 'auth':
      return new BeaconAuthError(text)
    case 'rate-limited':
      return new BeaconRateLimitedError(text)
    case 'limit':
      return new BeaconLimitError(text)
    case 'peer-not-found':
      return target === undefined ? new BeaconProtocolError(`${text} (peer-not-found for a request that names no peer)`) : new BeaconPeerNotFoundError(target)
    case 'unavailable':
      return new BeaconUnavailableError(text)
    default:
      return new BeaconProtocolError(`${text} (${reply.code})`)
  }
}

let pinnedContext: tls.SecureContext | undefined

/**
 * A TLS context that trusts the system's CAs and `ca`, for Beacons without a pin; make
 * it once and pass it as `secureContext` to every connection.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs'
 * import { beaconSecureContext, connectBeacon, parseBeaconSpec } from 'peerlink'
 *
 * const secureContext = beaconSecureContext(readFileSync('./company-ca.pem', 'utf8'))   // once
 * for (const text of ['b1.example.com', 'b2.example.com']) {
 *   await connectBeacon({ identity, spec: parseBeaconSpec(text), secureContext })
 * }
 * ```
 */
export function beaconSecureContext(ca: string | Uint8Array | ReadonlyArray<string | Uint8Array>): tls.SecureContext {
  return tls.createSecureContext({ ca: [...tls.rootCertificates, ...(Array.isArray(ca) ? ca : [ca as string | Uint8Array]).map(pem)] })
}

function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value)
}
