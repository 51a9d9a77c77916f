/**
 * udx-native streams whose received data reaches their `'data'` listeners in the call
 * that delivers the packet, not one microtask later.
 *
 * udx-native hands every received packet (about 1,450 bytes) to JavaScript and pushes
 * it into a streamx readable, which queues it and emits `'data'` from a microtask: per
 * MiB, some 700 queue operations and microtasks, the largest cost of the receive path
 * after decryption (docs/benchmarks.md, `connect`). While the stream is flowing and
 * nothing is queued — always, unless the reader applies backpressure — emitting at
 * once delivers the same bytes in the same order; otherwise the packet takes the queue
 * as before, so order and backpressure (`pause()`) are kept.
 *
 * Built on udx-native's stream class and its `_ondata` / `_consumeData` hooks (v1.21);
 * where they are missing, plain udx-native streams are made.
 *
 * @module
 */
import { createRequire } from 'node:module'
import type UDX from 'udx-native'

/** The parts of a udx-native stream (a streamx duplex) the fast path touches. */
interface UdxStreamInternals {
  _buffer: Buffer
  _consumeData(read: number): Buffer
  _readableState: { buffered: number } | null
  readonly destroying: boolean
  push(chunk: Buffer | null): boolean
  emit(event: 'data', chunk: Buffer): boolean
}

type UdxStreamClass = new (udx: UDX, id: number) => UDX.UDXStream & UdxStreamInternals

/** udx-native's stream class and streamx's `Readable.isPaused`, when both are as expected. */
const base: { Stream: UdxStreamClass; isPaused: (stream: unknown) => boolean } | undefined = (() => {
  try {
    const Stream = createRequire(import.meta.url)('udx-native/lib/stream.js') as UdxStreamClass
    // A static of streamx's Readable, inherited by its Duplex (udx-native's base class).
    const isPaused = (Object.getPrototypeOf(Stream) as { isPaused?: (stream: unknown) => boolean }).isPaused
    const proto = Stream.prototype as Partial<UdxStreamInternals> & { _ondata?: unknown }
    if (typeof isPaused !== 'function' || typeof proto._ondata !== 'function' || typeof proto._consumeData !== 'function') return undefined
    return { Stream, isPaused }
  } catch {
    return undefined
  }
})()

const SyncStream: UdxStreamClass | undefined =
  base === undefined
    ? undefined
    : class SyncUdxStream extends base.Stream {
        /** Called by udx-native with the length of a packet just written into `_buffer`. */
        _ondata(read: number): Buffer {
          const chunk = this._consumeData(read)
          const queue = this._readableState
          if (queue !== null && queue.buffered === 0 && !this.destroying && !(base as NonNullable<typeof base>).isPaused(this)) this.emit('data', chunk)
          else this.push(chunk)
          return this._buffer
        }
      }

/** A new udx-native stream with local id `id` on `udx` (see the module notes). */
export function createUdxStream(udx: UDX, id: number): UDX.UDXStream {
  return SyncStream === undefined ? udx.createStream(id) : new SyncStream(udx, id)
}
