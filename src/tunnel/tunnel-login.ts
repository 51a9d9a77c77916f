/**
 * Logging in to a tunnel server: open the control WebSocket (following redirects),
 * answer the challenge with the token and/or the identity's signature, and wait for the
 * welcome. Refusals become typed errors ({@link tunnelErrorFromReply}).
 *
 * @module
 */
import type WebSocket from 'ws'
import {
  AbortError,
  type PeerlinkError,
  TunnelAuthError,
  TunnelLimitError,
  TunnelNameTakenError,
  TunnelProtocolError,
  TunnelUnavailableError,
} from '../errors.js'
import type { Identity } from '../identity/identity.js'
import { signTunnelChallenge } from './tunnel-auth.js'
import { type TunnelEndpoint, formatTunnelAddress, openTunnelSocket } from './tunnel-connect.js'
import {
  TUNNEL_MAX_MESSAGE_BYTES,
  TUNNEL_PROTOCOL_VERSION,
  type TunnelErrorMessage,
  type TunnelHelloMessage,
  type TunnelServerMessage,
  type TunnelWelcomeMessage,
  decodeTunnelServerMessage,
  encodeTunnelClientMessage,
} from './tunnel-messages.js'

/** Options of {@link loginTunnel}. */
export interface TunnelLoginOptions {
  /** The control endpoint (path `…/v1/control`). */
  endpoint: TunnelEndpoint
  /** The hello to send, without credentials. */
  hello: Omit<TunnelHelloMessage, 'type' | 'version' | 'token' | 'peerId' | 'signature'>
  /** A device token. */
  token: string | undefined
  /** An identity to sign the challenge with. */
  identity: Identity | undefined
  /** Extra certificates to trust (no pin). */
  ca: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  /** Milliseconds for the whole login. */
  timeout: number
  /** Cancels the login. */
  signal: AbortSignal
}

/** A logged-in control socket. */
export interface TunnelLogin {
  /** The control WebSocket, open. Its messages after the welcome are held until {@link TunnelLogin.attach}. */
  ws: WebSocket
  /** Where it ended up (after redirects). */
  endpoint: TunnelEndpoint
  /** The server's welcome. */
  welcome: TunnelWelcomeMessage
  /** Hands the socket's messages to `onMessage`, first those that arrived since the welcome. */
  attach(onMessage: (data: Buffer, isBinary: boolean) => void): void
}

/**
 * Logs in (see the module notes).
 *
 * @throws `ConnectFailedError`, `HostUnresolvedError`, `CertificatePinMismatchError` (rejects) when the server cannot be reached.
 * @throws {@link TunnelAuthError}, {@link TunnelNameTakenError}, {@link TunnelLimitError}, {@link TunnelProtocolError}, {@link TunnelUnavailableError} (rejects) when it refuses.
 * @throws {@link AbortError} (rejects) when `signal` fires first.
 */
export async function loginTunnel(options: TunnelLoginOptions): Promise<TunnelLogin> {
  const { signal, timeout } = options
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeout)
  const onAbort = () => controller.abort()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const opened = await openTunnelSocket({
      endpoint: options.endpoint,
      followRedirects: true,
      maxPayload: TUNNEL_MAX_MESSAGE_BYTES * 4,
      timeout,
      signal: controller.signal,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    }).catch((err: unknown) => {
      if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (err instanceof AbortError) throw new TunnelUnavailableError(`tunnel server ${formatTunnelAddress(options.endpoint)} did not answer within ${timeout} ms`, { cause: err })
      throw err
    })
    try {
      const { welcome, attach } = await handshake(opened.ws, options, opened.binding, formatTunnelAddress(opened.endpoint), controller.signal)
      return { ws: opened.ws, endpoint: opened.endpoint, welcome, attach }
    } catch (err) {
      opened.ws.on('error', () => {})
      opened.ws.terminate()
      if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (err instanceof AbortError) throw new TunnelUnavailableError(`tunnel server ${formatTunnelAddress(opened.endpoint)} did not log us in within ${timeout} ms`, { cause: err })
      throw err
    }
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}

