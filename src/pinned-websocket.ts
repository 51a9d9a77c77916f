/**
 * Opening a socket, and a WebSocket over it, to one of peerlink's servers (a Beacon, a
 * tunnel server): plain TCP (`ws://`) or TLS (`wss://`), the TLS certificate either
 * pinned to `#CERT_HASH` (the pin decides; CAs play no part, so every pinned connection
 * shares one TLS context) or validated against the system's CAs and any extra ones.
 *
 * One deadline covers an attempt, including what the caller does on the new socket (the
 * WebSocket upgrade, a login); when it fails, the socket is destroyed and the error
 * reported as the caller's: `AbortError` when the caller's signal fired, a
 * `ConnectFailedError` "did not answer" when the deadline passed, else the step's own.
 * {@link awaitWebSocket} waits on the WebSocket's events during those steps.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { ClientRequest, IncomingMessage } from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import WebSocket from 'ws'
import { connectTlsPinned } from './cert-pin.js'
import { AbortError, ConnectFailedError, HostUnresolvedError } from './errors.js'

/** Options of {@link withServerSocket}: where and how to connect, and how errors name the server. */
export interface ServerSocketOptions {
  /** Host name or IP address (IPv6 without brackets). */
  host: string
  /** Port. */
  port: number
  /** TLS (`wss://`) rather than plain TCP (`ws://`). */
  secure: boolean
  /** The pinned certificate hash (TLS only), or `undefined` for CA validation. */
  certHash: string | undefined
  /**
   * The TLS server name: the host when it is a DNS name, `undefined` for an IP address.
   * Only a named host fails with `HostUnresolvedError`.
   */
  servername: string | undefined
  /**
   * Certificates to trust besides the system's CAs (TLS without a pin).
   * @default undefined
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  /**
   * A TLS context for TLS without a pin; it replaces `ca`.
   * @default undefined (made from `ca` for this connection)
   */
  secureContext?: tls.SecureContext | undefined
  /** The server in errors, with its address (`Beacon beacon.example.com:4264`). */
  serverName: string
  /** The connection in errors, with the address (`TLS connection to Beacon beacon.example.com:4264`). */
  connectionName: string
  /**
   * Milliseconds for the whole attempt.
   * @default 10_000
   */
  timeout?: number | undefined
  /**
   * Cancels the attempt (rejects with `AbortError`).
   * @default undefined
   */
  signal?: AbortSignal | undefined
}

/** Options of {@link openPinnedWebSocket}. */
export interface PinnedWebSocketOptions extends ServerSocketOptions {
  /** The WebSocket URL (its host names the server in the upgrade request). */
  url: string
  /** Largest message accepted from the server, in bytes. */
  maxPayload: number
  /**
   * Masks client frames with a zero key (TLS only: nothing on the path can see them).
   * @default false
   */
  zeroMask?: boolean
}

/** A WebSocket made by {@link openPinnedWebSocket}, before its upgrade is done. */
export interface PinnedWebSocket {
  /** The WebSocket, upgrading. */
  ws: WebSocket
  /** The TCP or TLS socket under it. */
  socket: net.Socket
  /** SHA-256 of the server's DER certificate (TLS), `undefined` over plain TCP. */
  certificateHash: Buffer | undefined
}

/** The WebSocket events {@link awaitWebSocket} listens to, and their handlers. */
export interface WebSocketListeners {
  /** The upgrade succeeded. */
  open?: () => void
  /** A message. */
  message?: (data: Buffer, isBinary: boolean) => void
  /** The WebSocket failed. */
  error?: (error: Error) => void
  /** The WebSocket closed. */
  close?: (code: number, reason: Buffer) => void
  /** The server answered the upgrade with something else. */
  'unexpected-response'?: (request: ClientRequest, response: IncomingMessage) => void
}

let pinnedContext: tls.SecureContext | undefined

/**
 * Opens a TCP or TLS socket to a server (see the module notes) and runs `use` on it
 * within the attempt's deadline. When `use` fails, the socket is destroyed.
 *
 * @param use - the caller's steps on the socket; `signal` fires at the deadline or when `options.signal` does.
 * @throws `ConnectFailedError` (rejects) when TCP or TLS fails, or the deadline passes.
 * @throws `CertificatePinMismatchError` (rejects) when a pinned server presents another certificate.
 * @throws `HostUnresolvedError` (rejects) when the host name does not resolve.
 * @throws `AbortError` (rejects) when `options.signal` fires first.
 *
 * @example
 * ```ts
 * const head = await withServerSocket(
 *   { host, port, secure: true, certHash, servername: host, serverName: `tunnel server ${host}`, connectionName: `connection to tunnel server ${host}` },
 *   (socket, signal) => upgradeByHand(socket, signal),
 * )
 * ```
 */
