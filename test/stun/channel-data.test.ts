import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { InvalidArgumentError, StunMalformedError } from '../../src/errors.js'
import {
  channelDataFrameLength,
  createStunRequest,
  decodeChannelData,
  encodeChannelData,
  encodeStunMessage,
  isChannelData,
  isStunMessage,
  streamFrameLength,
} from '../../src/stun/index.js'

describe('ChannelData (RFC 8656 §12.4)', () => {
  it('encodes header and data, padding only when asked', () => {
    expect(Buffer.from(encodeChannelData(0x4001, Uint8Array.of(1, 2, 3))).toString('hex')).toBe('40010003010203')
    expect(Buffer.from(encodeChannelData(0x4001, Uint8Array.of(1, 2, 3), { pad: true })).toString('hex')).toBe('4001000301020300')
  })

  it('round-trips over UDP (with or without padding) and TCP (padded)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x4000, max: 0x4fff }), fc.uint8Array({ maxLength: 100 }), (channel, data) => {
        expect(decodeChannelData(encodeChannelData(channel, data))).toEqual({ channel, data })
        expect(decodeChannelData(encodeChannelData(channel, data, { pad: true }))).toEqual({ channel, data })
        const framed = encodeChannelData(channel, data, { pad: true })
        expect(decodeChannelData(framed, { transport: 'tcp' })).toEqual({ channel, data })
        expect(channelDataFrameLength(framed)).toBe(framed.length)
      }),
    )
  })

  it('rejects invalid channel numbers and lengths', () => {
    expect(() => encodeChannelData(0x3fff, new Uint8Array(1))).toThrow(InvalidArgumentError)
    expect(() => encodeChannelData(0x5000, new Uint8Array(1))).toThrow(InvalidArgumentError)
    expect(() => decodeChannelData(Uint8Array.of(0x50, 0, 0, 0))).toThrow(StunMalformedError) // reserved 0x5000
    expect(() => decodeChannelData(Uint8Array.of(0x40, 0, 0, 5, 1, 2))).toThrow(StunMalformedError) // too short
    expect(() => decodeChannelData(Uint8Array.of(0x40, 0, 0, 1, 1, 0, 0, 0, 0))).toThrow(StunMalformedError) // > padding
    expect(() => decodeChannelData(Uint8Array.of(0x40, 0, 0, 1, 1), { transport: 'tcp' })).toThrow(StunMalformedError) // unpadded
    expect(() => decodeChannelData(Uint8Array.of(0x40, 0))).toThrow(StunMalformedError)
  })
})

describe('classification', () => {
  const stun = encodeStunMessage(createStunRequest('binding'))

  it('isStunMessage checks top bits, cookie and length', () => {
    expect(isStunMessage(stun)).toBe(true)
    expect(isStunMessage(stun.subarray(0, 19))).toBe(false)
    const noCookie = stun.slice()
    noCookie[7] = 0
    expect(isStunMessage(noCookie)).toBe(false)
    const topBits = stun.slice()
    topBits[0] = 0x80
    expect(isStunMessage(topBits)).toBe(false)
    expect(isStunMessage(Uint8Array.from([...stun, 0, 0]))).toBe(false)
  })

  it('isChannelData checks the first byte is 0x40–0x4F', () => {
    expect(isChannelData(Uint8Array.of(0x40, 0, 0, 0))).toBe(true)
    expect(isChannelData(Uint8Array.of(0x4f, 0xff, 0, 0))).toBe(true)
    expect(isChannelData(Uint8Array.of(0x50, 0, 0, 0))).toBe(false)
    expect(isChannelData(Uint8Array.of(0x3f, 0, 0, 0))).toBe(false)
    expect(isChannelData(stun)).toBe(false)
  })
})

describe('TCP stream framing', () => {
  it('splits a stream of STUN and ChannelData frames at the right places', () => {
    const a = encodeStunMessage(createStunRequest('binding', [{ type: 'software', value: 'abc' }]))
    const b = encodeChannelData(0x4002, Uint8Array.of(9, 9, 9, 9, 9), { pad: true })
    const c = encodeStunMessage(createStunRequest('refresh'))
    let stream = Uint8Array.from([...a, ...b, ...c])
    const frames: string[] = []
    for (;;) {
      const frame = streamFrameLength(stream)
      if (frame === undefined || frame.length > stream.length) break
      frames.push(`${frame.kind}:${frame.length}`)
      stream = stream.subarray(frame.length)
    }
    expect(frames).toEqual([`stun:${a.length}`, 'channel-data:12', `stun:${c.length}`])
    expect(stream.length).toBe(0)
  })

  it('waits for 4 bytes and rejects garbage', () => {
    expect(streamFrameLength(Uint8Array.of(0, 1, 0))).toBeUndefined()
    expect(() => streamFrameLength(Uint8Array.of(0x80, 0, 0, 0))).toThrow(StunMalformedError)
    expect(() => streamFrameLength(Uint8Array.of(0x00, 1, 0, 3))).toThrow(StunMalformedError)
  })
})