function handshake(
  ws: WebSocket,
  options: TunnelLoginOptions,
  binding: Uint8Array,
  where: string,
  signal: AbortSignal,
): Promise<{ welcome: TunnelWelcomeMessage; attach: TunnelLogin['attach'] }> {
  return new Promise((resolve, reject) => {
    let state: 'open' | 'challenged' = 'open'
    const onAbort = () => fail(new AbortError())
    const onError = (err: Error) => fail(new TunnelUnavailableError(`control socket to ${where} failed: ${err.message}`, { cause: err }))
    const onClose = (code: number, reason: Buffer) => fail(new TunnelUnavailableError(`tunnel server ${where} closed the control socket (${code} ${reason.toString().slice(0, 100)})`))
    const onMessage = (data: Buffer, isBinary: boolean) => {
      let message: TunnelServerMessage
      try {
        if (!isBinary) throw new TunnelProtocolError('control messages are binary frames')
        message = decodeTunnelServerMessage(data)
      } catch (err) {
        return fail(err as Error)
      }
      if (message.type === 'error') return fail(tunnelErrorFromReply(message, where, options.hello.name))
      if (message.type === 'ping') {
        ws.send(encodeTunnelClientMessage({ type: 'pong', id: message.id }))
        return
      }
      if (state === 'open' && message.type === 'challenge') {
        if (message.version !== TUNNEL_PROTOCOL_VERSION) {
          return fail(new TunnelProtocolError(`tunnel server ${where} speaks protocol version ${message.version}, this client ${TUNNEL_PROTOCOL_VERSION}`))
        }
        state = 'challenged'
        const hello: TunnelHelloMessage = { type: 'hello', version: TUNNEL_PROTOCOL_VERSION, ...options.hello }
        if (options.token !== undefined) hello.token = options.token
        if (options.identity !== undefined) {
          hello.peerId = options.identity.peerId
          hello.signature = signTunnelChallenge(options.identity, TUNNEL_PROTOCOL_VERSION, message.nonce, binding)
        }
        ws.send(encodeTunnelClientMessage(hello))
        return
      }
      if (state === 'challenged' && message.type === 'welcome') {
        // What follows the welcome may come in the same read: hold it until the caller listens.
        cleanup()
        const backlog: Array<[Buffer, boolean]> = []
        const hold = (data: Buffer, isBinary: boolean) => void backlog.push([data, isBinary])
        ws.on('message', hold)
        ws.on('error', ignore)
        return resolve({
          welcome: message,
          attach(onMessage) {
            ws.off('message', hold)
            ws.on('message', onMessage)
            for (const [data, isBinary] of backlog.splice(0)) onMessage(data, isBinary)
          },
        })
      }
      fail(new TunnelProtocolError(`tunnel server ${where} sent ${message.type} during the login`))
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
    ws.resume()
  })
}

/** The error a client raises for an `error` reply of the server. */
export function tunnelErrorFromReply(reply: TunnelErrorMessage, where: string, name?: string): PeerlinkError {
  const text = `tunnel server ${where}: ${reply.message}`
  switch (reply.code) {
    case 'auth':
      return new TunnelAuthError(text)
    case 'name-taken':
      return new TunnelNameTakenError(name ?? '?')
    case 'limit':
    case 'rate-limited':
      return new TunnelLimitError(text)
    case 'unavailable':
      return new TunnelUnavailableError(text)
    case 'replaced': {
      const error = new TunnelUnavailableError(`${text} (replaced by a newer login of the same device)`)
      replaced.add(error)
      return error
    }
    default:
      return new TunnelProtocolError(`${text} (${reply.code})`)
  }
}

function ignore(): void {}

const replaced = new WeakSet<Error>()

/** True for the error of a `replaced` reply: a newer login of the same device took over (retrying would fight it). */
export function isReplacedError(error: unknown): boolean {
  return error instanceof Error && replaced.has(error)
}