export async function withServerSocket<T>(options: ServerSocketOptions, use: (socket: net.Socket, signal: AbortSignal, timeout: number) => Promise<T>): Promise<T> {
  const timeout = options.timeout ?? 10_000
  const { signal } = options
  // One deadline for every step; the caller's signal aborts it too.
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeout)
  const onAbort = () => controller.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const settle = (err: unknown): unknown => {
    if (signal?.aborted === true) return new AbortError(undefined, { cause: signal.reason })
    if (err instanceof AbortError || controller.signal.aborted) return new ConnectFailedError(`${options.serverName} did not answer within ${timeout} ms`, { cause: err })
    return err
  }
  try {
    let socket: net.Socket
    try {
      socket = await connectServerSocket(options, timeout, controller.signal)
    } catch (err) {
      throw settle(err)
    }
    try {
      return await use(socket, controller.signal, timeout)
    } catch (err) {
      socket.destroy()
      throw settle(err)
    }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * Opens a socket to a server ({@link withServerSocket}) and a WebSocket over it, then
 * runs `use` (the upgrade, a login) within the same deadline. When `use` fails, the
 * WebSocket is terminated and the socket destroyed.
 *
 * @throws as {@link withServerSocket}.
 *
 * @example
 * ```ts
 * const welcome = await openPinnedWebSocket(
 *   { host, port, secure: true, certHash, servername: host, serverName: `Beacon ${host}`, connectionName: `TLS connection to Beacon ${host}`, url: `wss://${host}/`, maxPayload: 65_536 },
 *   ({ ws, certificateHash }, signal) => logIn(ws, certificateHash, signal),
 * )
 * ```
 */
export function openPinnedWebSocket<T>(options: PinnedWebSocketOptions, use: (opened: PinnedWebSocket, signal: AbortSignal) => Promise<T>): Promise<T> {
  return withServerSocket(options, async (socket, signal, timeout) => {
    // getPeerCertificate(false): the DER is all we need (the detailed form costs 10×).
    const certificateHash = socket instanceof tls.TLSSocket ? createHash('sha256').update(socket.getPeerCertificate(false).raw).digest() : undefined
    const ws = new WebSocket(options.url, {
      createConnection: () => socket,
      perMessageDeflate: false,
      maxPayload: options.maxPayload,
      handshakeTimeout: timeout,
      // Over TLS nobody on the path can see the frames, so masking (RFC 6455 §5.3, a
      // defence for browsers' traffic through clear-text proxies) only costs CPU.
      ...(options.zeroMask === true ? { generateMask: zeroMask } : {}),
    })
    try {
      return await use({ ws, socket, certificateHash }, signal)
    } catch (err) {
      ws.on('error', ignore)
      ws.terminate()
      throw err
    }
  })
}

/**
 * Waits on a WebSocket's events until a handler settles: `listen` gets the `resolve`
 * and `fail` of the wait and returns its handlers. They are attached at once and all
 * removed as soon as the wait settles; `signal` fails it with `AbortError`.
 *
 * @throws `AbortError` (rejects) when `signal` fires first, else what the handlers fail with.
 *
 * @example
 * ```ts
 * await awaitWebSocket<void>(ws, signal, (resolve, fail) => ({
 *   open: () => resolve(),
 *   error: (err) => fail(new ConnectFailedError(`WebSocket failed: ${err.message}`, { cause: err })),
 * }))
 * ```
 */
export function awaitWebSocket<T>(
  ws: WebSocket,
  signal: AbortSignal,
  listen: (resolve: (value: T) => void, fail: (error: Error) => void) => WebSocketListeners,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let attached: Array<[string, (...args: unknown[]) => void]> = []
    const onAbort = () => fail(new AbortError())
    function cleanup(): void {
      signal.removeEventListener('abort', onAbort)
      for (const [event, listener] of attached) ws.off(event, listener)
    }
    function fail(err: Error): void {
      cleanup()
      reject(err)
    }
    const listeners = listen((value) => {
      cleanup()
      resolve(value)
    }, fail)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    attached = Object.entries(listeners).filter((entry) => entry[1] !== undefined) as Array<[string, (...args: unknown[]) => void]>
    for (const [event, listener] of attached) ws.on(event, listener)
  })
}

/**
 * A TLS context that trusts the system's CAs and `ca`.
 *
 * @example
 * ```ts
 * const secureContext = caSecureContext(readFileSync('./company-ca.pem', 'utf8'))
 * ```
 */
export function caSecureContext(ca: string | Uint8Array | ReadonlyArray<string | Uint8Array>): tls.SecureContext {
  return tls.createSecureContext({ ca: [...tls.rootCertificates, ...(Array.isArray(ca) ? ca : [ca as string | Uint8Array]).map(pem)] })
}

async function connectServerSocket(options: ServerSocketOptions, timeout: number, signal: AbortSignal): Promise<net.Socket> {
  const { host, port, servername, connectionName } = options
  if (options.secure && options.certHash !== undefined) {
    pinnedContext ??= tls.createSecureContext()
    return connectTlsPinned({ host, port, certHash: options.certHash, timeout, signal, secureContext: pinnedContext, ...(servername ? { servername } : {}) })
  }
  const secureContext = options.secure ? (options.secureContext ?? (options.ca === undefined ? undefined : caSecureContext(options.ca))) : undefined
  return new Promise<net.Socket>((resolve, reject) => {
    const socket: net.Socket = options.secure
      ? tls.connect({ host, port, rejectUnauthorized: true, ...(servername ? { servername } : {}), ...(secureContext ? { secureContext } : {}) })
      : net.connect({ host, port })
    const onAbort = () => fail(new AbortError())
    const onError = (err: NodeJS.ErrnoException) => {
      if ((err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') && servername !== undefined) return fail(new HostUnresolvedError(host, err))
      fail(new ConnectFailedError(`${connectionName} failed: ${err.code ?? err.message}`, { cause: err }))
    }
    const onClose = () => fail(new ConnectFailedError(`${connectionName} closed during the handshake`))
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
    socket.once(options.secure ? 'secureConnect' : 'connect', () => {
      cleanup()
      resolve(socket)
    })
  })
}

function zeroMask(mask: Buffer): void {
  mask.fill(0)
}

function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value)
}

function ignore(): void {}
