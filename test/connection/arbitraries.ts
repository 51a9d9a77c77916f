import fc from 'fast-check'
import { MAX_WINDOW, type MuxFrame } from '../../src/connection/mux-frame.js'

const streamId = (max: number): fc.Arbitrary<number> => fc.integer({ min: 1, max })

/** Any well-formed frame; stream ids up to `maxStreamId`, data payloads up to `maxData` bytes. */
export function frameArbitraryWith(maxStreamId = 0xffff_ffff, maxData = 3_000): fc.Arbitrary<MuxFrame> {
  const opaque = fc.uint8Array({ minLength: 8, maxLength: 8 })
  return fc.oneof(
    fc.record({ type: fc.constant('data' as const), streamId: streamId(maxStreamId), payload: fc.uint8Array({ maxLength: maxData }) }),
    fc.record({ type: fc.constant('open' as const), streamId: streamId(maxStreamId), label: fc.string({ unit: 'grapheme', maxLength: 20 }) }),
    fc.record({
      type: fc.constant('window-update' as const),
      streamId: streamId(maxStreamId),
      increment: fc.oneof(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: MAX_WINDOW })),
    }),
    fc.record({ type: fc.constant('close' as const), streamId: streamId(maxStreamId) }),
    fc.record({ type: fc.constant('reset' as const), streamId: streamId(maxStreamId), reason: fc.constantFrom('cancel' as const, 'refused' as const) }),
    fc.record({ type: fc.constantFrom('ping' as const, 'pong' as const), opaque }),
    fc.record({ type: fc.constant('go-away' as const), code: fc.constantFrom('normal' as const, 'protocol-error' as const) }),
  )
}

/** Any well-formed frame. */
export const frameArbitrary = frameArbitraryWith()
