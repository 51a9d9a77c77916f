// The race of TunnelPath.connect() on its own: a real tunnel server and a real listening
// peer on loopback, a scripted UDP attempt and a scripted UDP reachability, so that each
// rule of the orchestration (when the tunnel starts, who wins, what the loser gets, which
// error comes out) is checked exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConnectFailedError, PeerIdentityMismatchError } from '../../src/errors.js'
import { createIdentity } from '../../src/identity/index.js'
import { type AttemptEvent, type Peer, type PeerConnection, createPeer } from '../../src/peer/index.js'
import type { ReflexiveCache, UdpReachability } from '../../src/peer/reflexive-cache.js'
import { TunnelPath, type UdpAttemptRunner } from '../../src/peer/tunnel-path.js'
import type { TunnelServer } from '../../src/server/tunnel/tunnel-server.js'
import { until } from '../beacon/helpers.js'
import { TOKEN, startTunnel, urlOf } from '../server/tunnel/helpers.js'

/** A scripted ReflexiveCache: its UDP reachability, and a way to change it. */
function fakeReflexive(initial: UdpReachability): { cache: ReflexiveCache; set: (state: UdpReachability) => void } {
  let state = initial
  const listeners = new Set<(state: UdpReachability) => void>()
  const cache = {
    get udp() {
      return state
    },
    refresh() {},
    onUdp(listener: (s: UdpReachability) => void) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  } as unknown as ReflexiveCache
  return {
    cache,
    set(next) {
      state = next
      for (const listener of [...listeners]) listener(next)
    },
  }
}

