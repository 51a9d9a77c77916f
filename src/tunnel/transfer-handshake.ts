/**
 * The WebSocket opening handshake of transfer sockets (RFC 6455 §4), both sides, on a
 * raw socket: a transfer socket carries one tunnelled connection's bytes, framed by
 * `WebSocketStream` itself, so it does not go through the `ws` library. Control sockets
 * do.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { ConnectFailedError } from '../errors.js'

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** Largest upgrade response accepted, in bytes. */
const MAX_RESPONSE_BYTES = 8192

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')
}

/**
 * Server side: checks the upgrade request (RFC 6455 §4.2.1) and, when it is a valid
 * WebSocket upgrade, answers 101 on `socket`.
 *
 * @returns `undefined` once answered 101, or the HTTP status to refuse it with (400, 426).
 */
export function acceptWebSocketUpgrade(req: IncomingMessage, socket: Socket): undefined | 400 | 426 {
  const key = req.headers['sec-websocket-key']
  if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 400
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return 400
  if (req.headers['sec-websocket-version'] !== '13') return 426
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`)
  return undefined
}

/** Where a client upgrade goes. */
export interface TransferUpgradeTarget {
  /** The `Host` header (`HOST:PORT`). */
  readonly host: string
  /** Request path and query. */
  readonly path: string
  /** For messages: `HOST:PORT`. */
  readonly where: string
}

/**
 * Client side: sends the upgrade request on a connected `socket` and waits for the 101.
 * Rejects with {@link ConnectFailedError} for any other answer (naming the status and the
 * server's `x-peerlink-error`), a bad `Sec-WebSocket-Accept`, or a socket that closes; the
 * caller destroys the socket then. Cancel it by destroying the socket.
 *
 * @returns the bytes that came after the response (the first frames).
 */
export function upgradeTransferSocket(socket: Socket, target: TransferUpgradeTarget): Promise<Buffer> {
  const key = randomBytes(16).toString('base64')
  return new Promise<Buffer>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      const end = received.indexOf('\r\n\r\n')
      if (end === -1) {
        if (received.length > MAX_RESPONSE_BYTES) fail(new ConnectFailedError(`tunnel server ${target.where} sent an oversized upgrade response`))
        return
      }
      cleanup()
      socket.pause()
      const [statusLine = '', ...lines] = received.subarray(0, end).toString('latin1').split('\r\n')
      const headers = new Map<string, string>()
      for (const line of lines) {
        const colon = line.indexOf(':')
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
      if (status !== 101) {
        const code = headers.get('x-peerlink-error')
        return reject(new ConnectFailedError(`tunnel server ${target.where} refused the WebSocket: HTTP ${status}${code ? ` (${code})` : ''}`))
      }
      if ((headers.get('upgrade') ?? '').toLowerCase() !== 'websocket' || headers.get('sec-websocket-accept') !== websocketAccept(key)) {
        return reject(new ConnectFailedError(`tunnel server ${target.where} answered the WebSocket upgrade wrongly`))
      }
      resolve(received.subarray(end + 4))
    }
    const onClose = () => fail(new ConnectFailedError(`tunnel server ${target.where} closed the connection during the upgrade`))
    const onError = (err: Error) => fail(new ConnectFailedError(`connection to tunnel server ${target.where} failed during the upgrade: ${err.message}`, { cause: err }))
    function cleanup(): void {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    function fail(err: Error): void {
      cleanup()
      reject(err)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.write(
      `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    )
  })
}
