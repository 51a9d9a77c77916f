// FrameReader: 3-byte little-endian length-prefixed frames out of a chunked byte stream.
// Frames whose body lies in the chunk where their length prefix ends come out as views
// of that chunk; frames spread over chunks as copies of exactly their size.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { FRAME_HEADER_BYTES, FrameReader, MAX_FRAME_LENGTH } from '../../src/transport/frame-reader.js'

/** A Buffer over its own ArrayBuffer (never Node's shared pool), so that views are recognisable. */
function own(bytes: ArrayLike<number>): Buffer {
  return Buffer.from(new Uint8Array(bytes).buffer)
}

function header(length: number): number[] {
  return [length & 0xff, (length >>> 8) & 0xff, length >>> 16]
}

function serialise(frames: readonly Uint8Array[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => [Buffer.from(header(f.length)), f]))
}

/** `data` cut at `cuts` (positions, any order, repeats give empty chunks), each chunk on its own ArrayBuffer. */
function cut(data: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [0, ...cuts.map((c) => c % (data.length + 1)).sort((x, y) => x - y), data.length]
  return points.slice(1).map((end, i) => own(data.subarray(points[i]!, end)))
}

/** A reader that records every frame (the handler's Buffer itself and a copy taken at once). */
function recorder(limit = MAX_FRAME_LENGTH) {
  const frames: Buffer[] = []
  const copies: Buffer[] = []
  const oversize: Array<[number, number]> = []
  let handler: (frame: Buffer) => boolean = () => true
  const reader = new FrameReader(
    limit,
    (frame) => {
      frames.push(frame)
      copies.push(Buffer.from(frame))
      return handler(frame)
    },
    (length, max) => oversize.push([length, max]),
  )
  return {
    reader,
    frames,
    copies,
    oversize,
    onFrame(h: (frame: Buffer) => boolean) {
      handler = h
    },
  }
}

const frameArb = fc.uint8Array({ minLength: 0, maxLength: 300 })
const framesArb = fc.array(frameArb, { maxLength: 20 })
const cutsArb = fc.array(fc.nat(), { maxLength: 40 })

