import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigInvalidError } from '../../src/errors.js'
import { BEACON_OPTIONS, CONFIG_SECTIONS, type OptionDescriptor, TUNNEL_OPTIONS, TURN_OPTIONS } from '../../src/server/config-options.js'
import { resolveBeaconServerOptions } from '../../src/server/beacon/beacon-server.js'
import {
  beaconServerOptions,
  configSecrets,
  defaultServerConfig,
  loadServerConfig,
  parseServerConfig,
  serverConfigTemplate,
  stunServerOptions,
  tunnelServerOptions,
  turnServerOptions,
} from '../../src/server/config.js'
import { resolveTurnServerOptions } from '../../src/server/turn/turn-server-options.js'
import { resolveTunnelServerOptions } from '../../src/server/tunnel/tunnel-server-options.js'

const FILE = '/etc/peerlink/peerlink-server.toml'
const parse = (text: string) => parseServerConfig(text, FILE)
const failure = (text: string): ConfigInvalidError => {
  try {
    parse(text)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalidError)
    return err as ConfigInvalidError
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`)
}

describe('defaults and the template', () => {
  it('an empty file gives every default', () => {
    const config = parse('')
    expect(config.stun).toEqual({
      listeningIps: ['0.0.0.0'],
      listeningPort: 3478,
      altListeningPort: undefined,
      requestsPerSecondPerIp: 50,
      burstPerIp: 100,
      noSoftwareAttribute: false,
    })
    expect(config.turn.listeningPort).toBe(3478)
    expect(config.turn.tlsListeningPort).toBe(5349)
    expect(config.turn.realm).toBe('peerlink')
    expect(config.turn.staticAuthSecrets).toEqual([])
    expect(config.log).toEqual({ level: 'info', maxFileBytes: 10 * 1024 * 1024, maxFiles: 5 })
    expect(config.metrics).toEqual({ enabled: false, host: '127.0.0.1', port: 9641, defaultMetrics: true })
    expect(config.beacon).toEqual({
      listeningIps: ['0.0.0.0', '::'],
      listeningPort: 4264,
      stun: true,
      cert: undefined,
      pkey: undefined,
      maxMessageBytes: 16384,
      maxTopicsPerConnection: 16,
      messagesPerSecond: 50,
      messageBurst: 100,
      maxConnectionsPerIp: 64,
      maxConnections: 100_000,
      maxIntroductions: 16,
      heartbeatInterval: 15,
      helloTimeout: 10,
      maxBufferedBytes: 1_048_576,
      redis: undefined,
      redisPrefix: 'peerlink:beacon:',
      redisExpiry: 10,
      instanceId: undefined,
    })
    expect(config.explicit.size).toBe(0)
    expect(defaultServerConfig().turn).toEqual(config.turn)
  })

  it('the template names every option of every section, commented, and parses to the defaults', () => {
    const template = serverConfigTemplate()
    for (const [section, { options }] of Object.entries(CONFIG_SECTIONS)) {
      expect(template).toContain(`\n[${section}]\n`)
      for (const descriptor of Object.values(options) as OptionDescriptor[]) {
        expect(template).toMatch(new RegExp(`^# ${descriptor.key} = `, 'm'))
      }
    }
    const parsed = parse(template)
    const defaults = parse('')
    expect({ ...parsed, file: undefined }).toEqual({ ...defaults, file: undefined })
    expect(template).toContain('Loopback only by default')
    expect(template.split('\n').every((line) => line.length <= 100 || line.startsWith('# '))).toBe(true)
  })

  it('uncommenting every option line of the template gives a valid config', () => {
    const uncommented = serverConfigTemplate().replace(/^# ([a-z-]+ = .*)$/gm, '$1')
    const config = parse(uncommented)
    expect(config.explicit.size).toBe(Object.values(CONFIG_SECTIONS).reduce((n, s) => n + Object.keys(s.options).length, 0))
    expect(config.turn.users).toEqual(['alice:change-me'])
    expect(config.turn.cert).toBe('/etc/letsencrypt/live/turn.example.com/fullchain.pem')
  })
})

