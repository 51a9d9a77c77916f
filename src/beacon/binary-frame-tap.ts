/**
 * A short cut for the Beacon's incoming messages: complete, final, binary WebSocket
 * frames (RFC 6455 §5.2) are read straight from the socket's data and handed to the
 * session or client, instead of going through `ws`'s receiver (a `Writable` stream that
 * copies, buffers and emits through several layers for every frame); so are pings and
 * pongs (the heartbeats) when the caller takes them. Everything else — close frames,
 * text, fragments, frames over the size limit, a wrong mask bit, reserved bits — is given
 * to `ws` as it arrives, so `ws` still runs the protocol (the closing handshake, errors
 * and their close codes): from the first frame it must judge that is not a control
 * frame, it gets all the data.
 *
 * The tap takes the place of `ws`'s own `'data'` listener on the socket and hands it the
 * bytes it does not handle itself; it carries that listener as its `listener` property,
 * so that when `ws` removes its listener (close frame received, error, socket closed),
 * the tap goes with it, as `ws`'s own listener would. If the socket does not have
 * exactly `ws`'s listener, nothing is changed and `ws` reads everything.
 *
 * @module
 */
import type { Duplex } from 'node:stream'
import type WebSocket from 'ws'

/** Options of {@link tapBinaryFrames}. */
export interface BinaryFrameTapOptions {
  /** True on a server (a client's frames are masked, RFC 6455 §5.3), false on a client (a server's are not). */
  masked: boolean
  /** The largest payload read here; larger frames go to `ws` (and its `maxPayload`). */
  maxPayload: number
  /** A complete binary message: a view of the received data, unmasked, valid until the handler returns (copy what you keep). */
  onMessage: (data: Buffer) => void
  /**
   * A ping, while the WebSocket is open (the handler must send the pong, RFC 6455 §5.5.3).
   * @default undefined (`ws` answers)
   */
  onPing?: (data: Buffer) => void
  /**
   * A pong.
   * @default undefined (`ws` emits `'pong'`)
   */
  onPong?: (data: Buffer) => void
}

type DataListener = ((chunk: Buffer) => void) & { listener?: unknown }

/**
 * Installs the tap (see the module notes) on `socket`, the socket under `ws`. Call it
 * right after `ws` took the socket (before any data is read).
 *
 * @returns false when `ws`'s listener was not found (then `ws` reads everything, as usual).
 */
export function tapBinaryFrames(ws: WebSocket, socket: Duplex, options: BinaryFrameTapOptions): boolean {
  const listeners = socket.rawListeners('data')
  const wsOnData = listeners[0] as DataListener | undefined
  if (listeners.length !== 1 || wsOnData === undefined || wsOnData.name !== 'socketOnData') return false
  const { masked, maxPayload, onMessage, onPing, onPong } = options
  const toWs = (bytes: Buffer) => wsOnData.call(socket, bytes)
  let pending: Buffer | undefined
  /** `ws` reads everything from here on. */
  let handOver = false

  const tap: DataListener = (chunk: Buffer) => {
    if (handOver) return toWs(chunk)
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    pending = undefined
    const end = buf.length
    let pos = 0
    while (end - pos >= 2) {
      const b0 = buf[pos]!
      const b1 = buf[pos + 1]!
      let length = b1 & 0x7f
      let header = 2
      if (length === 126) {
        if (end - pos < 4) break
        length = buf.readUInt16BE(pos + 2)
        header = 4
      } else if (length === 127) {
        if (end - pos < 10) break
        length = buf.readUInt32BE(pos + 2) === 0 ? buf.readUInt32BE(pos + 6) : Number.MAX_SAFE_INTEGER
        header = 10
      }
      const isMasked = (b1 & 0x80) !== 0
      if (isMasked) header += 4
      // 0x82: FIN, no reserved bits, binary. 0x88–0x8a: FIN, close/ping/pong.
      const data = b0 === 0x82 && isMasked === masked && length <= maxPayload && ws.readyState === ws.OPEN
      const control = b0 >= 0x88 && b0 <= 0x8a && length <= 125
      if (!data && !control) {
        handOver = true
        return toWs(pos === 0 ? buf : buf.subarray(pos))
      }
      const frameEnd = pos + header + length
      if (frameEnd > end) break
      let handler: ((data: Buffer) => void) | undefined
      if (control && isMasked === masked) {
        // Like ws, no pong once the WebSocket is closing.
        if (b0 === 0x89 && ws.readyState === ws.OPEN) handler = onPing
        else if (b0 === 0x8a) handler = onPong
      }
      if (handler !== undefined) {
        const payload = buf.subarray(pos + header, frameEnd)
        if (isMasked) unmask(payload, buf, pos + header - 4)
        handler(payload)
      } else if (control) {
        toWs(buf.subarray(pos, frameEnd))
        // After a close frame `ws` stops reading (and has removed this listener).
        if (b0 === 0x88) return
      } else {
        const payload = buf.subarray(pos + header, frameEnd)
        if (isMasked) unmask(payload, buf, pos + header - 4)
        onMessage(payload)
      }
      pos = frameEnd
    }
    if (pos < end) pending = Buffer.from(buf.subarray(pos))
  }
  tap.listener = wsOnData
  socket.removeListener('data', wsOnData)
  socket.on('data', tap)
  return true
}

/** XORs `payload` in place with the 4-byte masking key at `buf[key]` (RFC 6455 §5.3). */
function unmask(payload: Buffer, buf: Buffer, key: number): void {
  const k0 = buf[key]!
  const k1 = buf[key + 1]!
  const k2 = buf[key + 2]!
  const k3 = buf[key + 3]!
  const n = payload.length
  let i = 0
  for (; i + 4 <= n; i += 4) {
    payload[i] ^= k0
    payload[i + 1] ^= k1
    payload[i + 2] ^= k2
    payload[i + 3] ^= k3
  }
  if (i < n) payload[i++] ^= k0
  if (i < n) payload[i++] ^= k1
  if (i < n) payload[i] ^= k2
}
