// StreamMux scenarios, run over each transport: in memory (node:stream duplexPair), TCP
// on 127.0.0.1, and the verified secure connection (Noise over udx-native) between two
// PeerSockets on 127.0.0.1.
import { describe, it, expect, afterEach } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { MuxStream } from '../../src/connection/mux-stream.js'
import { DEFAULT_WINDOW } from '../../src/connection/mux-frame.js'
import {
  EMPTY_SHA256,
  closed,
  errorOf,
  muxPair,
  receiveAll,
  sendRandom,
  transports,
  waitFor,
  type MuxPair,
} from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

describe.each(transports)('StreamMux over $name', (transport) => {
  async function pair(...args: Parameters<typeof muxPair> extends [unknown, ...infer R] ? R : never): Promise<MuxPair> {
    const p = await muxPair(transport, ...args)
    cleanups.push(p.close)
    return p
  }

  it('carries 100 concurrent streams of random data both ways intact', async () => {
    const { a, b, errorsA, errorsB } = await pair()
    const COUNT = 100
    const size = (i: number, salt: number): number => (i * 40_961 + salt) % 300_000 // 0 B … 300 kB, some above the window
    const inbound = new Map<string, Promise<{ received: { bytes: number; sha256: string }; sent: string }>>()
    b.on('stream', (stream) => {
      const i = Number(stream.label.slice(1))
      expect(stream.direction).toBe('inbound')
      inbound.set(stream.label, Promise.all([receiveAll(stream), sendRandom(stream, size(i, 977))]).then(([received, sent]) => ({ received, sent })))
    })
    const outbound = Array.from({ length: COUNT }, (_, i) => {
      const stream = a.openStream({ label: `s${i}` })
      expect(stream.id % 2).toBe(1)
      expect(stream.direction).toBe('outbound')
      return Promise.all([sendRandom(stream, size(i, 0)), receiveAll(stream), closed(stream)]).then(([sent, received]) => ({ sent, received }))
    })
    expect(a.streamCount).toBe(COUNT)
    const results = await Promise.all(outbound)
    expect(inbound.size).toBe(COUNT)
    for (let i = 0; i < COUNT; i++) {
      const remote = await inbound.get(`s${i}`)!
      expect(remote.received).toEqual({ bytes: size(i, 0), sha256: results[i]!.sent })
      expect(results[i]!.received).toEqual({ bytes: size(i, 977), sha256: remote.sent })
    }
    expect(size(0, 0)).toBe(0) // stream 0 carried no bytes at all
    expect(results[0]!.sent).toBe(EMPTY_SHA256)
    await waitFor(() => a.streamCount === 0 && b.streamCount === 0, 5_000, 'all streams released')
    expect(errorsA).toEqual([])
    expect(errorsB).toEqual([])
  })

  it('half-closes: each side ends its direction while the other keeps writing', async () => {
    const { a, b } = await pair()
    const accepted = once(b, 'stream') as Promise<[MuxStream]>
    const s = a.openStream({ label: 'half-close' })
    s.end('request')
    const [r] = await accepted
    expect(r.label).toBe('half-close')
    const request = await receiveAll(r)
    expect(request.bytes).toBe(7)
    // A has ended its side; B can still write back, and A still reads.
    expect(r.writable).toBe(true)
    const replyReceived = receiveAll(s)
    const sha = await sendRandom(r, 500_000)
    expect(await replyReceived).toEqual({ bytes: 500_000, sha256: sha })
    await Promise.all([closed(s), closed(r)])
    expect(a.streamCount + b.streamCount).toBe(0)

    // The other way round: the responder ends first, the initiator keeps writing.
    const accepted2 = once(b, 'stream') as Promise<[MuxStream]>
    const s2 = a.openStream()
    s2.write('x')
    const [r2] = await accepted2
    r2.end('bye')
    const fromR2 = await receiveAll(s2)
    expect(fromR2.bytes).toBe(3)
    const toR2 = receiveAll(r2)
    const sha2 = await sendRandom(s2, 300_000)
    const got = await toR2
    expect(got.bytes).toBe(300_001)
    expect(sha2).toHaveLength(64)
    await Promise.all([closed(s2), closed(r2)])
    expect(a.streamCount + b.streamCount).toBe(0)
  })

  it('propagates a reset both ways, failing the pending write', async () => {
    const { a, b } = await pair()
    const accepted = once(b, 'stream') as Promise<[MuxStream]>
    const s = a.openStream()
    s.write('hello')
    const [r] = await accepted
    const rError = errorOf(r)
    s.destroy()
    const err = await rError
    expect(err).toMatchObject({ code: 'ERR_MUX_STREAM_RESET' })
    await waitFor(() => a.streamCount === 0 && b.streamCount === 0, 5_000, 'streams released')

    // Responder resets while the initiator is blocked writing beyond the window.
    const accepted2 = once(b, 'stream') as Promise<[MuxStream]>
    const s2 = a.openStream()
    const s2Error = errorOf(s2)
    const writeDone = new Promise<Error | null | undefined>((resolve) => s2.write(Buffer.alloc(DEFAULT_WINDOW * 3), resolve))
    const [r2] = await accepted2
    await waitFor(() => r2.readableLength + r2.queuedBytes > 0, 5_000, 'data to arrive')
    r2.destroy()
    expect(await s2Error).toMatchObject({ code: 'ERR_MUX_STREAM_RESET' })
    expect(await writeDone).toMatchObject({ code: 'ERR_MUX_STREAM_RESET' })
    await waitFor(() => a.streamCount === 0 && b.streamCount === 0, 5_000, 'streams released')
    // The connection itself is unharmed.
    expect(typeof (await a.ping())).toBe('number')
  })

  it('isolates flow control: an unread stream does not stop the others', async () => {
    const { a, b } = await pair()
    const streams: MuxStream[] = []
    b.on('stream', (stream) => streams.push(stream))
    const slow = a.openStream({ label: 'slow' })
    const fast = a.openStream({ label: 'fast' })
    const SLOW_SIZE = 4 * DEFAULT_WINDOW // far more than its window
    const slowSent = sendRandom(slow, SLOW_SIZE)
    let slowFinished = false
    slow.once('finish', () => (slowFinished = true))
    await waitFor(() => streams.length === 2, 5_000, 'both streams')
    const [slowIn, fastIn] = streams.sort((x, y) => x.id - y.id) as [MuxStream, MuxStream]
    expect(slowIn.label).toBe('slow')
    // Nobody reads `slow` on B. `fast` still carries 4 MB end to end.
    const fastReceived = receiveAll(fastIn)
    const fastSha = await sendRandom(fast, 4_000_000)
    expect(await fastReceived).toEqual({ bytes: 4_000_000, sha256: fastSha })
    // `slow` is stuck at its window: its writer sees backpressure, B holds no more than the window plus Node's buffer.
    expect(slowFinished).toBe(false)
    expect(slow.writableLength).toBeGreaterThan(0)
    const held = slowIn.readableLength + slowIn.queuedBytes
    expect(held).toBeGreaterThan(0)
    expect(held).toBeLessThanOrEqual(DEFAULT_WINDOW + 64 * 1024 + 65_536)
    expect(slow.sendWindow).toBeLessThan(DEFAULT_WINDOW)
    // Reading it now lets everything through.
    const slowReceived = await receiveAll(slowIn)
    expect(slowReceived).toEqual({ bytes: SLOW_SIZE, sha256: await slowSent })
  })

  it('refuses streams beyond maxStreams with ERR_MUX_STREAM_REFUSED, locally and remotely', async () => {
    const { a, b } = await pair({ maxStreams: 10 }, { maxStreams: 3 })
    const inbound: MuxStream[] = []
    b.on('stream', (stream) => inbound.push(stream))
    const open = [a.openStream(), a.openStream(), a.openStream()]
    const fourth = a.openStream({ label: 'one too many' })
    expect(fourth.id).toBeGreaterThan(0)
    const err = await errorOf(fourth)
    expect(err).toMatchObject({ code: 'ERR_MUX_STREAM_REFUSED' })
    expect(err.message).toContain('one too many')
    expect(inbound).toHaveLength(3)
    expect(b.streamCount).toBe(3)

    // Locally: A's own limit counts its open streams (inbound ones too).
    const other = await pair({ maxStreams: 2 })
    // Their inbound streams are reset when the test's own ends are destroyed below.
    other.a.on('stream', (stream: MuxStream) => stream.on('error', () => {}))
    other.b.on('stream', (stream: MuxStream) => stream.on('error', () => {}))
    const first = other.b.openStream() // inbound for A
    const second = other.a.openStream()
    await waitFor(() => other.a.streamCount === 2, 5_000, 'A to see both streams')
    const local = other.a.openStream()
    expect(local.id).toBe(0)
    expect(await errorOf(local)).toMatchObject({ code: 'ERR_MUX_STREAM_REFUSED' })
    expect(first.destroyed || second.destroyed).toBe(false)
    // Closing one makes room again.
    open[0]!.end()
    open[0]!.resume()
    inbound[0]!.end()
    inbound[0]!.resume()
    await closed(open[0]!)
    await waitFor(() => b.streamCount === 2, 5_000, 'B to release the stream')
    const acceptedAgain = once(b, 'stream') as Promise<[MuxStream]>
    const again = a.openStream()
    const [accepted] = await acceptedAgain
    again.end('ok')
    expect((await receiveAll(accepted)).bytes).toBe(2)
    // Streams still open would be aborted with an error by the pairs' cleanup (the mux
    // closes with a timeout), and nothing here listens for it: close them first.
    // (A reset from the other end may reach one before it is destroyed here: ignore it.)
    const leftovers = [...open, ...inbound, first, second, again, accepted]
    for (const stream of leftovers) stream.on('error', () => {})
    for (const stream of leftovers) stream.destroy()
  })

  it('go-away: open streams finish, new ones are refused, then both sides close', async () => {
    const { a, b, errorsA, errorsB } = await pair()
    const inbound: MuxStream[] = []
    b.on('stream', (stream) => inbound.push(stream))
    const s1 = a.openStream()
    s1.write('1')
    const s2 = a.openStream()
    s2.write('2')
    await waitFor(() => inbound.length === 2, 5_000, 'both streams')
    const goaway = once(b, 'goaway')
    const closing = a.close()
    expect(await goaway).toEqual(['normal'])
    expect(a.goingAway && b.goingAway).toBe(true)
    expect(await errorOf(a.openStream())).toMatchObject({ code: 'ERR_MUX_STREAM_REFUSED' })
    expect(await errorOf(b.openStream())).toMatchObject({ code: 'ERR_MUX_STREAM_REFUSED' })
    // Existing streams still work both ways.
    const received = [receiveAll(s1), receiveAll(s2), receiveAll(inbound[0]!), receiveAll(inbound[1]!)]
    const sent = await Promise.all([sendRandom(s1, 100_000), sendRandom(s2, 600_000), sendRandom(inbound[0]!, 700_000), sendRandom(inbound[1]!, 5)])
    const got = await Promise.all(received)
    expect(got.map((x) => x.bytes)).toEqual([700_000, 5, 100_001, 600_001]) // +1: the byte written before go-away
    expect([got[0]!.sha256, got[1]!.sha256]).toEqual([sent[2], sent[3]])
    await closing
    await waitFor(() => b.closed, 5_000, 'B to close')
    expect(a.closed && b.closed).toBe(true)
    expect(errorsA).toEqual([])
    expect(errorsB).toEqual([])
  })

  it('destroys every stream with ERR_CONNECTION_CLOSED when the transport is destroyed', async () => {
    const { a, b, raw, errorsA } = await pair()
    const accepted = once(b, 'stream') as Promise<[MuxStream]>
    const s = a.openStream()
    s.write('x')
    const [r] = await accepted
    const remoteErrors: Error[] = []
    r.on('error', (err) => remoteErrors.push(err)) // over TCP and udx, B learns of it too
    const sError = errorOf(s)
    const aClosed = once(a, 'close')
    raw.a.destroy()
    expect(await sError).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    await aClosed
    expect(errorsA).toEqual([]) // destroyed by its owner, not failed
    expect(await errorOf(a.openStream())).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    await expect(a.ping()).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    b.destroy() // in memory, B cannot learn that A's side was destroyed
    await closed(r)
    for (const err of remoteErrors) expect(err).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
  })

  it('destroys every stream with ERR_CONNECTION_CLOSED when the remote ends the transport', async () => {
    const { a, b, raw, errorsA, errorsB } = await pair()
    const accepted = once(b, 'stream') as Promise<[MuxStream]>
    const s = a.openStream()
    s.write('x')
    const [r] = await accepted
    const errors = Promise.all([errorOf(s), errorOf(r)])
    const bothClosed = Promise.all([once(a, 'close'), once(b, 'close')])
    raw.a.end() // A's transport ends underneath its multiplexer
    const [sErr, rErr] = await errors
    expect(sErr).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    expect(rErr).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    await bothClosed
    expect(errorsA).toEqual([])
    expect(errorsB).toEqual([])
  })

  it('reports a transport error as the multiplexer error and fails the streams with it', async () => {
    const { a, b, raw, errorsA } = await pair()
    const accepted = once(b, 'stream') as Promise<[MuxStream]>
    const s = a.openStream()
    s.write('x')
    const [r] = await accepted
    const remoteErrors: Error[] = []
    r.on('error', (err) => remoteErrors.push(err)) // over TCP and udx, B learns of it too
    const sError = errorOf(s)
    raw.a.destroy(new Error('boom'))
    const err = await sError
    expect(err).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
    expect((err as Error & { cause?: Error }).cause?.message).toBe('boom')
    await waitFor(() => a.closed, 5_000, 'A to close')
    expect(errorsA).toEqual([err])
    b.destroy() // in memory, B cannot learn that A's side was destroyed
    await closed(r)
    for (const err of remoteErrors) expect(err).toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
  })

  it('measures the round-trip time with ping', async () => {
    const { a, b } = await pair()
    const [rttA, rttB] = await Promise.all([a.ping(), b.ping()])
    expect(rttA).toBeGreaterThanOrEqual(0)
    expect(rttA).toBeLessThan(2_000)
    expect(rttB).toBeGreaterThanOrEqual(0)
    expect(a.rtt).toBe(rttA)
    await expect(a.ping({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })

  it('carries labels, and one stream can pipe through to another', async () => {
    const { a, b } = await pair({ initialWindow: 1024 * 1024 }, { initialWindow: 512 * 1024 })
    b.on('stream', (stream) => {
      expect(stream.label).toBe('écho ✓ 🙂')
      stream.pipe(stream) // echo
    })
    const s = a.openStream({ label: 'écho ✓ 🙂' })
    const payload = randomBytes(3_000_000)
    const echoed = receiveAll(s)
    s.end(payload)
    const got = await echoed
    expect(got.bytes).toBe(payload.length)
    await sleep(0)
  })
})
