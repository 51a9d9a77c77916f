/**
 * Joining two byte streams (a TCP socket and a transfer stream) in both directions,
 * with backpressure and half-close: when one side ends its direction, the other side's
 * writable end is ended and the opposite direction keeps flowing. An error or an early
 * close on either side destroys both (the TCP peer sees a reset).
 *
 * @module
 */
import type { Duplex } from 'node:stream'

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
      stream.destroy()
      if (stream.closed) done()
      else stream.once('close', done)
    }
    return
  }
  link(a, b)
  link(b, a)
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
