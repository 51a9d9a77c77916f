// RFC 6455 framing of transfer sockets (src/tunnel/websocket-frame.ts): the copy-free
// reader against frames built here and by hand, split at every possible point, and the
// 32-bit masking against the byte-by-byte rule of RFC 6455 §5.3.
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type FrameReadError, OPCODE, WebSocketFrameReader, frameHeader, maskCopy, unmaskInPlace } from '../../src/tunnel/websocket-frame.js'

interface Seen {
  data: Buffer[]
  text: string[]
  control: Array<[number, string]>
  errors: FrameReadError[]
}

function reader(expectMasked: boolean, maxFrameBytes = 1 << 20): { reader: WebSocketFrameReader; seen: Seen } {
  const seen: Seen = { data: [], text: [], control: [], errors: [] }
  const made = new WebSocketFrameReader(
    { expectMasked, maxFrameBytes, maxTextBytes: 125 },
    {
      // The views are of the pushed chunks: copy them to keep them.
      data: (bytes) => seen.data.push(Buffer.from(bytes)),
      text: (message) => seen.text.push(message.toString('latin1')),
      control: (opcode, payload) => seen.control.push([opcode, payload.toString('latin1')]),
      error: (error) => seen.errors.push(error),
    },
  )
  return { reader: made, seen }
}

/** A frame as a client sends it (masked with `mask`) or a server (`undefined`). */
function frame(opcode: number, payload: Buffer, mask: number | undefined, fin = true): Buffer {
  const header = frameHeader(opcode, payload.length, mask)
  if (!fin) header[0] = header[0]! & 0x7f
  return mask === undefined || mask === 0 ? Buffer.concat([header, payload]) : maskCopy(header, payload, mask)
}

/** RFC 6455 §5.3, byte by byte. */
function referenceMask(bytes: Buffer, key: Buffer): Buffer {
  return Buffer.from(bytes.map((byte, i) => byte ^ key[i % 4]!))
}

describe('masking', () => {
  it('equals the byte-by-byte rule at every length, alignment and key offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffffffff }), (data, offset, shift, mask) => {
        const key = Buffer.alloc(4)
        key.writeUInt32LE(mask)
        // `shift` bytes in: views at every alignment of the underlying memory.
        const memory = Buffer.alloc(data.length + 8)
        const view = memory.subarray(shift, shift + data.length)
        view.set(data)
        unmaskInPlace(view, mask, offset)
        const rotated = Buffer.from([key[offset % 4]!, key[(offset + 1) % 4]!, key[(offset + 2) % 4]!, key[(offset + 3) % 4]!])
        expect(Buffer.from(view).equals(referenceMask(Buffer.from(data), rotated))).toBe(true)
      }),
      { numRuns: 500 },
    )
  })

  it('frameHeader writes the RFC 6455 §5.2 length forms and the key', () => {
    expect([...frameHeader(OPCODE.binary, 125, undefined)]).toEqual([0x82, 125])
    expect([...frameHeader(OPCODE.binary, 126, undefined)]).toEqual([0x82, 126, 0, 126])
    expect([...frameHeader(OPCODE.binary, 65535, undefined)]).toEqual([0x82, 126, 0xff, 0xff])
    expect([...frameHeader(OPCODE.binary, 65536, undefined)]).toEqual([0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])
    expect([...frameHeader(OPCODE.text, 3, 0x04030201)]).toEqual([0x81, 0x83, 1, 2, 3, 4])
    expect([...frameHeader(OPCODE.close, 2, 0)]).toEqual([0x88, 0x82, 0, 0, 0, 0])
  })
})