describe('[turn] with coturn option names', () => {
  const text = `
[turn]
listening-ip = ["127.0.0.1", "::1"]
listening-port = 13478
tls-listening-port = 15349
relay-ip = "127.0.0.1"
external-ip = "198.51.100.7/127.0.0.1"
min-port = 50000
max-port = 50100
realm = "example.org"
static-auth-secret = ["new-secret-value", "old-secret-value"]
user = ["alice:wonderland", "bob:0x0123456789abcdef0123456789abcdef"]
user-quota = 10
total-quota = 1000
max-bps = 125000
denied-peer-ip = ["203.0.113.0/24", "198.51.100.1-198.51.100.9"]
allowed-peer-ip = "10.1.2.3"
allow-loopback-peers = true
no-tcp = true
stun-only = false
max-allocate-lifetime = 1800
channel-lifetime = 600
permission-lifetime = 300.5
stale-nonce = 120
cert = "certs/fullchain.pem"
pkey = "~/privkey.pem"
no-software-attribute = true
`

  it('maps onto TurnServerOptions, which the TURN server accepts', () => {
    const config = parse(text)
    expect(config.turn.cert).toBe('/etc/peerlink/certs/fullchain.pem')
    const tls = { cert: 'CERT', key: 'KEY' }
    const options = turnServerOptions(config.turn, tls)
    expect(options).toMatchObject({
      listeningIps: ['127.0.0.1', '::1'],
      listeningPort: 13478,
      tlsListeningPort: 15349,
      relayIps: ['127.0.0.1'],
      externalIp: ['198.51.100.7/127.0.0.1'],
      minPort: 50000,
      maxPort: 50100,
      realm: 'example.org',
      staticAuthSecrets: ['new-secret-value', 'old-secret-value'],
      users: ['alice:wonderland', 'bob:0x0123456789abcdef0123456789abcdef'],
      userQuota: 10,
      totalQuota: 1000,
      maxBps: 125000,
      deniedPeerIps: ['203.0.113.0/24', '198.51.100.1-198.51.100.9'],
      allowedPeerIps: ['10.1.2.3'],
      allowLoopbackPeers: true,
      noTcp: true,
      maxAllocateLifetime: 1800,
      permissionLifetime: 300.5,
      nonceLifetime: 120,
      software: '',
      tls,
    })
    expect(options.useAuthSecret).toBeUndefined()
    const resolved = resolveTurnServerOptions(options)
    expect(resolved.tlsPorts).toEqual([15349])
    expect(resolved.tcp).toBe(false)
    expect(resolved.users.size).toBe(2)
    expect(configSecrets(config).sort()).toEqual(['0x0123456789abcdef0123456789abcdef', 'new-secret-value', 'old-secret-value', 'wonderland'])
  })

  it('every [turn] option maps to a TurnServerOptions field of the same name (or a documented one)', () => {
    const options = turnServerOptions(parse(serverConfigTemplate().replace(/^# ([a-z-]+ = .*)$/gm, '$1')).turn, { cert: 'c', key: 'k' })
    const special: Record<string, string> = { cert: 'tls', pkey: 'tls', noSoftwareAttribute: 'software' }
    for (const prop of Object.keys(TURN_OPTIONS)) expect(options).toHaveProperty(special[prop] ?? prop)
  })

  it("the [turn] table's defaults are the TURN server's own defaults (no drift between the two)", () => {
    const fromConfig = resolveTurnServerOptions(turnServerOptions(parse('').turn, undefined))
    const fromServer = resolveTurnServerOptions({})
    const comparable = (resolved: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(resolved).filter(([, value]) => ['number', 'boolean', 'string'].includes(typeof value)))
    expect(comparable(fromConfig as unknown as Record<string, unknown>)).toEqual(comparable(fromServer as unknown as Record<string, unknown>))
  })

  it("the [beacon] table's defaults are the Beacon server's own defaults (no drift between the two)", () => {
    const tls = { cert: 'c', key: 'k' }
    const fromConfig = resolveBeaconServerOptions(beaconServerOptions(parse('').beacon, tls))
    const fromServer = resolveBeaconServerOptions(tls)
    const comparable = (resolved: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(resolved).filter(([key, value]) => key !== 'instanceId' && ['number', 'boolean', 'string'].includes(typeof value)))
    const config = comparable(fromConfig as unknown as Record<string, unknown>)
    expect(Object.keys(config).length).toBeGreaterThanOrEqual(15)
    expect(config).toEqual(comparable(fromServer as unknown as Record<string, unknown>))
    expect(fromServer.redis).toBeUndefined()
    expect(fromConfig.redis).toBeUndefined()
    // The one deliberate difference: the config listens on IPv6 too.
    expect(fromServer.hosts).toEqual(['0.0.0.0'])
    expect(fromConfig.hosts).toEqual(['0.0.0.0', '::'])
  })

  it('every [beacon] option maps to a BeaconServerOptions field of the same name (or a documented one)', () => {
    const options = beaconServerOptions(parse(serverConfigTemplate().replace(/^# ([a-z-]+ = .*)$/gm, '$1')).beacon, { cert: 'c', key: 'k' })
    const special: Record<string, string> = {
      listeningIps: 'host',
      listeningPort: 'port',
      pkey: 'key',
      heartbeatInterval: 'heartbeatMs',
      helloTimeout: 'helloTimeoutMs',
      redisExpiry: 'redisTtlMs',
    }
    for (const prop of Object.keys(BEACON_OPTIONS)) expect(options).toHaveProperty(special[prop] ?? prop)
    expect(options).toMatchObject({ redis: 'redis://127.0.0.1:6379', instanceId: 'beacon-1', heartbeatMs: 15_000, helloTimeoutMs: 10_000, redisTtlMs: 10_000 })
  })

  it('[beacon]: seconds become milliseconds; a Redis password is a secret', () => {
    const config = parse('[beacon]\nheartbeat-interval = 0.25\nhello-timeout = 3\nredis-expiry = 0.5\nredis = "redis://beacon:p%40ss@127.0.0.1:6379/0"\n')
    expect(beaconServerOptions(config.beacon, { cert: 'c', key: 'k' })).toMatchObject({ heartbeatMs: 250, helloTimeoutMs: 3_000, redisTtlMs: 500, redis: 'redis://beacon:p%40ss@127.0.0.1:6379/0' })
    expect(configSecrets(config)).toEqual(['p%40ss', 'p@ss'])
  })

  it('[stun]: a second listening IP enables RFC 5780', () => {
    expect(stunServerOptions(parse('').stun)).toEqual({ host: '0.0.0.0', port: 3478, software: 'peerlink', requestsPerSecondPerIp: 50, burstPerIp: 100 })
    const options = stunServerOptions(parse('[stun]\nlistening-ip = ["127.0.0.1", "127.0.0.2"]\nlistening-port = 0\nalt-listening-port = 0').stun)
    expect(options).toMatchObject({ host: '127.0.0.1', alternateHost: '127.0.0.2', port: 0, alternatePort: 0 })
  })
})

describe('[tunnel]', () => {
  const PEER = '12D3KooWEiS4UHPkyhrEkX2UxPQ2BxVF8urXAVhX6QXv8ApagX4D'

  it('defaults: the control port 8443, HTTP 8080, public ports 20000-29999', () => {
    const tunnel = parse('').tunnel
    expect(tunnel).toMatchObject({ listeningIps: ['0.0.0.0'], controlPort: 8443, httpPort: 8080, allowPorts: '20000-29999', domain: 'localhost', tokens: [], noTls: false })
    expect(parse('[tunnel]').tunnel).toEqual(tunnel)
  })

  it('maps onto TunnelServerOptions, which the tunnel server accepts; tokens are secrets', () => {
    const config = parse(`
[tunnel]
listening-ip = ["127.0.0.1", "::1"]
control-port = 443
http-port = 80
allow-ports = "30000-30099, 31000"
max-ports-per-device = 3
domain = "Tunnel.Example.com"
public-host = "tunnel.example.com"
public-url = "wss://tunnel-1.example.com"
http-public-port = 443
http-public-scheme = "https"
tokens = ["device-token-one", "device-token-two"]
allowed-peer-ids = ["${PEER}", "*"]
retention = 0
connect-timeout = 2.5
heartbeat-interval = 0.5
max-frame-bytes = 65536
server-id = "tunnel-1"
redis = "redis://fleet:s3cret@127.0.0.1:6379/2"
redis-prefix = "fleet-a:"
registration-ttl = 30
cert = "certs/fullchain.pem"
pkey = "/etc/k.pem"
`)
    expect(config.tunnel.cert).toBe('/etc/peerlink/certs/fullchain.pem')
    const options = tunnelServerOptions(config.tunnel)
    expect(options).toMatchObject({
      listeningIps: ['127.0.0.1', '::1'],
      controlPort: 443,
      httpPort: 80,
      allowPorts: '30000-30099, 31000',
      maxPortsPerDevice: 3,
      publicHost: 'tunnel.example.com',
      publicUrl: 'wss://tunnel-1.example.com',
      httpPublicPort: 443,
      httpPublicScheme: 'https',
      tokens: ['device-token-one', 'device-token-two'],
      allowedPeerIds: [PEER, '*'],
      retention: 0,
      connectTimeout: 2.5,
      heartbeatInterval: 0.5,
      serverId: 'tunnel-1',
      redis: 'redis://fleet:s3cret@127.0.0.1:6379/2',
      redisPrefix: 'fleet-a:',
      registrationTtl: 30,
    })
    const resolved = resolveTunnelServerOptions(options)
    expect(resolved).toMatchObject({ domain: 'tunnel.example.com', retentionMs: 0, connectTimeoutMs: 2_500, heartbeatMs: 500, anyPeerId: true, registrationTtlMs: 30_000 })
    expect(resolved.allowPorts.size).toBe(101)
    expect(configSecrets(config)).toEqual(['device-token-one', 'device-token-two', 's3cret'])
  })

  it('every [tunnel] option maps to a TunnelServerOptions field of the same name (or the TLS files)', () => {
    const options = tunnelServerOptions(parse(serverConfigTemplate().replace(/^# ([a-z-]+ = .*)$/gm, '$1')).tunnel)
    const tls = new Set(['cert', 'pkey', 'noTls'])
    for (const prop of Object.keys(TUNNEL_OPTIONS)) {
      if (tls.has(prop)) expect(options).not.toHaveProperty(prop)
      else expect(options).toHaveProperty(prop)
    }
    // The keys are the kebab-case of the field names (listening-ip as in the other sections).
    for (const [prop, { key }] of Object.entries(TUNNEL_OPTIONS)) {
      expect(prop === 'listeningIps' ? key === 'listening-ip' : key === prop.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).toBe(true)
    }
  })

  it("the [tunnel] table's defaults are the tunnel server's own defaults (no drift between the two)", () => {
    const fromConfig = resolveTunnelServerOptions(tunnelServerOptions(parse('').tunnel))
    const fromServer = resolveTunnelServerOptions({})
    const comparable = (resolved: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(resolved)
          .filter(([key, value]) => key !== 'serverId' && ['number', 'boolean', 'string'].includes(typeof value))
          .concat([['allowPorts', String(resolved.allowPorts)], ['listeningIps', resolved.listeningIps], ['tokens', resolved.tokens], ['allowedPeerIds', [...(resolved.allowedPeerIds as Set<string>)]]]),
      )
    const config = comparable(fromConfig as unknown as Record<string, unknown>)
    expect(Object.keys(config).length).toBeGreaterThanOrEqual(26)
    expect(config).toEqual(comparable(fromServer as unknown as Record<string, unknown>))
    expect(fromConfig.publicUrl).toBeUndefined()
    expect(fromConfig.httpPublicPort).toBeUndefined()
    expect(fromConfig.tls).toBeUndefined()
  })

  it('types, ranges, and cross-checks with the tunnel server in the file\'s names and units', () => {
    expect(failure('[tunnel]\ncontrol-port = "8443"').message).toBe(`Config file ${FILE}: [tunnel] control-port must be a port number (0-65535), got "8443"`)
    expect(failure('[tunnel]\nhttp-public-port = 0').message).toMatch(/\[tunnel\] http-public-port must be a port number \(1-65535\)/)
    expect(failure('[tunnel]\nallow-ports = "20000-"').message).toBe(`Config file ${FILE}: [tunnel] allow-ports: "20000-" is not a port or a range A-B`)
    expect(failure('[tunnel]\nallow-ports = "30000-20000"').message).toMatch(/\[tunnel\] allow-ports: "30000-20000" is not within 1-65535 in ascending order/)
    expect(failure('[tunnel]\ntokens = ["short"]').message).toMatch(/\[tunnel\] tokens must be strings of 8 to 512 characters/)
    expect(failure('[tunnel]\nallowed-peer-ids = ["12D3KooWnope"]').message).toMatch(/\[tunnel\] allowed-peer-ids: "12D3KooWnope" is neither a PeerId nor "\*"/)
    expect(failure('[tunnel]\nretention = -1').message).toMatch(/\[tunnel\] retention must be a number from 0 to 604800, got -1/)
    expect(failure('[tunnel]\nconnect-timeout = 0').message).toMatch(/\[tunnel\] connect-timeout must be a positive number up to 600/)
    expect(failure('[tunnel]\nconnect-timeout = 0.01').message).toMatch(/\[tunnel\] connect-timeout must be a number of seconds from 0.05 to 600/)
    expect(failure('[tunnel]\nheartbeat-interval = inf').message).toMatch(/\[tunnel\] heartbeat-interval must be a positive number up to 3600/)
    expect(failure('[tunnel]\nmax-ports-per-device = 100').message).toMatch(/\[tunnel\] max-ports-per-device must be an integer from 1 to 64/)
    expect(failure('[tunnel]\nmax-frame-bytes = 1000').message).toMatch(/\[tunnel\] max-frame-bytes must be an integer from 65536/)
    expect(failure('[tunnel]\ndomain = "not a domain"').message).toMatch(/\[tunnel\] domain "not a domain" is not a DNS name/)
    expect(failure('[tunnel]\npublic-url = "https://x.example.com"').message).toMatch(/\[tunnel\] public-url must be a ws:\/\/ or wss:\/\/ URL/)
    expect(failure('[tunnel]\nhttp-public-scheme = "ftp"').message).toMatch(/\[tunnel\] http-public-scheme must be "http" or "https", got "ftp"/)
    expect(failure('[tunnel]\nserver-id = "no spaces"').message).toMatch(/\[tunnel\] server-id must be 1 to 64 characters/)
    expect(failure('[tunnel]\nlistening-ip = ["127.0.0.1", "127.0.0.1"]').message).toMatch(/\[tunnel\] listening-ip lists an address twice/)
    expect(failure('[tunnel]\ncert = "a.pem"').message).toMatch(/\[tunnel\] cert and pkey: give both/)
    const redis = failure('[tunnel]\nredis = "http://user:hunter2@example.com"').message
    expect(redis).toMatch(/\[tunnel\] redis must be a redis:\/\/ or rediss:\/\/ URL/)
    expect(redis).not.toContain('hunter2')
    expect(failure('[tunnel]\nregistration-ttl = 0.1').message).toMatch(/\[tunnel\] registration-ttl must be a number of seconds from 0.3 to 3600/)
    expect(failure('[tunnel]\nport = 8443').message).toMatch(/\[tunnel\] port: unknown key/)
    expect(failure('[tunnel]\ntoken = "device-token-one"').message).toMatch(/\[tunnel\] token: unknown key; did you mean tokens\?/)
  })
})

describe('errors name the file, section and key', () => {
  it('unknown keys, with a suggestion for near misses', () => {
    expect(failure('[turn]\nlisten-port = 1').message).toBe(`Config file ${FILE}: [turn] listen-port: unknown key; did you mean listening-port?`)
    expect(failure('[turn]\nlisteningPort = 1').message).toMatch(/\[turn\] listeningPort: unknown key; did you mean listening-port\?/)
    expect(failure('[turn]\nstatic-auth-secrets = "x"').message).toMatch(/did you mean static-auth-secret\?/)
    expect(failure('[turn]\ncompletely-unrelated = 1').message).toBe(`Config file ${FILE}: [turn] completely-unrelated: unknown key`)
    expect(failure('[stun]\nrealm = "x"').message).toMatch(/\[stun\] realm: unknown key \(it is an option of \[turn\]\)/)
  })

  it('unknown sections, sections of servers not built yet, keys outside sections', () => {
    expect(failure('[trun]\nrealm = "x"').message).toMatch(/unknown section or key "trun"; did you mean turn\?/)
    expect(failure('[beacon]\nport = 4264').message).toMatch(/^Config file \/etc\/peerlink\/peerlink-server\.toml: \[beacon\] port: unknown key/)
    expect(failure('[beacon]\nmax-topics-per-connection = 4').message).toMatch(/\[beacon\] max-topics-per-connection: unknown key; did you mean max-identifiers-per-connection\?/)
    expect(failure('[beacon]\nrealm = "x"').message).toMatch(/\[beacon\] realm: unknown key \(it is an option of \[turn\]\)/)
    expect(failure('realm = "x"').message).toMatch(/"realm" must be inside a section: put it under \[turn\]/)
    expect(failure('turn = 3').message).toMatch(/"turn" must be a section/)
  })

  it('wrong types and ranges', () => {
    expect(failure('[turn]\nlistening-port = "3478"').message).toBe(`Config file ${FILE}: [turn] listening-port must be a port number (0-65535), got "3478"`)
    expect(failure('[turn]\nlistening-port = 70000').message).toMatch(/listening-port must be a port number/)
    expect(failure('[turn]\nmin-port = 0').message).toMatch(/min-port must be a port number \(1-65535\)/)
    expect(failure('[turn]\nlistening-ip = "localhost"').message).toMatch(/listening-ip must be an IP address or an array/)
    expect(failure('[turn]\nlistening-ip = []').message).toMatch(/listening-ip must be at least one IP address/)
    expect(failure('[turn]\nno-udp = "yes"').message).toMatch(/no-udp must be true or false, got "yes"/)
    expect(failure('[turn]\nstatic-auth-secret = ""').message).toMatch(/static-auth-secret must be a non-empty string/)
    expect(failure('[turn]\nmax-bps = -1').message).toMatch(/max-bps must be an integer from 0/)
    expect(failure('[turn]\nchannel-lifetime = 0').message).toMatch(/channel-lifetime must be a positive number/)
    expect(failure('[turn]\nrealm = 1979-05-27').message).toMatch(/realm must be a string, got a date/)
    expect(failure('[turn]\nrealm = { a = 1 }').message).toMatch(/realm must be a string, got a table/)
    expect(failure('[log]\nlevel = "loud"').message).toMatch(/\[log\] level must be one of fatal, error/)
    expect(failure('[log]\nmax-file-bytes = 10').message).toMatch(/max-file-bytes must be an integer from 1024/)
    expect(failure('[metrics]\nhost = "example.com"').message).toMatch(/\[metrics\] host must be an IP address/)
  })

  it('[beacon] types, ranges, and cross-checks with the Beacon server in the file\'s names and units', () => {
    expect(failure('[beacon]\nlistening-port = "4264"').message).toBe(`Config file ${FILE}: [beacon] listening-port must be a port number (0-65535), got "4264"`)
    expect(failure('[beacon]\nstun = "off"').message).toMatch(/\[beacon\] stun must be true or false, got "off"/)
    expect(failure('[beacon]\nmax-message-bytes = 100000').message).toMatch(/\[beacon\] max-message-bytes must be an integer from 1024 to 16384/)
    expect(failure('[beacon]\nmax-identifiers-per-connection = 2000').message).toMatch(/max-identifiers-per-connection must be an integer from 0 to 1024/)
    expect(failure('[beacon]\nmessages-per-second = 0').message).toMatch(/messages-per-second must be an integer from 1/)
    expect(failure('[beacon]\nheartbeat-interval = 0').message).toMatch(/\[beacon\] heartbeat-interval must be a positive number/)
    expect(failure('[beacon]\nheartbeat-interval = 0.05').message).toBe(`Config file ${FILE}: [beacon] heartbeat-interval must be at least 0.1 seconds`)
    expect(failure('[beacon]\nredis-expiry = 0.1').message).toMatch(/\[beacon\] redis-expiry must be at least 0.3 seconds/)
    expect(failure('[beacon]\nhello-timeout = 1e9').message).toMatch(/\[beacon\] hello-timeout must be at most 2147483 seconds/)
    expect(failure('[beacon]\nlistening-ip = ["127.0.0.1", "127.0.0.1"]').message).toMatch(/\[beacon\] listening-ip lists an address twice/)
    expect(failure('[beacon]\ninstance-id = "no spaces"').message).toMatch(/\[beacon\] instance-id must be 1 to 64 characters/)
    expect(failure('[beacon]\ncert = "a.pem"').message).toMatch(/\[beacon\] cert and pkey: give both/)
    const redis = failure('[beacon]\nredis = "http://user:hunter2@example.com"').message
    expect(redis).toMatch(/\[beacon\] redis must be a "redis:\/\/…" or "rediss:\/\/…" URL/)
    expect(redis).not.toContain('hunter2')
  })

  it('cross-checks with the TURN server, in the file\'s names', () => {
    expect(failure('[turn]\nmin-port = 60000\nmax-port = 50000').message).toMatch(/\[turn\] min-port \(60000\) is above max-port \(50000\)/)
    expect(failure('[turn]\nuse-auth-secret = true').message).toMatch(/\[turn\] use-auth-secret needs at least one of static-auth-secret/)
    expect(failure('[turn]\ncert = "a.pem"').message).toMatch(/\[turn\] cert and pkey: give both/)
    expect(failure('[turn]\nexternal-ip = "1.2.3.4/::1"').message).toMatch(/\[turn\] external-ip/)
    expect(failure('[turn]\ndenied-peer-ip = "10.0.0.0/99"').message).toMatch(/\[turn\] denied-peer-ip must be "IP", "FROM-TO" or "IP\/PREFIX", got "10.0.0.0\/99"/)
    expect(failure('[turn]\nuser = ["nocolon"]').message).toMatch(/\[turn\] /)
  })

  it('bad TOML', () => {
    expect(failure('[turn\n').message).toMatch(new RegExp(`^Config file ${FILE}: not valid TOML: `))
    expect(failure('[turn]\nrealm = "a"\nrealm = "b"').message).toMatch(/not valid TOML/)
  })

  it('a file that cannot be read', async () => {
    await expect(loadServerConfig('/nonexistent/peerlink-server.toml')).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringMatching(/cannot read it \(ENOENT\)/),
    })
  })
})

describe('loadServerConfig', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peerlink-config-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reads a file and resolves paths relative to it', async () => {
    const file = join(dir, 'server.toml')
    await writeFile(file, '[turn]\ncert = "c.pem"\npkey = "/abs/k.pem"\n[log]\nlevel = "debug"\n')
    const config = await loadServerConfig(file)
    expect(config.file).toBe(file)
    expect(config.turn.cert).toBe(join(dir, 'c.pem'))
    expect(config.turn.pkey).toBe('/abs/k.pem')
    expect(config.log.level).toBe('debug')
    expect([...config.explicit].sort()).toEqual(['log.level', 'turn.cert', 'turn.pkey'])
  })
})

describe('property: nothing but ConfigInvalidError, whatever the input', () => {
  const keys = Object.entries(CONFIG_SECTIONS).flatMap(([section, { options }]) =>
    (Object.values(options) as OptionDescriptor[]).map((o) => ({ section, key: o.key })),
  )
  const check = (text: string) => {
    try {
      parse(text)
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err
      expect(err.message.startsWith(`Config file ${FILE}: `)).toBe(true)
    }
  }

  it('random TOML-ish text', () => {
    const token = fc.constantFrom('[', ']', '[[', ']]', '=', '"', "'", '"""', '\n', ' ', '#', ',', '{', '}', '.', 'turn', 'stun', 'log', 'metrics', 'beacon', 'listening-port', 'realm', 'user', '3478', '-1', '1e999', '0x10', 'true', 'nan', 'inf', '1979-05-27T07:32:00Z', '\\u0000', '\u0000', '9999999999999999999999')
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }).map((tokens) => tokens.join('')), check), { numRuns: 1000 })
    fc.assert(fc.property(fc.string({ maxLength: 200 }), check), { numRuns: 500 })
  })

  it('random values for real keys', () => {
    const scalar = fc.oneof(
      fc.integer({ min: -100000, max: 100000 }).map(String),
      fc.double({ noNaN: false }).map((n) => (Number.isFinite(n) ? String(n) : Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf')),
      fc.string({ maxLength: 30 }).map((s) => JSON.stringify(s)),
      fc.constantFrom('true', 'false', '"127.0.0.1"', '"::1"', '"0.0.0.0"', '"10.0.0.0/8"', '"1.2.3.4-1.2.3.9"', '1979-05-27', '{ a = 1 }', '"alice:pw"', '"debug"'),
    )
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }).map((items) => `[${items.join(', ')}]`))
    const entry = fc.tuple(fc.constantFrom(...keys), value)
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
        const bySection = new Map<string, string[]>()
        for (const [{ section, key }, v] of entries) {
          const lines = bySection.get(section) ?? []
          if (!lines.some((line) => line.startsWith(`${key} =`))) lines.push(`${key} = ${v}`)
          bySection.set(section, lines)
        }
        check([...bySection].map(([section, lines]) => `[${section}]\n${lines.join('\n')}`).join('\n'))
      }),
      { numRuns: 1500 },
    )
  })
})
