import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../../src/errors.js'
import { resolveTurnServerOptions, type TurnServerOptions } from '../../../src/server/turn/turn-server-options.js'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import { getAttribute, longTermKey } from '../../../src/stun/index.js'
import { randomPortRange } from './coturn-tools.js'
import { TestTurnClient } from './turn-test-client.js'

describe('resolveTurnServerOptions', () => {
  it('applies coturn-like defaults', () => {
    const o = resolveTurnServerOptions({ listeningIps: ['127.0.0.1'] })
    expect(o).toMatchObject({
      listeningPort: 3478,
      tlsPorts: [],
      relayIps: ['127.0.0.1'],
      minPort: 49152,
      maxPort: 65535,
      realm: 'peerlink',
      defaultLifetimeMs: 600_000,
      maxLifetimeMs: 3_600_000,
      permissionLifetimeMs: 300_000,
      channelLifetimeMs: 600_000,
      nonceLifetimeMs: 600_000,
      userQuota: 0,
      totalQuota: 0,
      maxBps: 0,
      maxPermissionsPerAllocation: 100,
      allowLoopbackPeers: false,
      udp: true,
      tcp: true,
      maxChannelNumber: 0x7fff,
      software: 'peerlink',
      staticAuthSecrets: [],
    })
    expect(resolveTurnServerOptions({ listeningIps: ['127.0.0.1'], strictChannelNumbers: true }).maxChannelNumber).toBe(0x4fff)
  })

  it('turns every user form into the long-term key', () => {
    const key = longTermKey('bob', 'r', 'pw')
    const hex = Buffer.from(key).toString('hex')
    const o = resolveTurnServerOptions({
      listeningIps: ['127.0.0.1'],
      realm: 'r',
      users: ['bob:pw', `carl:0x${hex}`, { name: 'dora', password: 'pw' }, { name: 'eve', key }, { name: 'fay', key: hex }, 'gus:pass:with:colons'],
    })
    expect(o.users.get('bob')).toEqual(key)
    expect(o.users.get('carl')).toEqual(key)
    expect(o.users.get('dora')).toEqual(longTermKey('dora', 'r', 'pw'))
    expect(o.users.get('eve')).toEqual(key)
    expect(o.users.get('fay')).toEqual(key)
    expect(o.users.get('gus')).toEqual(longTermKey('gus', 'r', 'pass:with:colons'))
  })

  it('enables TLS ports only with a certificate and without noTls', () => {
    const tls = { cert: 'C', key: 'K' }
    expect(resolveTurnServerOptions({ listeningIps: ['127.0.0.1'], tls, extraTlsListeningPorts: [443] }).tlsPorts).toEqual([5349, 443])
    expect(resolveTurnServerOptions({ listeningIps: ['127.0.0.1'], tls, noTls: true }).tlsPorts).toEqual([])
  })

  it('parses external-ip mappings', () => {
    expect(resolveTurnServerOptions({ listeningIps: ['127.0.0.1'], externalIp: ['203.0.113.7/10.0.0.5', '2001:db8::7'] }).externalIps).toEqual([
      { public: '203.0.113.7', private: '10.0.0.5' },
      { public: '2001:db8::7' },
    ])
  })

  it('throws InvalidArgumentError at once for impossible options', () => {
    const bad: TurnServerOptions[] = [
      { listeningIps: ['not-an-ip'] },
      { listeningIps: [] },
      { listeningPort: 70000 },
      { minPort: 5000, maxPort: 4000 },
      { minPort: 0 },
      { realm: '' },
      { users: ['nocolon'] },
      { users: [{ name: 'x' } as never] },
      { users: ['k:0x1234'].map((u) => ({ name: u, key: '0x12' })) },
      { staticAuthSecrets: [''] },
      { useAuthSecret: true },
      { restApiSeparator: '::' },
      { permissionLifetime: 0 },
      { defaultAllocateLifetime: 7200 },
      { userQuota: -1 },
      { maxBps: 1.5 },
      { externalIp: '1.2.3.4/::1' },
      { externalIp: 'x' },
      { relayIps: ['0.0.0.0'] },
      { nonceSecret: new Uint8Array(4) },
      { logger: { info() {} } as never },
      { unauthorizedResponsesPerSecondPerIp: 0 },
      { tls: { cert: 1, key: 2 } as never },
    ]
    for (const options of bad) {
      expect(() => resolveTurnServerOptions({ listeningIps: ['127.0.0.1'], ...options }), JSON.stringify(options)).toThrow(InvalidArgumentError)
    }
  })

  it('reports the external IP in XOR-RELAYED-ADDRESS', async () => {
    const server = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: 0,
      ...randomPortRange(50),
      noAuth: true,
      noTcp: true,
      externalIp: '203.0.113.7/127.0.0.1',
    })
    expect(server.addresses.map((a) => a.transport)).toEqual(['udp'])
    const c = await TestTurnClient.udp(server.addresses[0]!)
    try {
      const relayed = getAttribute(await c.allocate(), 'xor-relayed-address')!.value
      expect(relayed.host).toBe('203.0.113.7')
    } finally {
      await c.close()
      await server.close()
    }
  })

  it('rejects listen() with an aborted signal and a port in use', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(TurnServer.listen({ listeningIps: ['127.0.0.1'], listeningPort: 0, signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    const first = await TurnServer.listen({ listeningIps: ['127.0.0.1'], listeningPort: 0, noAuth: true })
    try {
      const port = first.addresses[0]!.port
      await expect(TurnServer.listen({ listeningIps: ['127.0.0.1'], listeningPort: port, noAuth: true })).rejects.toMatchObject({ code: 'ERR_SOCKET_BIND' })
    } finally {
      await first.close()
    }
  })
})
