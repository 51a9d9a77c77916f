// The receive window's growth (StreamMuxOptions.maxReceiveWindow) and MuxStream.attach,
// over an in-memory transport and the verified secure connection.
import { describe, it, expect, afterEach } from 'vitest'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MuxStream } from '../../src/connection/mux-stream.js'
import { DEFAULT_WINDOW } from '../../src/connection/mux-frame.js'
import { StreamMux } from '../../src/connection/stream-mux.js'
import { DEFAULT_MAX_RECEIVE_WINDOW } from '../../src/connection/stream-mux-options.js'
import { InvalidArgumentError } from '../../src/errors.js'
import { memory, muxPair, receiveAll, secure, waitFor, type MuxPair, type Transport } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

/** Writes `total` bytes in 64 KiB writes, honouring backpressure; returns the largest send window seen. */
async function sendTracking(stream: MuxStream, total: number): Promise<number> {
  const chunk = randomBytes(64 * 1024)
  let largest = stream.sendWindow
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.once('drain', resolve))
    largest = Math.max(largest, stream.sendWindow)
  }
  return largest
}

describe.each([memory, secure] as Transport[])('receive window over $name', (transport) => {
  async function pair(optionsB: { initialWindow?: number; maxReceiveWindow?: number } = {}): Promise<MuxPair> {
    const p = await muxPair(transport, {}, optionsB)
    cleanups.push(p.close)
    return p
  }

  it('grows while the reader keeps up, up to maxReceiveWindow', async () => {
    const max = 2 * 1024 * 1024
    const { a, b } = await pair({ maxReceiveWindow: max })
    expect(b.maxReceiveWindow).toBe(max)
    const incoming = new Promise<MuxStream>((resolve) => b.once('stream', resolve))
    const out = a.openStream()
    const received = incoming.then((s) => receiveAll(s))
    const total = 16 * 1024 * 1024
    let largest = await sendTracking(out, total)
    out.end()
    expect((await received).bytes).toBe(total)
    // The last window update arrives after the data it answers.
    await sleep(20)
    largest = Math.max(largest, out.sendWindow)
    expect(largest).toBeGreaterThan(DEFAULT_WINDOW)
    expect(largest).toBeLessThanOrEqual(max)
  })

  it('never grows with maxReceiveWindow equal to initialWindow', async () => {
    const { a, b } = await pair({ maxReceiveWindow: DEFAULT_WINDOW })
    const incoming = new Promise<MuxStream>((resolve) => b.once('stream', resolve))
    const out = a.openStream()
    const received = incoming.then((s) => receiveAll(s))
    const total = 8 * 1024 * 1024
    const largest = await sendTracking(out, total)
    out.end()
    expect((await received).bytes).toBe(total)
    expect(Math.max(largest, out.sendWindow)).toBeLessThanOrEqual(DEFAULT_WINDOW)
  })

  it('does not grow the window of a stream nobody reads', async () => {
    const { a, b } = await pair()
    let inbound: MuxStream | undefined
    b.on('stream', (s) => {
      inbound = s
      s.on('error', () => {}) // the reset below
    })
    const out = a.openStream()
    const chunk = randomBytes(64 * 1024)
    // Far more than the window: the writes queue up on A.
    for (let i = 0; i < 16; i++) out.write(chunk)
    await waitFor(() => inbound !== undefined && inbound.queuedBytes + inbound.readableLength >= DEFAULT_WINDOW - chunk.length, 5_000, 'a full window')
    await sleep(20)
    expect(out.sendWindow).toBeLessThan(chunk.length)
    expect(inbound!.queuedBytes + inbound!.readableLength).toBeLessThanOrEqual(DEFAULT_WINDOW)
    out.destroy()
  })
})

describe('maxReceiveWindow option', () => {
  it('defaults to 16 MiB, or initialWindow when that is larger', async () => {
    const p = await muxPair(memory, {}, { initialWindow: 32 * 1024 * 1024 })
    cleanups.push(p.close)
    expect(p.a.maxReceiveWindow).toBe(DEFAULT_MAX_RECEIVE_WINDOW)
    expect(DEFAULT_MAX_RECEIVE_WINDOW).toBe(16 * 1024 * 1024)
    expect(p.b.maxReceiveWindow).toBe(32 * 1024 * 1024)
  })

  it('rejects a maxReceiveWindow below initialWindow or over 1 GiB', async () => {
    const p = await memory.pair()
    cleanups.push(p.close)
    expect(() => new StreamMux(p.a, { isInitiator: true, initialWindow: 1024 * 1024, maxReceiveWindow: 512 * 1024 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(p.a, { isInitiator: true, maxReceiveWindow: 2 ** 30 + 1 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(p.a, { isInitiator: true, maxReceiveWindow: 1.5 * DEFAULT_WINDOW + 0.5 })).toThrow(InvalidArgumentError)
  })
})

describe('MuxStream.attach', () => {
  it('hands what was buffered, what follows and the end to the sink, in order', async () => {
    const { a, b, close } = await muxPair(memory)
    cleanups.push(close)
    const incoming = new Promise<MuxStream>((resolve) => b.once('stream', resolve))
    const out = a.openStream()
    out.write('hello ')
    const inbound = await incoming
    // Let the stream's own readable side buffer the first bytes (a read() asks for them).
    await waitFor(() => inbound.queuedBytes > 0, 5_000, 'the first bytes')
    inbound.read(0)
    expect(inbound.readableLength).toBe(6)
    const sink = new Readable({ read: () => inbound._read() })
    inbound.attach(sink)
    expect(inbound.readableLength).toBe(0)
    out.end('world')
    const chunks: Buffer[] = []
    for await (const chunk of sink) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe('hello world')
    expect(inbound.remoteEndDelivered).toBe(true)
  })
})
