import { describe, expect, it } from 'vitest'
import { ConsentFreshness } from '../../src/ice/index.js'
import { InvalidArgumentError } from '../../src/errors.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('ConsentFreshness (RFC 7675)', () => {
  it('checks about every interval, randomised 0.8–1.2×, and keeps consent while answered', async () => {
    const times: number[] = []
    let lost = false
    const consent = new ConsentFreshness({
      interval: 20,
      timeout: 100,
      random: () => 0, // the shortest interval: 0.8 × 20 = 16 ms
      check: async () => {
        times.push(performance.now())
        return 1
      },
      onLost: () => {
        lost = true
      },
    })
    consent.start()
    await sleep(250)
    consent.stop()
    expect(lost).toBe(false)
    expect(times.length).toBeGreaterThanOrEqual(8)
    const gaps = times.slice(1).map((t, i) => t - times[i]!)
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(15)
    expect(consent.running).toBe(false)
  })

  it('reports consent lost once, after timeout without a response, and stops', async () => {
    let lost: { sinceLastResponseMs: number }[] = []
    let checks = 0
    const aborted: boolean[] = []
    const consent = new ConsentFreshness({
      interval: 10,
      timeout: 80,
      check: (signal) =>
        new Promise<number>((_resolve, reject) => {
          checks++
          signal.addEventListener('abort', () => {
            aborted.push(true)
            reject(new Error('aborted'))
          })
        }),
      onLost: (info) => lost.push(info),
    })
    const started = performance.now()
    consent.start()
    await sleep(200)
    expect(lost).toHaveLength(1)
    expect(lost[0]!.sinceLastResponseMs).toBeGreaterThanOrEqual(80)
    expect(performance.now() - started).toBeGreaterThan(80)
    expect(consent.lost).toBe(true)
    expect(consent.running).toBe(false)
    expect(checks).toBeGreaterThan(3)
    expect(aborted.length).toBeGreaterThan(0) // outstanding checks were cancelled
    const after = checks
    await sleep(50)
    expect(checks).toBe(after)
    lost = []
  })

  it('validates its options', () => {
    expect(() => new ConsentFreshness({ check: async () => 1, onLost: () => {}, interval: 0 })).toThrow(InvalidArgumentError)
    expect(() => new ConsentFreshness({ check: async () => 1, onLost: () => {}, timeout: -1 })).toThrow(InvalidArgumentError)
    expect(() => new ConsentFreshness({} as never)).toThrow(InvalidArgumentError)
  })
})
