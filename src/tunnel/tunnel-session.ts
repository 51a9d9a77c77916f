/**
 * Serving a logged-in tunnel socket (a device's control socket, a listening peer's
 * listen socket) until it closes: heartbeats (a WebSocket ping every `heartbeatMs`; a
 * server silent for twice that is cut), the server's `ping`s answered, its `error`
 * replies kept as the reason the session ended, and the session's own messages
 * (`connection`, `peer-connection`) handed to the owner. Anything else after the login
 * is a protocol error.
 *
 * @module
 */
import type WebSocket from 'ws'
import { type PeerlinkError, TunnelProtocolError, TunnelUnavailableError } from '../errors.js'
import { type TunnelLogin, type TunnelSocketDialect, tunnelErrorFromReply } from './tunnel-login.js'
import type { TunnelServerMessage } from './tunnel-messages.js'
import type { TunnelPeerServerMessage } from './tunnel-peer-messages.js'

/** Options of {@link serveTunnelSocket}. */
export interface ServeTunnelSocketOptions {
  /** The logged-in socket. */
  ws: WebSocket
  /** Hands the socket's messages over (from the login). */
  attach: TunnelLogin['attach']
  /** Which kind of socket. */
  dialect: TunnelSocketDialect<TunnelServerMessage | TunnelPeerServerMessage>
  /** The server, `HOST:PORT`, in errors. */
  where: string
  /**
   * Our name at the server (named in `TunnelNameTakenError`).
   * @default undefined
   */
  name?: string | undefined
  /** Milliseconds between our heartbeats. */
  heartbeatMs: number
  /** Takes a message that is the session's business; false for one that has no place after the login. */
  dispatch(message: TunnelServerMessage | TunnelPeerServerMessage): boolean
  /** Aborted when the owner closes: the session then ends without an error. */
  signal: AbortSignal
}

/**
 * Serves a logged-in tunnel socket (see the module notes); resolves with why it ended:
 * the server's error reply, a protocol error, silence or the close, `undefined` when
 * the owner is closing.
 *
 * @example
 * ```ts
 * const ended = serveTunnelSocket({ ws, attach, dialect: CONTROL_DIALECT, where, heartbeatMs: 15_000, dispatch, signal })
 * ```
 */
export function serveTunnelSocket(options: ServeTunnelSocketOptions): Promise<PeerlinkError | undefined> {
  const { ws, dialect, where, heartbeatMs } = options
  return new Promise<PeerlinkError | undefined>((resolve) => {
    let error: PeerlinkError | undefined
    let lastHeard = performance.now()
    const heartbeat = setInterval(() => {
      if (performance.now() - lastHeard > 2 * heartbeatMs) {
        error ??= new TunnelUnavailableError(`tunnel server ${where} went silent`)
        ws.terminate()
        return
      }
      if (ws.readyState === ws.OPEN) ws.ping()
    }, heartbeatMs)
    const heard = () => (lastHeard = performance.now())
    ws.on('ping', heard)
    ws.on('pong', heard)
    ws.on('error', ignore)
    options.attach((data: Buffer, isBinary: boolean) => {
      heard()
      let message: TunnelServerMessage | TunnelPeerServerMessage
      try {
        if (!isBinary) throw new TunnelProtocolError(dialect.textFrameError)
        message = dialect.decode(data)
      } catch (err) {
        error ??= err as PeerlinkError
        ws.close(1002, 'protocol error')
        return
      }
      switch (message.type) {
        case 'ping':
          if (ws.readyState === ws.OPEN) ws.send(dialect.pong(message.id))
          return
        case 'pong':
          return
        case 'error':
          if (message.code !== 'rate-limited') error ??= tunnelErrorFromReply(message, where, options.name)
          return
        default:
          if (options.dispatch(message)) return
          error ??= new TunnelProtocolError(`tunnel server ${where} sent ${message.type} after the login`)
          ws.close(1002, 'protocol error')
      }
    })
    const onClose = (code: number) => {
      clearInterval(heartbeat)
      if (options.signal.aborted) return resolve(undefined)
      resolve(error ?? new TunnelUnavailableError(`tunnel server ${where} closed the ${dialect.socket} socket (${code})`))
    }
    if (ws.readyState === ws.CLOSED) onClose(1006)
    else ws.once('close', onClose)
  })
}

function ignore(): void {}
