/**
 * Joining a connection's streams to the outside world, for `peerlink listen` and
 * `peerlink connect`: to stdin/stdout (like `nc`), and to TCP sockets (port forwarding),
 * both with half-close: an end in one direction is passed on as an end, and the other
 * direction keeps flowing until it ends too.
 *
 * @module
 */
import type { Socket } from 'node:net'
import { type Duplex, Writable } from 'node:stream'
import { ConnectionClosedError } from '../errors.js'
import type { CliIo, CliOutput } from './io.js'

/**
 * `output` as a byte stream with backpressure: itself when it is a `Writable` (such as
 * `process.stdout`), else a `Writable` that passes each chunk on as UTF-8 text.
 */
export function binaryOutput(output: CliOutput): Writable {
  if (output instanceof Writable) return output
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      output.write(chunk.toString('utf8'))
      callback()
    },
  })
}

/** Resolves once everything written to `output` so far has been handed to the system. */
export function flushOutput(output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    output.write(Buffer.alloc(0), (err) => (err === null || err === undefined ? resolve() : reject(err)))
  })
}

/**
 * Joins `conn` to `io.stdin` and `io.stdout`: stdin's bytes are written to `conn` and
 * its end ends `conn`'s write side (no stdin: ended at once); `conn`'s bytes go to
 * stdout. Resolves once both directions have ended and stdout is flushed; rejects when
 * `conn` fails or closes before that (`ConnectionClosedError`), or stdin/stdout fail.
 * Afterwards stdin is released (destroyed) so it keeps no process alive.
 */
export function joinStdio(conn: Duplex, io: CliIo): Promise<void> {
  const output = binaryOutput(io.stdout)
  const input = io.stdin
  return new Promise<void>((resolve, reject) => {
    let ended = false
    let flushed = false
    let finished = false
    let settled = false
    const settle = (err?: Error): void => {
      if (settled) return
      settled = true
      conn.unpipe(output)
      output.off('error', settle)
      if (input !== undefined) {
        input.unpipe(conn)
        input.off('error', settle)
        const destroy = (input as { destroy?: () => void }).destroy
        if (typeof destroy === 'function') destroy.call(input)
      }
      if (err === undefined) resolve()
      else reject(err)
    }
    const check = (): void => {
      if (flushed && finished) settle()
    }
    conn.once('end', () => {
      ended = true
      flushOutput(output).then(() => {
        flushed = true
        check()
      }, settle)
    })
    conn.once('finish', () => {
      finished = true
      check()
    })
    conn.once('error', settle)
    conn.once('close', () => {
      if (!ended || !finished) settle(new ConnectionClosedError(`The connection closed before ${ended ? 'our' : 'the remote'} side ended`))
    })
    output.on('error', settle)
    conn.pipe(output, { end: false })
    if (input === undefined) {
      conn.end()
    } else {
      input.on('error', settle)
      input.pipe(conn)
    }
  })
}

/** Options of {@link joinTcp}. */
export interface JoinTcpOptions {
  /**
   * Called once with the first error of either side.
   * @default undefined
   */
  onError?: (error: Error, side: 'tcp' | 'stream') => void
  /**
   * What a TCP error does to the stream: `'reset'` destroys it (the remote's stream
   * fails); `'end'` ends it and discards what still comes (for a connection's main
   * stream, whose reset would end the whole connection).
   * @default 'reset'
   */
  onTcpError?: 'reset' | 'end'
}

/**
 * Pipes `stream` and the TCP `socket` into each other with half-close (create the socket
 * with `allowHalfOpen: true`). An error on one side closes the other (see
 * {@link JoinTcpOptions.onTcpError}), never anything else. Resolves once both are closed.
 */
export function joinTcp(stream: Duplex, socket: Socket, options: JoinTcpOptions = {}): Promise<void> {
  return new Promise<void>((resolve) => {
    let reported = false
    const report = (error: Error, side: 'tcp' | 'stream'): void => {
      if (reported) return
      reported = true
      options.onError?.(error, side)
    }
    const closeStream = (): void => {
      if (stream.destroyed) return
      if (options.onTcpError === 'end') {
        stream.unpipe(socket)
        stream.resume()
        if (!stream.writableEnded) stream.end()
      } else {
        stream.destroy()
      }
    }
    let open = 2
    const closed = (): void => {
      if (--open === 0) resolve()
    }
    socket.setNoDelay(true)
    stream.pipe(socket)
    socket.pipe(stream)
    socket.on('error', (error) => {
      report(error, 'tcp')
      closeStream()
    })
    stream.on('error', (error) => {
      report(error, 'stream')
      socket.destroy()
    })
    socket.once('close', () => {
      if (!(socket.readableEnded && socket.writableFinished)) closeStream()
      closed()
    })
    stream.once('close', () => {
      // A stream that ended both ways leaves the socket to finish sending what it has.
      if (!(stream.readableEnded && stream.writableFinished)) socket.destroy()
      closed()
    })
  })
}
