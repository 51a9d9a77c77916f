// The TunnelState contract, run against both implementations: the in-memory one and
// Redis (a real redis-server started for this file on a free loopback port).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryTunnelState } from '../../../src/server/tunnel/memory-tunnel-state.js'
import { RedisTunnelState } from '../../../src/server/tunnel/redis-tunnel-state.js'
import type { TunnelState } from '../../../src/server/tunnel/tunnel-state.js'
import { type RedisProcess, startRedis } from '../beacon/redis.js'

let redis: RedisProcess
let prefixes = 0

beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.stop()
})

// Fake times far from zero, with gaps of minutes: Redis also expires keys on its own
// (relative TTLs), which must never happen within a test.
const T0 = 1_700_000_000_000
const MIN = 60_000

interface Store {
  state: TunnelState
  /** A second handle on the same store (another server of the fleet). */
  other: TunnelState
  close(): Promise<void>
}

const implementations: Array<[string, (now: () => number) => Promise<Store>]> = [
  [
    'MemoryTunnelState',
    async (now) => {
      const state = new MemoryTunnelState(now)
      return { state, other: state, close: () => state.close() }
    },
  ],
  [
    'RedisTunnelState',
    async (now) => {
      const prefix = `test:${++prefixes}:`
      const state = await RedisTunnelState.connect({ url: redis.url, prefix, now })
      const other = await RedisTunnelState.connect({ url: redis.url, prefix, now })
      return {
        state,
        other,
        close: async () => {
          await state.close()
          await other.close()
        },
      }
    },
  ],
]

