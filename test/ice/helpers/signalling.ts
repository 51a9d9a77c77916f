/** Wires two ICE agents' signalling in-process, through the text codec, as the Beacon would. */
import { END_OF_CANDIDATES, formatCandidate, isEndOfCandidates, type IceAgent, type IceCandidate } from '../../../src/ice/index.js'

export interface WireOptions {
  /** Drop candidates from `from` for which this returns false. */
  filter?: (candidate: IceCandidate, from: 'a' | 'b') => boolean
  /** Extra delay (ms) for signals from b to a / a to b. */
  delayToA?: number
  delayToB?: number
  /** Do not give the credentials (the test sets them itself). */
  skipCredentials?: boolean
}

export function wireAgents(a: IceAgent, b: IceAgent, options: WireOptions = {}): () => void {
  const timers = new Set<ReturnType<typeof setTimeout>>()
  const later = (ms: number | undefined, fn: () => void): void => {
    if (ms === undefined || ms <= 0) return fn()
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
  }
  const deliver = (to: IceAgent, line: string, delay: number | undefined): void =>
    later(delay, () => {
      if (to.state === 'closed') return
      if (isEndOfCandidates(line)) to.endOfRemoteCandidates()
      else to.addRemoteCandidate(line)
    })
  a.on('candidate', (c) => {
    if (options.filter?.(c, 'a') === false) return
    deliver(b, formatCandidate(c), options.delayToB)
  })
  b.on('candidate', (c) => {
    if (options.filter?.(c, 'b') === false) return
    deliver(a, formatCandidate(c), options.delayToA)
  })
  a.on('end-of-candidates', () => deliver(b, END_OF_CANDIDATES, options.delayToB))
  b.on('end-of-candidates', () => deliver(a, END_OF_CANDIDATES, options.delayToA))
  if (options.skipCredentials !== true) {
    a.setRemoteCredentials(b.localCredentials)
    b.setRemoteCredentials(a.localCredentials)
  }
  return () => {
    for (const t of timers) clearTimeout(t)
    timers.clear()
  }
}
