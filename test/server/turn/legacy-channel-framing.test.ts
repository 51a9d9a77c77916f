import { describe, expect, it } from 'vitest'
import { StunMalformedError } from '../../../src/errors.js'
import { channelDataFrameLength, streamFrameLength } from '../../../src/stun/index.js'

describe('ChannelData framing with RFC 5766 channel numbers', () => {
  const frame = Uint8Array.of(0x7a, 0xbc, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0)

  it('is refused by default (RFC 8656 range) and framed with legacyChannelNumbers', () => {
    expect(() => streamFrameLength(frame)).toThrow(StunMalformedError)
    expect(streamFrameLength(frame, { legacyChannelNumbers: true })).toEqual({ kind: 'channel-data', length: 12 })
    expect(channelDataFrameLength(frame, { legacyChannelNumbers: true })).toBe(12)
    expect(() => channelDataFrameLength(Uint8Array.of(0x80, 0, 0, 0), { legacyChannelNumbers: true })).toThrow(StunMalformedError)
  })
})
