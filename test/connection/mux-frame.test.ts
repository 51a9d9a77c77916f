import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import {
  DEFAULT_WINDOW,
  FRAME_HEADER_LENGTH,
  MAX_FRAME_PAYLOAD,
  MAX_LABEL_LENGTH,
  MAX_WINDOW,
  encodeFrame,
  type MuxFrame,
} from '../../src/connection/mux-frame.js'
import { MuxFrameDecoder } from '../../src/connection/mux-frame-decoder.js'
import { InvalidArgumentError, MuxProtocolError } from '../../src/errors.js'
import { frameArbitrary } from './arbitraries.js'

/** Decode `chunks`, collecting frames (data payloads joined); returns the frames and the error, if any. */
function decodeAll(chunks: Buffer[]): { frames: MuxFrame[]; error: unknown } {
  const frames: MuxFrame[] = []
  let data: { streamId: number; parts: Buffer[]; remaining: number } | null = null
  const decoder = new MuxFrameDecoder({
    onDataHeader(streamId, length) {
      data = { streamId, parts: [], remaining: length }
      if (length === 0) {
        frames.push({ type: 'data', streamId, payload: Buffer.alloc(0) })
        data = null
      }
    },
    onDataPiece(streamId, piece) {
      expect(data?.streamId).toBe(streamId)
      data!.parts.push(piece)
      data!.remaining -= piece.length
      if (data!.remaining === 0) {
        frames.push({ type: 'data', streamId, payload: Buffer.concat(data!.parts) })
        data = null
      }
    },
    onFrame(frame) {
      frames.push(frame)
    },
  })
  try {
    for (const chunk of chunks) decoder.push(chunk)
  } catch (error) {
    return { frames, error }
  }
  return { frames, error: undefined }
}

