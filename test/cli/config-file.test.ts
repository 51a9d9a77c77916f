import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadClientConfig, parseClientConfig } from '../../src/cli/config-file.js'
import { ConfigInvalidError } from '../../src/errors.js'

const HASH = 'weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk'
const FILE = '/etc/peerlink/client.toml'

describe('client config file', () => {
  it('parses every key into typed specs', () => {
    const config = parseClientConfig(
      `
key     = "keys/peer.key"
beacons = ["beacon.example.com:4264#${HASH}", "[::1]:4264"]
stun    = ["stun:stun.example.com"]
turn    = ["turns:turn.example.com",
           { urls = "turn:turn.example.com:3478?transport=udp", username = "u", credential = "p" }]
tunnels = ["wss://tunnel.example.com:8443"]
paths   = ["direct", "tunnel"]
`,
      FILE,
      '/home/me',
    )
    expect(config.file).toBe(FILE)
    expect(config.key).toBe('/etc/peerlink/keys/peer.key')
    expect(config.beacons.map((b) => [b.host, b.port, b.certHash])).toEqual([
      ['beacon.example.com', 4264, HASH],
      ['::1', 4264, undefined],
    ])
    expect(config.stun[0]).toMatchObject({ kind: 'stun', host: 'stun.example.com', port: 3478 })
    expect(config.turn).toEqual([
      { server: expect.objectContaining({ transport: 'tls', port: 5349 }), username: undefined, credential: undefined },
      { server: expect.objectContaining({ transport: 'udp', port: 3478 }), username: 'u', credential: 'p' },
    ])
    expect(config.tunnels[0]).toMatchObject({ url: 'wss://tunnel.example.com:8443/' })
    expect(config.paths).toEqual(['direct', 'tunnel'])
  })

  it('expands ~ in key and defaults everything else to empty', () => {
    const config = parseClientConfig('key = "~/k.key"\n', FILE, '/home/me')
    expect(config.key).toBe('/home/me/k.key')
    expect(parseClientConfig('', FILE)).toMatchObject({ key: undefined, beacons: [], stun: [], turn: [], tunnels: [], paths: undefined })
  })

  const bad: Array<[string, RegExp]> = [
    ['beacon = ["x.org"]', /unknown key "beacon"/],
    ['beacons = "x.org"', /"beacons" must be an array of strings/],
    ['beacons = ["x.org:0"]', /beacons\[0\]: Invalid Beacon server "x.org:0": port 0/],
    ['stun = ["stun.example.com"]', /stun\[0\]: .*must start with "stun:"/],
    ['turn = [{ urls = "turn:x.org", username = "u" }]', /give both username and credential/],
    ['turn = [{ url = "turn:x.org" }]', /unknown key "url"/],
    ['turn = [{ urls = "stun:x.org" }]', /turn\[0\]\.urls: /],
    ['turn = [42]', /turn\[0\] must be a TURN URI/],
    ['tunnels = ["https://x.org"]', /tunnels\[0\]/],
    ['paths = ["direct", "udp"]', /paths: "udp" is not one of direct, turn, tunnel/],
    ['paths = []', /at least one/],
    ['key = 5', /"key" must be a non-empty string/],
    ['key = ', /not valid TOML/],
  ]
  for (const [text, message] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      let error: unknown
      try {
        parseClientConfig(text, FILE)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(ConfigInvalidError)
      expect((error as Error).message).toMatch(/^Config file \/etc\/peerlink\/client\.toml: /)
      expect((error as Error).message).toMatch(message)
    })
  }

  it('loads from disk and reports a missing file as ConfigInvalidError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peerlink-config-'))
    try {
      await writeFile(join(dir, 'c.toml'), 'stun = ["stun:127.0.0.1:3478"]\n')
      expect((await loadClientConfig(join(dir, 'c.toml'))).stun[0]!.host).toBe('127.0.0.1')
      await expect(loadClientConfig(join(dir, 'missing.toml'))).rejects.toThrow(/cannot read it \(ENOENT\)/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