describe('FrameReader', () => {
  it('reads the example of its documentation', () => {
    const r = recorder(1024)
    r.reader.push(own([2, 0, 0, 0xaa, 0xbb]))
    expect(r.copies).toEqual([Buffer.from([0xaa, 0xbb])])
    expect(r.reader.partial).toBe(false)
  })

  it('decodes the length little-endian, all three bytes', () => {
    const length = 0x01_02_03 // 66,051: every byte of the prefix matters
    const body = Buffer.alloc(length, 7)
    const r = recorder()
    r.reader.push(own([0x03, 0x02, 0x01, ...body.subarray(0, 1000)]))
    expect(r.frames).toHaveLength(0)
    expect(r.reader.partial).toBe(true)
    r.reader.push(own(body.subarray(1000)))
    expect(r.copies).toHaveLength(1)
    expect(r.copies[0]!.equals(body)).toBe(true)
    expect(FRAME_HEADER_BYTES).toBe(3)
    expect(MAX_FRAME_LENGTH).toBe(0xffffff)
  })

  it.each([
    ['1+2', [1]],
    ['2+1', [2]],
    ['1+1+1', [1, 2]],
  ])('reads a length prefix split %s over chunks, body in the last chunk or after it', (_name, cuts) => {
    const body = Buffer.from('hello frame')
    const data = serialise([body, Buffer.from('next')])
    // Body in the chunk where the prefix ends.
    const r1 = recorder()
    for (const chunk of cut(data, cuts)) r1.reader.push(chunk)
    expect(r1.copies.map(String)).toEqual(['hello frame', 'next'])
    // Body in later chunks too (cut again inside it).
    const r2 = recorder()
    const chunks = cut(data, [...cuts, 3 + 4])
    for (const chunk of chunks) {
      r2.reader.push(chunk)
      if (r2.frames.length === 0) expect(r2.reader.partial).toBe(true)
    }
    expect(r2.copies.map(String)).toEqual(['hello frame', 'next'])
    expect(r2.reader.partial).toBe(false)
  })

  it('reads zero-length frames, alone, in a row and with a split prefix', () => {
    const r = recorder(0)
    r.reader.push(own([0, 0, 0, 0, 0, 0, 0, 0, 0]))
    expect(r.copies).toEqual([Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)])
    expect(r.reader.partial).toBe(false)
    r.reader.push(own([0]))
    r.reader.push(own([0, 0]))
    expect(r.copies).toHaveLength(4)
    expect(r.reader.partial).toBe(false)
    expect(r.oversize).toEqual([])
  })

  it('ignores empty chunks', () => {
    const r = recorder()
    r.reader.push(own([]))
    r.reader.push(own([1]))
    r.reader.push(own([]))
    r.reader.push(own([0, 0]))
    r.reader.push(own([]))
    r.reader.push(own([9]))
    expect(r.copies).toEqual([Buffer.from([9])])
  })

  it('reports partial while a prefix or a body is incomplete', () => {
    const r = recorder()
    expect(r.reader.partial).toBe(false)
    r.reader.push(own([3]))
    expect(r.reader.partial).toBe(true)
    r.reader.push(own([0]))
    expect(r.reader.partial).toBe(true)
    r.reader.push(own([0, 1]))
    expect(r.reader.partial).toBe(true)
    r.reader.push(own([2]))
    expect(r.reader.partial).toBe(true)
    r.reader.push(own([3, 0]))
    expect(r.copies).toEqual([Buffer.from([1, 2, 3])])
    expect(r.reader.partial).toBe(true) // the next prefix has begun
    r.reader.push(own([0, 0]))
    expect(r.copies).toHaveLength(2)
    expect(r.reader.partial).toBe(false)
  })

  it('hands a frame inside one chunk on as a view of it, a frame spread over chunks as a copy', () => {
    const r = recorder()
    const first = own([4, 0, 0, 1, 2, 3, 4, 5, 0, 0, 10, 11])
    r.reader.push(first)
    expect(r.frames).toHaveLength(1)
    expect(r.frames[0]!.buffer).toBe(first.buffer)
    expect(r.frames[0]!.byteOffset).toBe(first.byteOffset + 3)
    const second = own([12, 13, 14])
    r.reader.push(second)
    expect(r.copies[1]).toEqual(Buffer.from([10, 11, 12, 13, 14]))
    const spread = r.frames[1]!
    expect(spread.length).toBe(5)
    expect(spread.buffer).not.toBe(first.buffer)
    expect(spread.buffer).not.toBe(second.buffer)
    // A copy: changing the chunks afterwards does not change it.
    first.fill(0)
    second.fill(0)
    expect(spread).toEqual(Buffer.from([10, 11, 12, 13, 14]))
    expect(r.frames[0]).toEqual(Buffer.alloc(4)) // the view follows its chunk
  })

  it('accepts a frame of exactly the limit; a longer one calls onOversize once and ends reading', () => {
    const r = recorder(4)
    r.reader.push(own([...header(4), 1, 2, 3, 4, ...header(5), 1, 2, 3, 4, 5, ...header(0)]))
    expect(r.copies).toEqual([Buffer.from([1, 2, 3, 4])])
    expect(r.oversize).toEqual([[5, 4]])
    r.reader.push(own([...header(1), 1]))
    r.reader.limit = 1_000
    r.reader.push(own([...header(1), 1]))
    expect(r.frames).toHaveLength(1)
    expect(r.oversize).toHaveLength(1)
  })

  it('checks the limit as soon as a split prefix is complete, before any body arrives', () => {
    const r = recorder(1024)
    r.reader.push(own([0xff]))
    r.reader.push(own([0xff]))
    expect(r.oversize).toEqual([])
    r.reader.push(own([0xff]))
    expect(r.oversize).toEqual([[0xffffff, 1024]])
  })

  it('applies a limit raised by the handler to the next frame of the same chunk', () => {
    // As the secure connection does: 1024 bytes during the handshake, more for records.
    const r = recorder(8)
    r.onFrame(() => {
      r.reader.limit = 100
      return true
    })
    r.reader.push(own([...header(2), 1, 2, ...header(50), ...Buffer.alloc(50, 9)]))
    expect(r.copies.map((f) => f.length)).toEqual([2, 50])
    expect(r.oversize).toEqual([])
  })

  it('lets a frame already started keep its size when the limit is lowered', () => {
    const r = recorder(100)
    r.reader.push(own([...header(50), ...Buffer.alloc(10, 1)]))
    r.reader.limit = 8
    r.reader.push(own([...Buffer.alloc(40, 1), ...header(9)]))
    expect(r.copies).toEqual([Buffer.alloc(50, 1)])
    expect(r.oversize).toEqual([[9, 8]])
  })

  it('stops reading when the handler returns false: the rest of the chunk and later chunks are dropped', () => {
    const r = recorder()
    r.onFrame((frame) => frame[0] !== 2)
    r.reader.push(own([...header(1), 1, ...header(1), 2, ...header(1), 3]))
    r.reader.push(own([...header(1), 4]))
    expect(r.copies.map((f) => f[0])).toEqual([1, 2])
  })

  it('stops reading when the handler returns false on a frame assembled from chunks', () => {
    const r = recorder()
    r.onFrame(() => false)
    r.reader.push(own([...header(3), 1]))
    r.reader.push(own([2, 3, ...header(1), 4]))
    r.reader.push(own([...header(1), 5]))
    expect(r.copies).toEqual([Buffer.from([1, 2, 3])])
  })

  it('stop() from the handler or between chunks ends reading, and drops a frame being assembled', () => {
    const r = recorder()
    r.onFrame((frame) => {
      if (frame[0] === 2) r.reader.stop()
      return true
    })
    r.reader.push(own([...header(1), 1, ...header(1), 2, ...header(1), 3]))
    expect(r.copies.map((f) => f[0])).toEqual([1, 2])
    r.reader.push(own([...header(1), 4]))
    expect(r.frames).toHaveLength(2)

    const s = recorder()
    s.reader.push(own([...header(4), 1, 2]))
    expect(s.reader.partial).toBe(true)
    s.reader.stop()
    expect(s.reader.partial).toBe(false)
    s.reader.push(own([3, 4, ...header(1), 5]))
    expect(s.frames).toEqual([])
  })

  it('property: any frames, cut into any chunks, come out whole and in order; views exactly where the body lies in the chunk that ends its prefix', () => {
    fc.assert(
      fc.property(framesArb, cutsArb, (frames, cuts) => {
        const data = serialise(frames)
        const chunks = cut(data, cuts)
        const r = recorder()
        for (const chunk of chunks) r.reader.push(chunk)
        expect(r.copies).toEqual(frames.map((f) => Buffer.from(f)))
        expect(r.reader.partial).toBe(false)
        expect(r.oversize).toEqual([])

        // Where each chunk starts in `data`, and where each frame's body lies.
        const starts: number[] = []
        let position = 0
        for (const chunk of chunks) {
          starts.push(position)
          position += chunk.length
        }
        let offset = 0
        frames.forEach((f, i) => {
          const bodyStart = offset + FRAME_HEADER_BYTES
          offset = bodyStart + f.length
          // The chunk holding the prefix's last byte.
          const c = chunks.findIndex((chunk, k) => starts[k]! <= bodyStart - 1 && bodyStart - 1 < starts[k]! + chunk.length)
          const got = r.frames[i]!
          if (offset <= starts[c]! + chunks[c]!.length) {
            expect(got.buffer).toBe(chunks[c]!.buffer)
            expect(got.byteOffset).toBe(chunks[c]!.byteOffset + bodyStart - starts[c]!)
          } else {
            for (const chunk of chunks) expect(got.buffer).not.toBe(chunk.buffer)
          }
          expect(got.length).toBe(f.length)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('property: a frame over the limit is reported once with its length; only the frames before it come out', () => {
    fc.assert(
      fc.property(framesArb, fc.integer({ min: 0, max: 300 }), cutsArb, (frames, limit, cuts) => {
        const r = recorder(limit)
        for (const chunk of cut(serialise(frames), cuts)) r.reader.push(chunk)
        r.reader.push(own([...header(0), ...header(0)])) // after the oversize frame: ignored
        const bad = frames.findIndex((f) => f.length > limit)
        if (bad === -1) {
          expect(r.copies).toEqual([...frames.map((f) => Buffer.from(f)), Buffer.alloc(0), Buffer.alloc(0)])
          expect(r.oversize).toEqual([])
        } else {
          expect(r.copies).toEqual(frames.slice(0, bad).map((f) => Buffer.from(f)))
          expect(r.oversize).toEqual([[frames[bad]!.length, limit]])
        }
      }),
      { numRuns: 300 },
    )
  })
})
