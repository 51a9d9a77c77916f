// The in-memory tunnel state (atomic claims, expiry, the fleet registry) and allow-ports lists.
import { describe, expect, it } from 'vitest'
import { MemoryTunnelState } from '../../../src/server/tunnel/memory-tunnel-state.js'
import { PortRange } from '../../../src/server/tunnel/port-range.js'
import { TokenList } from '../../../src/server/tunnel/token-list.js'

describe('MemoryTunnelState', () => {
  it('claims names for one device at a time, until they expire', async () => {
    let now = 1_000
    const state = new MemoryTunnelState(() => now)
    expect(await state.claimName('a', 'dev1', 's1', null)).toBe(true)
    expect(await state.claimName('a', 'dev2', 's1', null)).toBe(false)
    expect(await state.claimName('a', 'dev1', 's2', 2_000)).toBe(true)
    expect(await state.getName('a')).toEqual({ name: 'a', device: 'dev1', server: 's2', expiresAt: 2_000 })
    now = 2_000
    expect(await state.getName('a')).toBeUndefined()
    expect(await state.claimName('a', 'dev2', 's1', null)).toBe(true)
    // Release only by the holder, through its server.
    await state.releaseName('a', 'dev1', 's1')
    await state.releaseName('a', 'dev2', 's2')
    expect((await state.getName('a'))?.device).toBe('dev2')
    await state.releaseName('a', 'dev2', 's1')
    expect(await state.getName('a')).toBeUndefined()
  })

  it('claims ports per server, and keeps device records', async () => {
    let now = 0
    const state = new MemoryTunnelState(() => now)
    expect(await state.claimPort('s1', 20000, 'dev1', null)).toBe(true)
    expect(await state.claimPort('s1', 20000, 'dev2', null)).toBe(false)
    expect(await state.claimPort('s2', 20000, 'dev2', null)).toBe(true)
    await state.releasePort('s1', 20000, 'dev2')
    expect(await state.claimPort('s1', 20000, 'dev2', null)).toBe(false)
    await state.releasePort('s1', 20000, 'dev1')
    expect(await state.claimPort('s1', 20000, 'dev2', 10)).toBe(true)
    now = 10
    expect(await state.claimPort('s1', 20000, 'dev3', null)).toBe(true)

    const record = { device: 'dev1', server: 's1', name: 'a', ports: [{ local: 22, public: 20001 }], http: 22, expiresAt: 20 }
    await state.putDevice(record)
    const read = await state.getDevice('dev1')
    expect(read).toEqual(record)
    read!.ports[0]!.public = 1
    expect((await state.getDevice('dev1'))!.ports[0]!.public).toBe(20001)
    await state.deleteDevice('dev1', 's2')
    expect(await state.getDevice('dev1')).toBeDefined()
    now = 20
    expect(await state.getDevice('dev1')).toBeUndefined()
  })

  it('lists live servers only', async () => {
    let now = 0
    const state = new MemoryTunnelState(() => now)
    await state.registerServer({ id: 'a', url: 'ws://a/', devices: 1, maxDevices: 10, expiresAt: 100 })
    await state.registerServer({ id: 'b', url: 'ws://b/', devices: 0, maxDevices: 10, expiresAt: 50 })
    expect((await state.listServers()).map((s) => s.id).sort()).toEqual(['a', 'b'])
    now = 60
    expect((await state.listServers()).map((s) => s.id)).toEqual(['a'])
    await state.unregisterServer('a')
    expect(await state.listServers()).toEqual([])
  })
})

describe('PortRange', () => {
  it('parses, merges and enumerates allow-ports lists', () => {
    const range = PortRange.parse(' 20005-20007 ,20000,20001-20002, 20003')
    expect(range.toString()).toBe('20000-20003,20005-20007')
    expect(range.size).toBe(7)
    expect(range.has(20004)).toBe(false)
    expect(range.has(20006)).toBe(true)
    expect([...range.candidates(() => 0)]).toEqual([20000, 20001, 20002, 20003, 20005, 20006, 20007])
    expect([...range.candidates(() => 0.99)].slice(0, 2)).toEqual([20007, 20000])
  })

  it.each(['', 'x', '0', '70000', '5-4', '1-2-3', '1,,2'])('refuses %j', (text) => {
    expect(() => PortRange.parse(text)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })
})

describe('TokenList', () => {
  it('matches exactly the configured tokens', () => {
    const tokens = new TokenList(['first-token-123', 'second-token-456'])
    expect(tokens.matches('second-token-456')).toBe(true)
    expect(tokens.matches('second-token-45')).toBe(false)
    expect(tokens.matches('')).toBe(false)
    expect(new TokenList([]).matches('anything')).toBe(false)
  })
})
