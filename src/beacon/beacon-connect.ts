/**
 * Opening one authenticated connection to a Beacon: TLS (pinned to `#CERT_HASH`, or
 * validated against CAs without a pin), the WebSocket upgrade, then the challenge and
 * proof of key, bound to the certificate this client saw.
 *
 * @module
 */
import { isIP } from 'node:net'
import type tls from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type WebSocket from 'ws'
import {
  type AbortError,
  BeaconAuthError,
  BeaconCertMismatchError,
  BeaconLimitError,
  BeaconPeerNotFoundError,
  BeaconProtocolError,
  BeaconRateLimitedError,
  BeaconUnavailableError,
  CertificatePinMismatchError,
  ConnectFailedError,
  type HostUnresolvedError,
  type PeerlinkError,
  throwIfAborted,
} from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { awaitWebSocket, caSecureContext, openPinnedWebSocket } from '../pinned-websocket.js'
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
  throwIfAborted(signal)
  const where = formatBeaconAddress(spec)
  try {
    return await openPinnedWebSocket(
      {
        host: spec.host,
        port: spec.port,
        secure: true,
        certHash: spec.certHash,
        servername: spec.hostType === 'dns' ? spec.host : undefined,
        ca: options.ca,
        secureContext: options.secureContext,
        serverName: `Beacon ${where}`,
        connectionName: `TLS connection to Beacon ${where}`,
        timeout: options.timeout,
        signal,
        url: `wss://${where}/`,
        maxPayload: BEACON_MAX_MESSAGE_BYTES * 4,
      },
      async ({ ws, socket, certificateHash }, deadline) => {
        // Always TLS here, so there is a certificate hash.
        const welcome = await handshake(ws, identity, certificateHash as Buffer, where, deadline)
        return { ws, socket: socket as TLSSocket, welcome }
      },
    )
  } catch (err) {
    if (err instanceof CertificatePinMismatchError) throw new BeaconCertMismatchError(where, err)
    throw err
  }
}

function handshake(ws: WebSocket, identity: Identity, certHash: Uint8Array, where: string, signal: AbortSignal): Promise<WelcomeMessage> {
  let state: 'open' | 'challenged' = 'open'
  return awaitWebSocket<WelcomeMessage>(ws, signal, (resolve, fail) => ({
    message(data: Buffer, isBinary: boolean) {
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
        return resolve(message)
      }
      fail(new BeaconProtocolError(`Beacon ${where} sent ${message.type} during the handshake`))
    },
    error(err: Error) {
      const tooBig = (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
      fail(tooBig ? new BeaconProtocolError(`Beacon ${where} sent an oversized message`, { cause: err }) : new ConnectFailedError(`WebSocket to Beacon ${where} failed: ${err.message}`, { cause: err }))
    },
    close: (code: number, reason: Buffer) => fail(new ConnectFailedError(`Beacon ${where} closed the connection (${code} ${reason.toString()})`)),
  }))
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
  return caSecureContext(ca)
}
