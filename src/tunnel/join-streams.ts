/**
 * Joining two byte streams (a TCP socket and a transfer stream) in both directions,
 * with backpressure and half-close: when one side ends its direction, the other side's
 * writable end is ended and the opposite direction keeps flowing. An error or an early
 * close on either side destroys both (the TCP peer sees a reset).
 *
 * A `net` socket joined to a `WebSocketStream` (a tunnelled connection) is relayed by
 * {@link WebSocketStream.relay}, without pipes: each read leaves as one write at once.
 *
 * @module
 */
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketStream } from './websocket-stream.js'

/**
 * Pipes `a` into `b` and `b` into `a` (see the module notes). Both streams must allow
 * half-open operation (`allowHalfOpen: true` for `net` sockets).
 *
 * @param onClose - called once, when both streams are closed.
 */
export function joinStreams(a: Duplex, b: Duplex, onClose?: () => void): void {
  let closed = 0
  const done = () => {
    if (++closed === 2) onClose?.()
  }
  const link = (from: Duplex, to: Duplex) => {
    from.on('error', () => to.destroy())
    from.once('close', () => {
      // A stream that closed before both its directions finished was torn down: tear
      // down the other side too. One that finished cleanly leaves the other to finish.
      if (!(from.readableEnded && from.writableFinished)) to.destroy()
      done()
    })
  }
  if (a.destroyed || b.destroyed) {
    for (const stream of [a, b]) {
      // A stream destroyed with an error (a transfer socket the server closed at once)
      // still emits it: the join is over, the error must not go unhandled.
      stream.on('error', () => {})
      stream.destroy()
      if (stream.closed) done()
      else stream.once('close', done)
    }
    return
  }
  link(a, b)
  link(b, a)
  // The tunnel's data path: a TCP socket and a transfer socket relay directly (no pipes).
  if (a instanceof Socket && b instanceof WebSocketStream && b.relay(a)) return
  if (b instanceof Socket && a instanceof WebSocketStream && a.relay(b)) return
  coalesce(a, b)
  coalesce(b, a)
  a.pipe(b)
  b.pipe(a)
}

/**
 * Corks `to` for the rest of the tick when `from` delivers data, so the chunks of one
 * read (a TLS socket delivers one 16 KiB record per chunk, a transfer socket one chunk
 * per frame) go out in one `writev` instead of one write each. Registered before
 * `pipe`, so the cork is in place when the pipe writes.
 */
function coalesce(from: Duplex, to: Duplex): void {
  let corked = false
  const uncork = () => {
    corked = false
    to.uncork()
  }
  from.on('data', () => {
    if (corked) return
    corked = true
    to.cork()
    process.nextTick(uncork)
  })
}