describe('WebSocketFrameReader', () => {
  it('reassembles any sequence of frames, split anywhere, without losing or reordering a byte', () => {
    // Lengths across the three RFC 6455 length forms (≤ 125, 16-bit, 64-bit), patterned bytes.
    const payload = (max: number) =>
      fc.tuple(fc.oneof(fc.integer({ min: 0, max: Math.min(130, max) }), fc.integer({ min: 0, max })), fc.integer({ min: 0, max: 255 })).map(([length, seed]) =>
        Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff)),
      )
    const anyFrame = fc.oneof(
      fc.record({ kind: fc.constant('binary' as const), payload: payload(70_000) }),
      fc.record({ kind: fc.constant('ping' as const), payload: payload(125) }),
    )
    fc.assert(
      fc.property(
        fc.array(anyFrame, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 70_000 })), { minLength: 1, maxLength: 20 }),
        (frames, masked, cuts) => {
          const wire = Buffer.concat([
            ...frames.map(({ kind, payload }) => frame(kind === 'binary' ? OPCODE.binary : OPCODE.ping, payload, masked ? randomBytes(4).readUInt32LE(0) : undefined)),
            frame(OPCODE.text, Buffer.from('end'), masked ? 0 : undefined),
          ])
          const { reader: r, seen } = reader(masked)
          let at = 0
          for (let i = 0; at < wire.length; i++) {
            const size = cuts[i % cuts.length]!
            r.push(Buffer.from(wire.subarray(at, at + size)))
            at += size
          }
          expect(seen.errors).toEqual([])
          expect(Buffer.concat(seen.data).equals(Buffer.concat(frames.filter((f) => f.kind === 'binary').map((f) => f.payload)))).toBe(true)
          expect(seen.control.map(([opcode]) => opcode)).toEqual(frames.filter((f) => f.kind === 'ping').map(() => OPCODE.ping))
          expect(seen.text).toEqual(['end'])
        },
      ),
      { numRuns: 150 },
    )
  })

  it('hands out views of the pushed chunk, not copies', () => {
    const chunk = frame(OPCODE.binary, Buffer.from('abcdef'), undefined)
    const views: Buffer[] = []
    const r = new WebSocketFrameReader({ expectMasked: false, maxFrameBytes: 100, maxTextBytes: 125 }, { data: (b) => views.push(b), text() {}, control() {}, error() {} })
    r.push(chunk)
    expect(views).toHaveLength(1)
    expect(views[0]!.buffer).toBe(chunk.buffer)
    expect(views[0]!.toString()).toBe('abcdef')
  })

  it('accepts a fragmented binary message with a control frame in between', () => {
    const { reader: r, seen } = reader(false)
    r.push(Buffer.concat([frame(OPCODE.binary, Buffer.from('ab'), undefined, false), frame(OPCODE.pong, Buffer.from('x'), undefined), frame(OPCODE.continuation, Buffer.from('cd'), undefined)]))
    expect(Buffer.concat(seen.data).toString()).toBe('abcd')
    expect(seen.control).toEqual([[OPCODE.pong, 'x']])
    expect(seen.errors).toEqual([])
  })

  it.each([
    ['an unmasked frame at the server', true, frame(OPCODE.binary, Buffer.from('x'), undefined), 1002],
    ['a masked frame at the client', false, frame(OPCODE.binary, Buffer.from('x'), 7), 1002],
    ['RSV bits', false, Buffer.from([0xc2, 0x00]), 1002],
    ['an unknown opcode', false, Buffer.from([0x83, 0x00]), 1003],
    ['an unknown control opcode', false, Buffer.from([0x8b, 0x00]), 1002],
    ['a fragmented control frame', false, Buffer.from([0x09, 0x00]), 1002],
    ['a control frame over 125 bytes', false, frame(OPCODE.ping, Buffer.alloc(126), undefined), 1002],
    ['a continuation without a message', false, frame(OPCODE.continuation, Buffer.from('x'), undefined), 1002],
    ['a new message inside a fragmented one', false, Buffer.concat([frame(OPCODE.binary, Buffer.from('a'), undefined, false), frame(OPCODE.binary, Buffer.from('b'), undefined)]), 1002],
    ['a text message over the limit', false, frame(OPCODE.text, Buffer.alloc(126), undefined), 1009],
    ['a fragmented text message', false, frame(OPCODE.text, Buffer.from('en'), undefined, false), 1009],
    ['a data frame over maxFrameBytes', false, frameHeader(OPCODE.binary, 1025, undefined), 1009],
    ['a 64-bit length beyond 2^53', false, Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), 1009],
  ])('refuses %s, and reads nothing more', (_what, expectMasked, wire, code) => {
    const { reader: r, seen } = reader(expectMasked, 1024)
    r.push(wire)
    r.push(frame(OPCODE.binary, Buffer.from('after'), expectMasked ? 1 : undefined))
    expect(seen.errors).toHaveLength(1)
    expect(seen.errors[0]!.code).toBe(code)
    expect(r.failed).toBe(true)
    expect(seen.data.map(String)).not.toContain('after')
  })
})