/** A stand-in for the UDP attempt's connection (the race only hands it over or destroys it). */
function fakeConnection(): PeerConnection & { destroyedByRace: boolean } {
  const connection = { destroyedByRace: false, path: 'direct', destroy() {
    connection.destroyedByRace = true
  } }
  return connection as unknown as PeerConnection & { destroyedByRace: boolean }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('TunnelPath race', () => {
  let server: TunnelServer
  let listener: Peer
  const incoming: PeerConnection[] = []

  beforeAll(async () => {
    server = await startTunnel()
    listener = await createPeer({ host: '127.0.0.1', tunnels: [urlOf(server)], tunnel: { token: TOKEN } })
    listener.on('connection', (connection) => {
      connection.on('error', () => {})
      incoming.push(connection)
    })
    await listener.listen()
  })

  afterAll(async () => {
    await listener?.close()
    await server?.close()
  })

  function dialer(udp: UdpReachability, fallbackDelay = 5_000, onEmit: (event: AttemptEvent) => void = () => {}): { path: TunnelPath; events: AttemptEvent[]; reflexive: ReturnType<typeof fakeReflexive> } {
    const events: AttemptEvent[] = []
    const reflexive = fakeReflexive(udp)
    const path = new TunnelPath({
      identity: createIdentity(),
      options: { tunnels: [urlOf(server)], tunnel: { fallbackDelay } },
      handshakeTimeout: 5_000,
      reflexive: reflexive.cache,
      emit: (event) => {
        events.push(event)
        onEmit(event)
      },
      onConnection: () => {},
      onError: () => {},
    })
    return { path, events, reflexive }
  }

  it('UDP known blocked: the tunnel starts at once and wins; the UDP attempt is aborted', async () => {
    const { path, events } = dialer('blocked')
    let udpSignal: AbortSignal | undefined
    const udp: UdpAttemptRunner = (signal) => {
      udpSignal = signal
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    }
    const conn = await path.connect(listener.peerId, { udp, timeout: 10_000, signal: undefined })
    expect(conn.path).toBe('tunnel')
    expect(events.find((e) => e.step === 'tunnel')).toMatchObject({ detail: { reason: 'udp-blocked' } })
    expect(events.find((e) => e.step === 'tunnel')!.ms).toBeLessThan(20)
    expect(udpSignal?.aborted).toBe(true)
    conn.destroy()
  })

  it('UDP known blocked but TURN may relay: the tunnel waits for the fallback delay', async () => {
    const { path, events } = dialer('blocked', 300)
    const udp: UdpAttemptRunner = (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    const conn = await path.connect(listener.peerId, { udp, relayed: true, timeout: 10_000, signal: undefined })
    expect(conn.path).toBe('tunnel')
    const start = events.find((e) => e.step === 'tunnel')
    expect(start).toMatchObject({ detail: { reason: 'deadline' } })
    expect(start!.ms).toBeGreaterThanOrEqual(290)
    conn.destroy()
  })

  it('UDP found blocked during the attempt: the tunnel starts then', async () => {
    const { path, events, reflexive } = dialer('unknown')
    const udp: UdpAttemptRunner = (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    setTimeout(() => reflexive.set('blocked'), 100)
    const conn = await path.connect(listener.peerId, { udp, timeout: 10_000, signal: undefined })
    const start = events.find((e) => e.step === 'tunnel')
    expect(start).toMatchObject({ detail: { reason: 'udp-blocked' } })
    expect(start!.ms).toBeGreaterThanOrEqual(90)
    expect(start!.ms).toBeLessThan(1_000)
    conn.destroy()
  })

  it('a working pair stops the deadline: the tunnel is never started', async () => {
    const { path, events } = dialer('unknown', 100)
    const direct = fakeConnection()
    const udp: UdpAttemptRunner = async (_signal, onEvent) => {
      onEvent({ peerId: listener.peerId, initiator: true, step: 'selected', ms: 50 })
      await sleep(400)
      return direct
    }
    const before = server.stats.connections
    await expect(path.connect(listener.peerId, { udp, timeout: 10_000, signal: undefined })).resolves.toBe(direct)
    expect(events.some((e) => e.step === 'tunnel')).toBe(false)
    expect(server.stats.connections).toBe(before)
  })

  it('UDP winning while the tunnel is joining: the tunnel connection is closed before the listener sees it', async () => {
    let tunnelStarted = (): void => {}
    const started = new Promise<void>((resolve) => (tunnelStarted = resolve))
    const { path } = dialer('blocked', 5_000, (event) => event.step === 'tunnel' && tunnelStarted())
    const direct = fakeConnection()
    const before = incoming.length
    const joined = server.stats.connections
    const udp: UdpAttemptRunner = async () => {
      // The tunnel started at once; win while its WebSocket join is under way.
      await started
      return direct
    }
    await expect(path.connect(listener.peerId, { udp, timeout: 10_000, signal: undefined })).resolves.toBe(direct)
    expect(direct.destroyedByRace).toBe(false)
    // Whatever the tunnel got to, it is released and never became a connection.
    await until(() => server.stats.activeConnections === 0 && server.stats.pendingConnections === 0, 5_000, 'the join to go')
    await sleep(200)
    expect(incoming.length).toBe(before)
    expect(server.stats.connections - joined).toBeLessThanOrEqual(1)
  })

  it('every path failing: the identity mismatch wins over the rest; otherwise one ConnectFailedError naming both', async () => {
    const nobody = createIdentity().peerId
    const mismatch = new PeerIdentityMismatchError(nobody, listener.peerId)
    const { path } = dialer('unknown', 50)
    const failingWith =
      (error: Error): UdpAttemptRunner =>
      async () => {
        await sleep(100)
        throw error
      }
    await expect(path.connect(nobody, { udp: failingWith(mismatch), timeout: 10_000, signal: undefined })).rejects.toBe(mismatch)
    const error = await path.connect(nobody, { udp: failingWith(new ConnectFailedError('no pair')), timeout: 10_000, signal: undefined }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConnectFailedError)
    expect((error as Error).message).toMatch(/UDP: no pair; tunnel: .*/)
    expect((error as Error).cause).toBeInstanceOf(AggregateError)
  })

  it('the timeout and the signal end the race (and its tunnel attempt) with typed errors', async () => {
    const hang: UdpAttemptRunner = (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
    const { path } = dialer('unknown')
    await expect(path.connect(listener.peerId, { udp: hang, timeout: 200, signal: undefined })).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    await expect(path.connect(listener.peerId, { udp: hang, timeout: 10_000, signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await expect(path.connect(listener.peerId, { udp: hang, timeout: 10_000, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await path.close()
  })
})