describe.each(implementations)('TunnelState contract: %s', (_name, open) => {
  async function withStore(test: (store: Store, clock: { now: number }) => Promise<void>): Promise<void> {
    const clock = { now: T0 }
    const store = await open(() => clock.now)
    try {
      await test(store, clock)
    } finally {
      await store.close()
    }
  }

  it('claims names for one device at a time, until they expire', () =>
    withStore(async ({ state, other }, clock) => {
      expect(state.kind).toMatch(/^(memory|redis)$/)
      expect(await state.claimName('a', 'dev1', 's1', null)).toBe(true)
      expect(await other.claimName('a', 'dev2', 's2', null)).toBe(false)
      expect(await other.claimName('a', 'dev1', 's2', T0 + 2 * MIN)).toBe(true)
      expect(await state.getName('a')).toEqual({ name: 'a', device: 'dev1', server: 's2', expiresAt: T0 + 2 * MIN })
      clock.now = T0 + MIN
      expect(await state.claimName('a', 'dev2', 's1', null)).toBe(false)
      clock.now = T0 + 2 * MIN
      expect(await state.getName('a')).toBeUndefined()
      expect(await state.claimName('a', 'dev2', 's1', null)).toBe(true)
      // Release only by the holder, through its server.
      await state.releaseName('a', 'dev1', 's1')
      await state.releaseName('a', 'dev2', 's2')
      expect((await other.getName('a'))?.device).toBe('dev2')
      await other.releaseName('a', 'dev2', 's1')
      expect(await state.getName('a')).toBeUndefined()
      expect(await state.getName('never')).toBeUndefined()
    }))

  it('claims ports per server', () =>
    withStore(async ({ state, other }, clock) => {
      expect(await state.claimPort('s1', 20000, 'dev1', null)).toBe(true)
      expect(await other.claimPort('s1', 20000, 'dev2', null)).toBe(false)
      expect(await other.claimPort('s2', 20000, 'dev2', null)).toBe(true)
      await state.releasePort('s1', 20000, 'dev2')
      expect(await state.claimPort('s1', 20000, 'dev2', null)).toBe(false)
      await state.releasePort('s1', 20000, 'dev1')
      expect(await state.claimPort('s1', 20000, 'dev2', T0 + MIN)).toBe(true)
      expect(await state.claimPort('s1', 20000, 'dev3', null)).toBe(false)
      clock.now = T0 + MIN
      expect(await state.claimPort('s1', 20000, 'dev3', null)).toBe(true)
    }))

  it('keeps device records, replaced by put, deleted only through their server', () =>
    withStore(async ({ state, other }, clock) => {
      const record = { device: 'dev1', server: 's1', name: 'a', ports: [{ local: 22, public: 20001 }], http: 22, expiresAt: T0 + 2 * MIN }
      await state.putDevice(record)
      const read = await other.getDevice('dev1')
      expect(read).toEqual(record)
      read!.ports[0]!.public = 1
      expect((await state.getDevice('dev1'))!.ports[0]!.public).toBe(20001)
      await other.deleteDevice('dev1', 's2')
      expect(await state.getDevice('dev1')).toBeDefined()
      await other.putDevice({ ...record, server: 's2', ports: [], http: 0, expiresAt: null })
      expect(await state.getDevice('dev1')).toEqual({ ...record, server: 's2', ports: [], http: 0, expiresAt: null })
      await state.deleteDevice('dev1', 's1')
      expect(await state.getDevice('dev1')).toBeDefined()
      await state.deleteDevice('dev1', 's2')
      expect(await state.getDevice('dev1')).toBeUndefined()
      await state.putDevice(record)
      clock.now = T0 + 2 * MIN
      expect(await state.getDevice('dev1')).toBeUndefined()
      expect(await state.getDevice('nobody')).toBeUndefined()
    }))

  it('lists live servers only', () =>
    withStore(async ({ state, other }, clock) => {
      await state.registerServer({ id: 'a', url: 'ws://a/', devices: 1, maxDevices: 10, expiresAt: T0 + 2 * MIN, http: 'a:8080' })
      await other.registerServer({ id: 'b', url: 'ws://b/', devices: 0, maxDevices: 10, expiresAt: T0 + MIN })
      const sorted = (await other.listServers()).sort((x, y) => x.id.localeCompare(y.id))
      expect(sorted).toEqual([
        { id: 'a', url: 'ws://a/', devices: 1, maxDevices: 10, expiresAt: T0 + 2 * MIN, http: 'a:8080' },
        { id: 'b', url: 'ws://b/', devices: 0, maxDevices: 10, expiresAt: T0 + MIN },
      ])
      // A refresh replaces the record.
      await state.registerServer({ id: 'a', url: 'ws://a/', devices: 5, maxDevices: 10, expiresAt: T0 + 3 * MIN })
      clock.now = T0 + MIN
      expect(await state.listServers()).toEqual([{ id: 'a', url: 'ws://a/', devices: 5, maxDevices: 10, expiresAt: T0 + 3 * MIN }])
      await other.unregisterServer('a')
      expect(await state.listServers()).toEqual([])
    }))

  it('frees the holdings without expiry of a server whose registration expired', () =>
    withStore(async ({ state, other }, clock) => {
      await state.registerServer({ id: 's1', url: 'ws://s1/', devices: 1, maxDevices: 10, expiresAt: T0 + MIN })
      await other.registerServer({ id: 's2', url: 'ws://s2/', devices: 0, maxDevices: 10, expiresAt: T0 + 10 * MIN })
      expect(await state.claimName('online', 'dev1', 's1', null)).toBe(true)
      expect(await state.claimName('retained', 'dev1', 's1', T0 + 5 * MIN)).toBe(true)
      expect(await state.claimPort('s1', 20000, 'dev1', null)).toBe(true)
      await state.putDevice({ device: 'dev1', server: 's1', name: 'online', ports: [{ local: 80, public: 20000 }], http: 80, expiresAt: null })
      // A device that moved to s2 is not freed with s1.
      expect(await state.claimName('moved', 'dev9', 's1', null)).toBe(true)
      expect(await other.claimName('moved', 'dev9', 's2', null)).toBe(true)
      // s1 stops refreshing: alive until its registration expires…
      clock.now = T0 + MIN - 1
      expect(await other.claimName('online', 'dev2', 's2', null)).toBe(false)
      expect(await other.claimPort('s1', 20000, 'dev2', null)).toBe(false)
      clock.now = T0 + MIN
      // …then its online holdings are free, its retained ones keep their time.
      expect(await other.getName('online')).toBeUndefined()
      expect(await other.getDevice('dev1')).toBeUndefined()
      expect(await other.claimPort('s1', 20000, 'dev2', null)).toBe(true)
      expect(await other.claimName('online', 'dev2', 's2', null)).toBe(true)
      expect((await other.getName('retained'))?.device).toBe('dev1')
      expect((await other.listServers()).map((s) => s.id)).toEqual(['s2'])
      expect(await other.getName('moved')).toMatchObject({ device: 'dev9', server: 's2' })
    }))

  it('frees the holdings without expiry of a server that unregisters, and keeps those of an unregistered one', () =>
    withStore(async ({ state, other }, clock) => {
      await state.registerServer({ id: 's1', url: 'ws://s1/', devices: 1, maxDevices: 10, expiresAt: T0 + MIN })
      expect(await state.claimName('a', 'dev1', 's1', null)).toBe(true)
      expect(await state.claimName('b', 'dev1', 's1', T0 + 5 * MIN)).toBe(true)
      expect(await state.claimPort('s1', 20001, 'dev1', null)).toBe(true)
      // s9 never registered: its holdings last until released.
      expect(await state.claimName('c', 'dev3', 's9', null)).toBe(true)
      await state.unregisterServer('s1')
      expect(await other.getName('a')).toBeUndefined()
      expect(await other.claimPort('s1', 20001, 'dev2', null)).toBe(true)
      expect((await other.getName('b'))?.device).toBe('dev1')
      clock.now = T0 + 4 * MIN
      expect((await other.getName('c'))?.device).toBe('dev3')
    }))

  it('lets exactly one of many racing devices claim a name', () =>
    withStore(async ({ state, other }) => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? state : other).claimName('race', `dev${i}`, `s${i % 2}`, null)))
      expect(results.filter(Boolean)).toHaveLength(1)
      const winner = results.indexOf(true)
      expect((await state.getName('race'))?.device).toBe(`dev${winner}`)
    }))

  it('shares one 32-byte fleet key', () =>
    withStore(async ({ state, other }) => {
      const [a, b] = await Promise.all([state.fleetKey(), other.fleetKey()])
      expect(a.byteLength).toBe(32)
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
      expect(Buffer.from(await state.fleetKey()).equals(Buffer.from(a))).toBe(true)
    }))
})

describe('RedisTunnelState.connect', () => {
  it('checks its options at once and fails for an unreachable Redis', async () => {
    await expect(RedisTunnelState.connect({ url: 'http://x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(RedisTunnelState.connect({ url: redis.url, prefix: 'a b' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(RedisTunnelState.connect({ url: redis.url, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    const dead = await startRedis()
    await dead.stop()
    await expect(RedisTunnelState.connect({ url: dead.url, connectTimeout: 1_000 })).rejects.toThrow()
  })

  it('keeps fleets with different prefixes apart', async () => {
    const a = await RedisTunnelState.connect({ url: redis.url, prefix: 'fleet-a:' })
    const b = await RedisTunnelState.connect({ url: redis.url, prefix: 'fleet-b:' })
    try {
      expect(await a.claimName('x', 'dev1', 's1', null)).toBe(true)
      expect(await b.claimName('x', 'dev2', 's1', null)).toBe(true)
      expect((await a.getName('x'))?.device).toBe('dev1')
    } finally {
      await a.close()
      await b.close()
    }
  })
})
