/**
 * Reading a plain TCP socket into one reused buffer instead of a new allocation per
 * read, for the tunnel's data path. This is what the `onread` option of `net.connect`
 * does, but a server's accepted sockets cannot be given that option, and a socket that
 * is already open cannot be switched to it; {@link readIntoReusedBuffer} switches an open
 * socket through the same slots that option fills (`kBuffer`, `kBufferCb`,
 * `kBufferGen` of `node:net`) and the handle's `useUserBuffer`. When any of them is
 * missing (another Node.js version, a TLS socket, a socket without a handle) nothing is
 * changed and the caller keeps its `data` events.
 *
 * The copy out of the kernel then lands in memory that is already in the cache, and no
 * buffer is left per read for the garbage collector: a plain one-hop relay on loopback
 * went from 0.88 to 0.75 ms of CPU per MiB (`docs/benchmarks.md`, `tunnel`).
 *
 * @module
 */
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/**
 * Handles one read: `chunk` is a view of the reused buffer, valid only until the handler
 * returns. Returns `true` when the memory is still in use afterwards (a write of it was
 * queued), so that the next read goes into a new buffer.
 */
export type ReusedReadHandler = (chunk: Buffer) => boolean

interface Slots {
  readonly buffer: symbol
  readonly callback: symbol
  readonly generate: symbol
}

let slots: Slots | null | undefined

/** The `onread` slots of `node:net` sockets, found once by their names; `null` when absent. */
function slotsOf(socket: Socket): Slots | null {
  if (slots !== undefined) return slots
  const own = Object.getOwnPropertySymbols(socket)
  const find = (name: string) => own.find((symbol) => symbol.description === name)
  const buffer = find('kBuffer')
  const callback = find('kBufferCb')
  const generate = find('kBufferGen')
  slots = buffer === undefined || callback === undefined || generate === undefined ? null : { buffer, callback, generate }
  return slots
}

/**
 * From the next read on, reads `socket` into a buffer of `size` bytes reused from read to
 * read and hands each read to `onRead` instead of emitting `data` (see the module notes).
 * `end`, `close`, `pause()` and `resume()` work as before. The socket must be a plain
 * TCP socket whose readable buffer is empty (called from a `data` handler of a flowing
 * socket, for example).
 *
 * @param headroom - bytes kept free in front of each read, in the same memory (the
 *   handler may write a header there and send header and read as one buffer).
 *
 * @returns whether the socket was switched (`false`: nothing changed).
 */
export function readIntoReusedBuffer(socket: Socket, size: number, onRead: ReusedReadHandler, headroom = 0): boolean {
  if ((socket as TLSSocket).encrypted === true || socket.readableLength > 0 || socket.destroyed) return false
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: unknown } | null })._handle
  if (handle === undefined || handle === null || typeof handle.useUserBuffer !== 'function') return false
  const found = slotsOf(socket)
  if (found === null) return false
  const target = socket as unknown as Record<symbol, unknown>
  if (target[found.buffer] !== null || target[found.callback] !== null) return false // already has an onread
  const allocate = () => Buffer.allocUnsafeSlow(headroom + size).subarray(headroom)
  let buffer = allocate()
  target[found.buffer] = buffer
  target[found.callback] = (bytes: number, into: Buffer): void => {
    if (onRead(into.subarray(0, bytes))) buffer = allocate()
  }
  target[found.generate] = () => buffer
  ;(handle.useUserBuffer as (buffer: Uint8Array) => void).call(handle, buffer)
  return true
}