/** Split `bytes` at the given (sorted, deduplicated) cut points. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
  const out: Buffer[] = []
  let start = 0
  for (const p of points) {
    out.push(bytes.subarray(start, p))
    start = p
  }
  out.push(bytes.subarray(start))
  return out
}

function normalise(frame: MuxFrame): unknown {
  if (frame.type === 'data') return { ...frame, payload: Buffer.from(frame.payload).toString('hex') }
  if (frame.type === 'ping' || frame.type === 'pong') return { ...frame, opaque: Buffer.from(frame.opaque).toString('hex') }
  return frame
}

function header(version: number, type: number, streamId: number, length: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_LENGTH)
  b[0] = version
  b[1] = type
  b.writeUInt32BE(streamId, 2)
  b.writeUInt32BE(length, 6)
  return b
}

describe('mux frames', () => {
  it('round-trips any frame sequence, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(frameArbitrary, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map(encodeFrame))
        const { frames: decoded, error } = decodeAll(split(bytes, cuts))
        expect(error).toBeUndefined()
        expect(decoded.map(normalise)).toEqual(frames.map(normalise))
      }),
      { numRuns: 500 },
    )
  })

  it('encodes the documented header layout', () => {
    expect(encodeFrame({ type: 'window-update', streamId: 7, increment: 65_536 }).toString('hex')).toBe(
      '01' + '02' + '00000007' + '00000004' + '00010000',
    )
    expect(encodeFrame({ type: 'open', streamId: 1, label: 'hi' }).toString('hex')).toBe('01' + '01' + '00000001' + '00000002' + '6869')
    expect(encodeFrame({ type: 'go-away', code: 'protocol-error' }).toString('hex')).toBe('01' + '07' + '00000000' + '00000001' + '01')
    expect(encodeFrame({ type: 'reset', streamId: 2, reason: 'refused' }).toString('hex')).toBe('01' + '04' + '00000002' + '00000001' + '01')
  })

  it('hands data payloads on as views into the received chunk (no copy)', () => {
    const bytes = encodeFrame({ type: 'data', streamId: 3, payload: Buffer.alloc(1000, 7) })
    const pieces: Buffer[] = []
    const decoder = new MuxFrameDecoder({ onDataHeader: () => {}, onDataPiece: (_id, p) => void pieces.push(p), onFrame: () => {} })
    decoder.push(bytes.subarray(0, 500))
    decoder.push(bytes.subarray(500))
    expect(pieces.map((p) => p.length)).toEqual([490, 510])
    expect(pieces[0]!.buffer).toBe(bytes.buffer)
    expect(pieces[1]!.buffer).toBe(bytes.buffer)
    expect(decoder.idle).toBe(true)
  })

  it.each([
    ['an unknown version', header(2, 0, 1, 0)],
    ['an unknown type', header(1, 8, 1, 0)],
    ['a data frame for stream 0', header(1, 0, 0, 0)],
    ['a ping for a stream', Buffer.concat([header(1, 5, 1, 8), Buffer.alloc(8)])],
    ['an oversized data frame', header(1, 0, 1, MAX_FRAME_PAYLOAD + 1)],
    ['an oversized label', header(1, 1, 1, MAX_LABEL_LENGTH + 1)],
    ['a short window update', Buffer.concat([header(1, 2, 1, 3), Buffer.alloc(3)])],
    ['a window update of 0', Buffer.concat([header(1, 2, 1, 4), Buffer.alloc(4)])],
    ['a close with a payload', Buffer.concat([header(1, 3, 1, 1), Buffer.alloc(1)])],
    ['an unknown reset reason', Buffer.concat([header(1, 4, 1, 1), Buffer.of(2)])],
    ['an unknown go-away code', Buffer.concat([header(1, 7, 0, 1), Buffer.of(9)])],
    ['a label that is not UTF-8', Buffer.concat([header(1, 1, 1, 2), Buffer.of(0xc3, 0x28)])],
  ])('rejects %s with ERR_MUX_PROTOCOL', (_name, bytes) => {
    const { error } = decodeAll([bytes])
    expect(error).toBeInstanceOf(MuxProtocolError)
    expect(error).toMatchObject({ code: 'ERR_MUX_PROTOCOL' })
  })

  it('rejects an oversized frame from its header alone, before any payload arrives', () => {
    const { error } = decodeAll([header(1, 0, 1, 0xffff_ffff)])
    expect(error).toBeInstanceOf(MuxProtocolError)
  })

  it('fuzz: random bytes decode or fail with ERR_MUX_PROTOCOL only, and stay failed', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (chunks) => {
        const frames: unknown[] = []
        const decoder = new MuxFrameDecoder({ onDataHeader: () => {}, onDataPiece: () => {}, onFrame: (f) => void frames.push(f) })
        let failure: unknown
        for (const chunk of chunks) {
          try {
            decoder.push(Buffer.from(chunk))
          } catch (err) {
            failure = err
            break
          }
        }
        if (failure === undefined) return
        expect(failure).toBeInstanceOf(MuxProtocolError)
        expect(() => decoder.push(Buffer.alloc(1))).toThrow(failure as Error)
      }),
      { numRuns: 2_000 },
    )
  })

  it('fuzz: corrupted valid streams fail with ERR_MUX_PROTOCOL only', () => {
    fc.assert(
      fc.property(
        fc.array(frameArbitrary, { minLength: 1, maxLength: 10 }),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, flips, cuts) => {
          const bytes = Buffer.concat(frames.map(encodeFrame))
          for (const { at, value } of flips) bytes[at % bytes.length] = value
          const { error } = decodeAll(split(bytes, cuts))
          if (error !== undefined) expect(error).toBeInstanceOf(MuxProtocolError)
        },
      ),
      { numRuns: 1_000 },
    )
  })

  it('encodeFrame refuses frames the format cannot carry', () => {
    expect(() => encodeFrame({ type: 'data', streamId: 0, payload: Buffer.alloc(1) })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'data', streamId: 1, payload: Buffer.alloc(MAX_FRAME_PAYLOAD + 1) })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'open', streamId: 1, label: 'x'.repeat(MAX_LABEL_LENGTH + 1) })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'window-update', streamId: 1, increment: 0 })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'window-update', streamId: 1, increment: MAX_WINDOW + 1 })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'ping', opaque: Buffer.alloc(7) })).toThrow(InvalidArgumentError)
    expect(() => encodeFrame({ type: 'reset', streamId: 1, reason: 'nope' as never })).toThrow(InvalidArgumentError)
    expect(DEFAULT_WINDOW).toBe(262_144)
  })
})
