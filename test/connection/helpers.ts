import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { once } from 'node:events'
import { duplexPair, type Duplex } from 'node:stream'
import { StreamMux, type StreamMuxOptions } from '../../src/connection/stream-mux.js'
import { connectedPair, socketPair } from '../transport/helpers.js'

/** Two connected duplexes and how to release everything behind them. */
export interface DuplexPair {
  a: Duplex
  b: Duplex
  close: () => Promise<void>
}

/** A transport the multiplexer is tested over. */
export interface Transport {
  name: string
  pair: () => Promise<DuplexPair>
}

/** `node:stream` duplexPair: in memory, with backpressure. */
export const memory: Transport = {
  name: 'memory',
  pair: async () => {
    const [a, b] = duplexPair()
    return {
      a,
      b,
      close: async () => {
        a.destroy()
        b.destroy()
        await Promise.all([closed(a), closed(b)])
      },
    }
  },
}

/** A TCP connection on 127.0.0.1. */
export const tcp: Transport = {
  name: 'tcp',
  pair: async () => {
    const server = net.createServer({ allowHalfOpen: true })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const port = (server.address() as net.AddressInfo).port
    const a = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    await once(a, 'connect')
    const [b] = await accepted
    server.close() // stop listening; its 'close' waits for the connection, which close() below ends
    return {
      a,
      b,
      close: async () => {
        a.destroy()
        b.destroy()
        await Promise.all([closed(a), closed(b)])
      },
    }
  },
}

/** The verified secure connection (Noise over udx-native) between two PeerSockets on 127.0.0.1. */
export const secure: Transport = {
  name: 'secure',
  pair: async () => {
    const sockets = await socketPair()
    const [a, b] = await connectedPair(sockets.a, sockets.b)
    return {
      a,
      b,
      close: async () => {
        a.destroy()
        b.destroy()
        await Promise.all([closed(a), closed(b)])
        await sockets.close()
      },
    }
  },
}

export const transports: Transport[] = [memory, tcp, secure]

/** Resolves when `stream` has emitted 'close'. */
export function closed(stream: Duplex): Promise<void> {
  if (stream.closed) return Promise.resolve()
  return new Promise((resolve) => stream.once('close', () => resolve()))
}

/** Two multiplexers over a transport, with their errors collected. */
export interface MuxPair {
  a: StreamMux
  b: StreamMux
  raw: DuplexPair
  errorsA: Error[]
  errorsB: Error[]
  close: () => Promise<void>
}

/** A (initiator) and B (responder) over a fresh transport; `close()` releases everything. */
export async function muxPair(
  transport: Transport,
  optionsA: Partial<StreamMuxOptions> = {},
  optionsB: Partial<StreamMuxOptions> = {},
): Promise<MuxPair> {
  const raw = await transport.pair()
  const a = new StreamMux(raw.a, { isInitiator: true, ...optionsA })
  const b = new StreamMux(raw.b, { isInitiator: false, ...optionsB })
  const errorsA: Error[] = []
  const errorsB: Error[] = []
  a.on('error', (err) => errorsA.push(err))
  b.on('error', (err) => errorsB.push(err))
  return {
    a,
    b,
    raw,
    errorsA,
    errorsB,
    close: async () => {
      await Promise.all([a.close({ timeout: 500 }), b.close({ timeout: 500 })])
      await raw.close()
    },
  }
}

/** Write `total` random bytes in chunks of varying size (honouring backpressure), then end. Resolves with the SHA-256. */
export async function sendRandom(stream: Duplex, total: number, end = true): Promise<string> {
  const hash = createHash('sha256')
  const sizes = [1, 100, 1500, 16_384, 65_536, 200_000, 7]
  let sent = 0
  let i = 0
  while (sent < total) {
    const size = Math.min(sizes[i++ % sizes.length]!, total - sent)
    const chunk = randomBytes(size)
    hash.update(chunk)
    sent += size
    if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.once('drain', resolve))
  }
  if (end) stream.end()
  return hash.digest('hex')
}

/** Read `stream` to its end; resolves with the byte count and SHA-256. */
export function receiveAll(stream: Duplex): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let bytes = 0
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    stream.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }))
    stream.once('error', reject)
  })
}

/** SHA-256 of nothing. */
export const EMPTY_SHA256 = createHash('sha256').digest('hex')

/** Resolves with the error `stream` is destroyed with (rejects if it closes without one). */
export function errorOf(emitter: Duplex | StreamMux): Promise<Error> {
  return new Promise((resolve, reject) => {
    ;(emitter as Duplex).once('error', resolve)
    ;(emitter as Duplex).once('close', () => setImmediate(() => reject(new Error('closed without an error'))))
  })
}

/** Wait until `predicate()` holds (polling every 5 ms), or throw after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
