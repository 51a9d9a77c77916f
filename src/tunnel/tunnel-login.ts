/**
 * Logging in to a tunnel server: open the control WebSocket (following redirects),
 * answer the challenge with the token and/or the identity's signature, and wait for the
 * welcome. Refusals become typed errors ({@link tunnelErrorFromReply}). A listening
 * peer's listen socket logs in the same way ({@link awaitTunnelWelcome}), in its own
 * dialect.
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
import { awaitWebSocket } from '../pinned-websocket.js'
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
import type { TunnelPeerServerMessage } from './tunnel-peer-messages.js'

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
      const { welcome, attach } = await awaitTunnelWelcome(opened.ws, {
        dialect: CONTROL_DIALECT,
        answer: (nonce) => encodeTunnelClientMessage(helloFor(options, nonce, opened.binding)),
        where: formatTunnelAddress(opened.endpoint),
        name: options.hello.name,
        signal: controller.signal,
      })
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

/**
 * What differs between the logins on a tunnel server: a device's control socket
 * ({@link CONTROL_DIALECT}) and a listening peer's listen socket (`tunnel-peer-listener.ts`).
 */
export interface TunnelSocketDialect<W extends TunnelServerMessage | TunnelPeerServerMessage> {
  /** The socket in errors: `control`, `listen`. */
  readonly socket: string
  /** What this end calls itself when the protocol versions differ: `client`, `peer`. */
  readonly self: string
  /** The error for a text frame. */
  readonly textFrameError: string
  /** The welcome's type. */
  readonly welcome: W['type']
  /** Decodes a server message (throws `TunnelProtocolError`). */
  decode(data: Buffer): TunnelServerMessage | TunnelPeerServerMessage
  /** The encoded answer to a `ping`. */
  pong(id: number): Uint8Array
  /** What a close during the login says after the code (e.g. the reason). */
  closeDetail(code: number, reason: Buffer): string
}

/** The login of a device's control socket. */
export const CONTROL_DIALECT: TunnelSocketDialect<TunnelWelcomeMessage> = {
  socket: 'control',
  self: 'client',
  textFrameError: 'control messages are binary frames',
  welcome: 'welcome',
  decode: decodeTunnelServerMessage,
  pong: (id) => encodeTunnelClientMessage({ type: 'pong', id }),
  closeDetail: (code, reason) => `${code} ${reason.toString().slice(0, 100)}`,
}

/** Options of {@link awaitTunnelWelcome}. */
export interface AwaitTunnelWelcomeOptions<W extends TunnelServerMessage | TunnelPeerServerMessage> {
  /** Which login. */
  dialect: TunnelSocketDialect<W>
  /** The encoded answer to the challenge's nonce (signed with the channel binding). */
  answer: (nonce: Uint8Array) => Uint8Array
  /** The server, `HOST:PORT`, in errors. */
  where: string
  /**
   * The name asked for (named in `TunnelNameTakenError`).
   * @default undefined
   */
  name?: string | undefined
  /**
   * Milliseconds until it fails with `TunnelUnavailableError` ("did not register us").
   * @default no limit of its own
   */
  timeout?: number | undefined
  /** Cancels the login (rejects with `AbortError`). */
  signal: AbortSignal
}

/**
 * Runs a login on an open, paused tunnel socket: answers the server's `challenge` (its
 * protocol version checked) and its `ping`s, and resolves at the welcome. What follows
 * the welcome is held until `attach`.
 *
 * @throws `TunnelProtocolError`, `TunnelAuthError`, `TunnelUnavailableError`, … (rejects) when the server refuses, misbehaves or closes.
 * @throws `AbortError` (rejects) when `signal` fires first.
 *
 * @example
 * ```ts
 * const { welcome, attach } = await awaitTunnelWelcome(opened.ws, { dialect: CONTROL_DIALECT, answer: (nonce) => encodeHello(nonce), where, signal })
 * ```
 */
export function awaitTunnelWelcome<W extends TunnelServerMessage | TunnelPeerServerMessage>(
  ws: WebSocket,
  options: AwaitTunnelWelcomeOptions<W>,
): Promise<{ welcome: W; attach: TunnelLogin['attach'] }> {
  const { dialect, where, signal, timeout } = options
  let challenged = false
  let timer: NodeJS.Timeout | undefined
  const send = (data: Uint8Array) => {
    if (ws.readyState === ws.OPEN) ws.send(data)
  }
  const welcomed = awaitWebSocket<{ welcome: W; attach: TunnelLogin['attach'] }>(ws, signal, (resolve, fail) => {
    if (timeout !== undefined) timer = setTimeout(() => fail(new TunnelUnavailableError(`tunnel server ${where} did not register us within ${timeout} ms`)), timeout)
    return {
      message(data: Buffer, isBinary: boolean) {
        let message: TunnelServerMessage | TunnelPeerServerMessage
        try {
          if (!isBinary) throw new TunnelProtocolError(dialect.textFrameError)
          message = dialect.decode(data)
        } catch (err) {
          return fail(err as Error)
        }
        if (message.type === 'error') return fail(tunnelErrorFromReply(message, where, options.name))
        if (message.type === 'ping') return send(dialect.pong(message.id))
        if (!challenged && message.type === 'challenge') {
          if (message.version !== TUNNEL_PROTOCOL_VERSION) {
            return fail(new TunnelProtocolError(`tunnel server ${where} speaks protocol version ${message.version}, this ${dialect.self} ${TUNNEL_PROTOCOL_VERSION}`))
          }
          challenged = true
          return send(options.answer(message.nonce))
        }
        if (challenged && message.type === dialect.welcome) {
          // What follows the welcome may come in the same read: hold it until the caller listens.
          const backlog: Array<[Buffer, boolean]> = []
          const hold = (data: Buffer, isBinary: boolean) => void backlog.push([data, isBinary])
          ws.on('message', hold)
          ws.on('error', ignore)
          return resolve({
            welcome: message as W,
            attach(onMessage) {
              ws.off('message', hold)
              ws.on('message', onMessage)
              for (const [data, isBinary] of backlog.splice(0)) onMessage(data, isBinary)
            },
          })
        }
        fail(new TunnelProtocolError(`tunnel server ${where} sent ${message.type} during the login`))
      },
      error: (err: Error) => fail(new TunnelUnavailableError(`${dialect.socket} socket to ${where} failed: ${err.message}`, { cause: err })),
      close: (code: number, reason: Buffer) => fail(new TunnelUnavailableError(`tunnel server ${where} closed the ${dialect.socket} socket (${dialect.closeDetail(code, reason)})`)),
    }
  })
  if (!signal.aborted) ws.resume()
  return welcomed.finally(() => clearTimeout(timer))
}

/** The hello that answers a challenge: the requested name and ports, the token, the signature. */
function helloFor(options: TunnelLoginOptions, nonce: Uint8Array, binding: Uint8Array): TunnelHelloMessage {
  const hello: TunnelHelloMessage = { type: 'hello', version: TUNNEL_PROTOCOL_VERSION, ...options.hello }
  if (options.token !== undefined) hello.token = options.token
  if (options.identity !== undefined) {
    hello.peerId = options.identity.peerId
    hello.signature = signTunnelChallenge(options.identity, TUNNEL_PROTOCOL_VERSION, nonce, binding)
  }
  return hello
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
