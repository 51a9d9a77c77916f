import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { createFrameCounter, remoteFramesUntilHeader } from '../../src/transport/frame-counter.js'

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + payload.length)
  out[0] = payload.length & 255
  out[1] = (payload.length >>> 8) & 255
  out[2] = (payload.length >>> 16) & 255
  out.set(payload, 3)
  return out
}

/** Split `bytes` at the given (sorted, deduplicated) cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
  const parts: Uint8Array[] = []
  let last = 0
  for (const p of points) {
    parts.push(bytes.subarray(last, p))
    last = p
  }
  parts.push(bytes.subarray(last))
  return parts
}

describe('createFrameCounter', () => {
  it('expects message 2 + header on the initiator and messages 1, 3 + header on the responder', () => {
    expect(remoteFramesUntilHeader(true)).toBe(2)
    expect(remoteFramesUntilHeader(false)).toBe(3)
  })

  it('fires exactly once, on the chunk that completes the target frame, however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.nat(),
        (payloads, cuts, pick) => {
          const target = 1 + (pick % payloads.length)
          const frames = payloads.map(frame)
          const targetEnd = frames.slice(0, target).reduce((n, f) => n + f.length, 0)
          const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0) + 5)
          let offset = 0
          for (const f of frames) {
            all.set(f, offset)
            offset += f.length
          }
          let fired = 0
          let firedInChunk: [number, number] | null = null
          const count = createFrameCounter(target, () => {
            fired++
          })
          let consumed = 0
          for (const chunk of split(all, cuts)) {
            count(chunk)
            if (fired === 1 && firedInChunk === null) firedInChunk = [consumed, consumed + chunk.length]
            consumed += chunk.length
          }
          expect(fired).toBe(1)
          // It fired while consuming the chunk that holds the target frame's last byte.
          const [start, end] = firedInChunk!
          expect(start < targetEnd && targetEnd <= end).toBe(true)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('does not fire before the target frame is complete', () => {
    let fired = false
    const count = createFrameCounter(2, () => (fired = true))
    count(frame(new Uint8Array(10)))
    count(frame(new Uint8Array(56)).subarray(0, 58))
    expect(fired).toBe(false)
    count(new Uint8Array([0]))
    expect(fired).toBe(true)
  })
})
