import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { classifyDatagram } from '../../src/transport/packet-demux.js'

/** A well-formed STUN header (type, attribute bytes) as the classifier expects it. */
function stun(type: number, body: Uint8Array, cookie = 0x2112a442): Buffer {
  const buf = Buffer.alloc(20 + body.length)
  buf.writeUInt16BE(type, 0)
  buf.writeUInt16BE(body.length, 2)
  buf.writeUInt32BE(cookie, 4)
  buf.fill(7, 8, 20) // transaction id
  Buffer.from(body).copy(buf, 20)
  return buf
}

function channelData(channel: number, payload: Uint8Array, padding = 0): Buffer {
  const buf = Buffer.alloc(4 + payload.length + padding)
  buf.writeUInt16BE(channel, 0)
  buf.writeUInt16BE(payload.length, 2)
  Buffer.from(payload).copy(buf, 4)
  return buf
}

const bodyMultipleOf4 = fc.integer({ min: 0, max: 256 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 }))

describe('classifyDatagram', () => {
  it('recognises a real Binding request (RFC 5769 §2.1 sample header)', () => {
    // Binding request with no attributes: type 0x0001, length 0, cookie, transaction id.
    const msg = Buffer.from('000100002112a442b7e7a701bc34d686fa87dfae', 'hex')
    expect(classifyDatagram(msg)).toBe('stun')
  })

  it('recognises ChannelData with and without padding', () => {
    expect(classifyDatagram(Buffer.from('4000000161', 'hex'))).toBe('channel-data')
    expect(classifyDatagram(Buffer.from('4ffe000161000000', 'hex'))).toBe('channel-data')
    expect(classifyDatagram(Buffer.from('40000000', 'hex'))).toBe('channel-data')
  })

  it('rejects truncated, mis-sized and foreign datagrams', () => {
    expect(classifyDatagram(new Uint8Array(0))).toBe('unknown')
    expect(classifyDatagram(Buffer.from('0001000021', 'hex'))).toBe('unknown') // short header
    expect(classifyDatagram(stun(1, new Uint8Array(8)).subarray(0, 24))).toBe('unknown') // truncated body
    expect(classifyDatagram(stun(1, new Uint8Array(8), 0x2112a443))).toBe('unknown') // wrong cookie
    expect(classifyDatagram(stun(1, new Uint8Array(6)))).toBe('unknown') // length not a multiple of 4
    expect(classifyDatagram(Buffer.concat([stun(1, new Uint8Array(4)), Buffer.alloc(4)]))).toBe('unknown') // trailing bytes
    expect(classifyDatagram(Buffer.from('400000056162', 'hex'))).toBe('unknown') // ChannelData too short
    expect(classifyDatagram(Buffer.from('400000016100000000', 'hex'))).toBe('unknown') // more than padding follows
    expect(classifyDatagram(Buffer.from('5000000161', 'hex'))).toBe('unknown') // channel 0x5000 is out of range
    expect(classifyDatagram(Buffer.from('ff01000000000001', 'hex'))).toBe('unknown') // udx-looking header
  })

  it('is total: never throws and returns one of the three kinds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2100 }), (buf) => {
        expect(['stun', 'channel-data', 'unknown']).toContain(classifyDatagram(buf))
      }),
      { numRuns: 2000 },
    )
  })

  it('classifies every well-formed STUN message as stun', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fff }), bodyMultipleOf4, (type, body) => {
        expect(classifyDatagram(stun(type, body))).toBe('stun')
      }),
    )
  })

  it('never classifies a datagram whose top two bits are set, or whose cookie is wrong, as stun', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        bodyMultipleOf4,
        fc.integer({ min: 0, max: 0xffffffff }),
        (type, body, cookie) => {
          fc.pre(type >= 0x4000 || cookie !== 0x2112a442)
          expect(classifyDatagram(stun(type, body, cookie))).not.toBe('stun')
        },
      ),
    )
  })

  it('classifies every well-formed ChannelData message as channel-data, however padded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x4000, max: 0x4fff }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.boolean(),
        (channel, payload, padded) => {
          const padding = padded ? (4 - (payload.length % 4)) % 4 : 0
          expect(classifyDatagram(channelData(channel, payload, padding))).toBe('channel-data')
        },
      ),
    )
  })

  it('rejects ChannelData cut short or with more than padding after it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x4000, max: 0x4fff }),
        fc.uint8Array({ minLength: 1, maxLength: 1500 }),
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        (channel, payload, delta, cut) => {
          const full = channelData(channel, payload)
          if (cut) {
            const short = full.subarray(0, Math.max(0, full.length - Math.min(delta, payload.length)))
            expect(classifyDatagram(short)).toBe('unknown')
          } else {
            const padTo = 4 + payload.length + ((4 - (payload.length % 4)) % 4)
            const long = Buffer.concat([full, Buffer.alloc(padTo - full.length + delta)])
            expect(classifyDatagram(long)).toBe('unknown')
          }
        },
      ),
    )
  })

  it('agrees with an independent reference implementation on random and near-valid input', () => {
    const reference = (b: Uint8Array): string => {
      const buf = Buffer.from(b)
      if (buf.length >= 20 && buf[0]! >> 6 === 0 && buf.readUInt32BE(4) === 0x2112a442) {
        const len = buf.readUInt16BE(2)
        return len % 4 === 0 && buf.length === 20 + len ? 'stun' : 'unknown'
      }
      if (buf.length >= 4 && buf[0]! >= 0x40 && buf[0]! <= 0x4f) {
        const len = buf.readUInt16BE(2)
        return buf.length >= 4 + len && buf.length <= 4 + Math.ceil(len / 4) * 4 ? 'channel-data' : 'unknown'
      }
      return 'unknown'
    }
    const nearValid = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 64 })).map(([t, body]) => stun(t, body)),
      fc
        .tuple(fc.integer({ min: 0x3f00, max: 0x50ff }), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 5 }))
        .map(([c, p, pad]) => channelData(c, p, pad)),
    )
    fc.assert(
      fc.property(nearValid, (buf) => {
        expect(classifyDatagram(buf)).toBe(reference(buf))
      }),
      { numRuns: 3000 },
    )
  })
})
