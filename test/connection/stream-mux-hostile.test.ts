// StreamMux against a hand-driven remote (raw frames over an in-memory duplexPair):
// malformed and hostile input, option checks, signals, keep-alives, and what goes on the wire.
import { describe, it, expect, afterEach } from 'vitest'
import fc from 'fast-check'
import { once } from 'node:events'
import { duplexPair, type Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { StreamMux, type StreamMuxOptions } from '../../src/connection/stream-mux.js'
import type { MuxStream } from '../../src/connection/mux-stream.js'
import { DEFAULT_WINDOW, MAX_WINDOW, encodeFrame, type MuxFrame } from '../../src/connection/mux-frame.js'
import { MuxFrameDecoder } from '../../src/connection/mux-frame-decoder.js'
import { InvalidArgumentError, MuxProtocolError } from '../../src/errors.js'
import { frameArbitraryWith } from './arbitraries.js'
import { closed, errorOf, muxPair, memory, waitFor } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

interface RawPeer {
  mux: StreamMux
  raw: Duplex
  errors: Error[]
  /** Frames the multiplexer sent (data payloads joined), once `read()` was called. */
  frames: MuxFrame[]
  read: () => void
  send: (...frames: MuxFrame[]) => void
}

/** A multiplexer (responder unless told otherwise) whose remote is driven by hand. */
function rawPeer(options: Partial<StreamMuxOptions> = {}, acceptStreams = true): RawPeer {
  const [raw, side] = duplexPair()
  const mux = new StreamMux(side, { isInitiator: false, ...options })
  const errors: Error[] = []
  mux.on('error', (err) => errors.push(err))
  if (acceptStreams) mux.on('stream', (stream) => stream.on('error', () => {}))
  const frames: MuxFrame[] = []
  let data: { streamId: number; parts: Buffer[]; remaining: number } | null = null
  const decoder = new MuxFrameDecoder({
    onDataHeader(streamId, remaining) {
      data = { streamId, parts: [], remaining }
    },
    onDataPiece(streamId, piece) {
      data!.parts.push(Buffer.from(piece))
      data!.remaining -= piece.length
      if (data!.remaining === 0) frames.push({ type: 'data', streamId, payload: Buffer.concat(data!.parts) })
    },
    onFrame: (frame) => void frames.push(frame),
  })
  cleanups.push(async () => {
    mux.destroy()
    raw.destroy()
    side.destroy()
    await Promise.all([closed(raw), closed(side)])
    await waitFor(() => mux.closed, 2_000, 'the multiplexer to close')
  })
  return {
    mux,
    raw,
    errors,
    frames,
    read: () => raw.on('data', (chunk: Buffer) => decoder.push(chunk)),
    send: (...list) => void raw.write(Buffer.concat(list.map(encodeFrame))),
  }
}

async function expectProtocolError(peer: RawPeer): Promise<MuxProtocolError> {
  await waitFor(() => peer.errors.length > 0, 2_000, 'a multiplexer error')
  expect(peer.errors).toHaveLength(1)
  expect(peer.errors[0]).toBeInstanceOf(MuxProtocolError)
  expect(peer.errors[0]).toMatchObject({ code: 'ERR_MUX_PROTOCOL' })
  return peer.errors[0] as MuxProtocolError
}

describe('StreamMux against a hostile remote', () => {
  it('tears the session down on garbage: typed error, streams failed, go-away sent, closed', async () => {
    const peer = rawPeer()
    peer.read()
    const accepted = once(peer.mux, 'stream') as Promise<[MuxStream]>
    peer.send({ type: 'open', streamId: 1, label: 'victim' })
    const [stream] = await accepted
    const streamError = new Promise<Error>((resolve) => stream.on('error', resolve))
    const closing = new Promise<void>((resolve) => peer.mux.once('close', () => resolve())) // events.once would reject on 'error'
    peer.raw.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'))
    const err = await expectProtocolError(peer)
    expect(err.message).toMatch(/version/)
    expect(await streamError).toBe(err)
    peer.raw.end() // what a real peer does when it reads the go-away
    await closing
    expect(peer.frames).toContainEqual({ type: 'go-away', code: 'protocol-error' })
    expect(peer.mux.destroyed).toBe(true)
  })

  it.each<[string, MuxFrame[]]>([
    ['data beyond the window', [{ type: 'open', streamId: 1, label: '' }, { type: 'data', streamId: 1, payload: Buffer.alloc(65_536) }, { type: 'data', streamId: 1, payload: Buffer.alloc(65_536) }, { type: 'data', streamId: 1, payload: Buffer.alloc(65_536) }, { type: 'data', streamId: 1, payload: Buffer.alloc(65_536) }, { type: 'data', streamId: 1, payload: Buffer.alloc(1) }]],
    ['data for a stream never opened', [{ type: 'data', streamId: 5, payload: Buffer.alloc(1) }]],
    ['a window update for our stream never opened', [{ type: 'window-update', streamId: 2, increment: 1 }]],
    ['an open with our parity', [{ type: 'open', streamId: 2, label: '' }]],
    ['opens out of order', [{ type: 'open', streamId: 5, label: '' }, { type: 'open', streamId: 3, label: '' }]],
    ['the same open twice', [{ type: 'open', streamId: 1, label: '' }, { type: 'open', streamId: 1, label: '' }]],
    ['data after close', [{ type: 'open', streamId: 1, label: '' }, { type: 'close', streamId: 1 }, { type: 'data', streamId: 1, payload: Buffer.alloc(1) }]],
    ['close twice', [{ type: 'open', streamId: 1, label: '' }, { type: 'close', streamId: 1 }, { type: 'close', streamId: 1 }]],
    ['a window beyond 4 GiB', [{ type: 'open', streamId: 1, label: '' }, { type: 'window-update', streamId: 1, increment: MAX_WINDOW }]],
    ['a go-away reporting our protocol error', [{ type: 'go-away', code: 'protocol-error' }]],
  ])('fails with ERR_MUX_PROTOCOL on %s', async (name, frames) => {
    const peer = rawPeer()
    peer.send(...frames)
    await expectProtocolError(peer)
    peer.read()
    peer.raw.end()
    await waitFor(() => peer.mux.closed, 1_000, 'close') // the transport was ended, not left to time out
    // It tells the remote why (unless the remote told it first).
    if (!name.includes('go-away')) expect(peer.frames.at(-1)).toEqual({ type: 'go-away', code: 'protocol-error' })
    expect(peer.mux.streamCount).toBe(0)
  })

  it('drops frames still in flight for a stream it already finished', async () => {
    const peer = rawPeer()
    peer.read()
    const accepted = once(peer.mux, 'stream') as Promise<[MuxStream]>
    peer.send({ type: 'open', streamId: 1, label: '' })
    const [stream] = await accepted
    stream.destroy()
    await waitFor(() => peer.frames.some((f) => f.type === 'reset'), 2_000, 'the reset')
    expect(peer.frames).toContainEqual({ type: 'reset', streamId: 1, reason: 'cancel' })
    // The remote had sent these before it saw the reset: no error.
    peer.send({ type: 'data', streamId: 1, payload: Buffer.alloc(100) }, { type: 'window-update', streamId: 1, increment: 5 }, { type: 'close', streamId: 1 }, { type: 'reset', streamId: 1, reason: 'cancel' })
    const next = once(peer.mux, 'stream') as Promise<[MuxStream]>
    peer.send({ type: 'open', streamId: 3, label: 'next' })
    expect((await next)[0].label).toBe('next')
    expect(peer.errors).toEqual([])
  })

  it('accepts streams even while no listener is attached (no refusal)', async () => {
    const peer = rawPeer({}, false)
    peer.read()
    peer.send({ type: 'open', streamId: 1, label: 'early' }, { type: 'data', streamId: 1, payload: Buffer.from('hi') }, { type: 'close', streamId: 1 })
    await sleep(20)
    expect(peer.frames).toEqual([]) // no refusal
    expect(peer.mux.streamCount).toBe(1)
    const accepted = once(peer.mux, 'stream') as Promise<[MuxStream]>
    peer.send({ type: 'open', streamId: 3, label: 'late' })
    const [late] = await accepted
    expect(late.label).toBe('late')
    expect(peer.mux.streamCount).toBe(2)
  })

  it('answers pings, but fails a remote that floods pings without reading', async () => {
    const peer = rawPeer()
    peer.read()
    const opaque = Buffer.from('01234567')
    peer.send({ type: 'ping', opaque })
    await waitFor(() => peer.frames.length > 0, 2_000, 'the pong')
    expect(peer.frames).toEqual([{ type: 'pong', opaque }])

    const flooded = rawPeer() // its remote never reads
    const ping = encodeFrame({ type: 'ping', opaque })
    flooded.raw.write(Buffer.concat(Array.from({ length: 6_000 }, () => ping)))
    const err = await expectProtocolError(flooded)
    expect(err.message).toMatch(/without reading/)
  })

  it('fuzz: any frame sequence either works or ends in ERR_MUX_PROTOCOL, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frameArbitraryWith(8, 70_000), { maxLength: 25 }), async (frames) => {
        const [raw, side] = duplexPair()
        const mux = new StreamMux(side, { isInitiator: false, maxStreams: 3 })
        const errors: Error[] = []
        mux.on('error', (err) => errors.push(err))
        mux.on('stream', (stream) => {
          stream.on('error', (err) => errors.push(err))
          stream.pipe(stream) // echo, so windows, closes and resets all get exercised
        })
        raw.resume()
        for (const frame of frames) raw.write(encodeFrame(frame))
        await sleep(1)
        mux.destroy()
        raw.destroy()
        await Promise.all([closed(raw), closed(side)])
        for (const err of errors) expect(['ERR_MUX_PROTOCOL', 'ERR_MUX_STREAM_RESET', 'ERR_MUX_STREAM_REFUSED']).toContain((err as { code?: string }).code)
      }),
      { numRuns: 150 },
    )
  })
})

describe('StreamMux wire behaviour', () => {
  it('holds writes while the window is exhausted, then merges the small ones into one frame', async () => {
    const peer = rawPeer({ isInitiator: true })
    peer.read()
    const stream = peer.mux.openStream({ label: 'w' })
    stream.write(Buffer.alloc(DEFAULT_WINDOW, 1))
    const okWrites = Array.from({ length: 100 }, () => stream.write(Buffer.alloc(10, 2)))
    await waitFor(() => peer.frames.filter((f) => f.type === 'data').length >= 4, 2_000, 'the first window')
    await sleep(20)
    const first = peer.frames.filter((f) => f.type === 'data')
    expect(first.reduce((n, f) => n + (f.type === 'data' ? f.payload.length : 0), 0)).toBe(DEFAULT_WINDOW)
    expect(peer.frames[0]).toEqual({ type: 'open', streamId: 1, label: 'w' })
    expect(stream.sendWindow).toBe(0)
    expect(okWrites.every((ok) => !ok)).toBe(true) // backpressure: the 256 KiB write is still in flight
    peer.send({ type: 'window-update', streamId: 1, increment: 1 << 20 })
    await waitFor(() => peer.frames.filter((f) => f.type === 'data').length > first.length, 2_000, 'more data')
    await sleep(20)
    const rest = peer.frames.filter((f) => f.type === 'data').slice(first.length)
    expect(rest).toEqual([{ type: 'data', streamId: 1, payload: Buffer.alloc(1000, 2) }])
  })

  it('grants a larger initial window at once, and credits back as the reader consumes', async () => {
    const peer = rawPeer({ initialWindow: 1 << 20 })
    peer.read()
    const accepted = once(peer.mux, 'stream') as Promise<[MuxStream]>
    peer.send({ type: 'open', streamId: 1, label: '' })
    const [stream] = await accepted
    await waitFor(() => peer.frames.length > 0, 2_000, 'the grant')
    expect(peer.frames).toEqual([{ type: 'window-update', streamId: 1, increment: (1 << 20) - DEFAULT_WINDOW }])
    // 1 MiB unread is allowed; credit comes back only when it is read.
    for (let i = 0; i < 16; i++) peer.send({ type: 'data', streamId: 1, payload: Buffer.alloc(65_536) })
    await sleep(20)
    expect(peer.frames).toHaveLength(1)
    let got = 0
    stream.on('data', (d: Buffer) => (got += d.length))
    await waitFor(() => got === 1 << 20, 2_000, 'all data read')
    await waitFor(() => peer.frames.length > 1, 2_000, 'credit')
    const credit = peer.frames.slice(1).reduce((n, f) => n + (f.type === 'window-update' ? f.increment : 0), 0)
    expect(credit).toBeGreaterThanOrEqual(1 << 19)
    expect(credit).toBeLessThanOrEqual(1 << 20)
    expect(peer.errors).toEqual([])
  })

  it('a ping without an answer rejects when aborted, or when the multiplexer closes', async () => {
    const peer = rawPeer()
    const controller = new AbortController()
    const aborted = peer.mux.ping({ signal: controller.signal })
    const cut = peer.mux.ping()
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    peer.mux.destroy()
    await expect(cut).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' })
  })

  it('a stream aborted through its signal resets the remote', async () => {
    const peer = rawPeer({ isInitiator: true })
    peer.read()
    const controller = new AbortController()
    const stream = peer.mux.openStream({ signal: controller.signal })
    const err = errorOf(stream)
    controller.abort()
    expect(await err).toMatchObject({ code: 'ERR_ABORTED' })
    await waitFor(() => peer.frames.length >= 2, 2_000, 'the reset')
    expect(peer.frames[1]).toEqual({ type: 'reset', streamId: 1, reason: 'cancel' })
  })

  it('the signal option destroys the multiplexer and its streams with ERR_ABORTED', async () => {
    const controller = new AbortController()
    const peer = rawPeer({ signal: controller.signal, isInitiator: true })
    const stream = peer.mux.openStream()
    const streamError = errorOf(stream)
    controller.abort()
    expect(await streamError).toMatchObject({ code: 'ERR_ABORTED' })
    await waitFor(() => peer.mux.closed, 2_000, 'close')
    expect(peer.errors).toMatchObject([{ code: 'ERR_ABORTED' }])
  })

  it('keep-alive: a silent remote is detected; a live one is not', async () => {
    const silent = rawPeer({ keepAliveInterval: 20 })
    await waitFor(() => silent.errors.length > 0, 2_000, 'the keep-alive to fail')
    expect(silent.errors).toMatchObject([{ code: 'ERR_CONNECTION_CLOSED' }])

    const live = await muxPair(memory, { keepAliveInterval: 20 }, { keepAliveInterval: 20 })
    cleanups.push(live.close)
    await sleep(200)
    expect(live.errorsA).toEqual([])
    expect(live.errorsB).toEqual([])
    expect(live.a.destroyed || live.b.destroyed).toBe(false)
  })

  it('checks its options at once', () => {
    const [x, y] = duplexPair()
    cleanups.push(async () => {
      x.destroy()
      y.destroy()
      await Promise.all([closed(x), closed(y)])
    })
    expect(() => new StreamMux(x, {} as StreamMuxOptions)).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(x, { isInitiator: true, maxStreams: 0 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(x, { isInitiator: true, initialWindow: 1024 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(x, { isInitiator: true, maxFrameSize: 65_537 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux(x, { isInitiator: true, keepAliveInterval: -1 })).toThrow(InvalidArgumentError)
    expect(() => new StreamMux({} as Duplex, { isInitiator: true })).toThrow(InvalidArgumentError)
    const mux = new StreamMux(x, { isInitiator: true })
    expect(() => mux.openStream({ label: 'é'.repeat(513) })).toThrow(InvalidArgumentError)
    expect(() => mux.close({ timeout: -1 })).toThrow(InvalidArgumentError)
    mux.destroy()
  })
})
