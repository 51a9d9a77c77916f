import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidServerSpecError } from '../../src/errors.js'
import {
  type ServerSpec,
  formatServerSpec,
  parseBeaconSpec,
  parseServerSpec,
  parseStunSpec,
  parseTunnelSpec,
  parseTurnSpec,
} from '../../src/server-spec.js'

const HASH = 'weOsoMPwj976xqxRvLElsbb-gijWWn0netOtgPflZnk'
const parsers = { parseBeaconSpec, parseStunSpec, parseTurnSpec, parseTunnelSpec, parseServerSpec }

describe('server specs: accepted forms', () => {
  const table: Array<[string, (text: string) => ServerSpec, Record<string, unknown>]> = [
    [`beacon.example.com:4264#${HASH}`, parseBeaconSpec, { kind: 'beacon', host: 'beacon.example.com', hostType: 'dns', port: 4264, certHash: HASH }],
    ['beacon.example.com:4264', parseBeaconSpec, { kind: 'beacon', port: 4264, certHash: undefined }],
    ['Beacon.Example.COM', parseBeaconSpec, { host: 'beacon.example.com', port: 4264 }],
    ['127.0.0.1:9', parseBeaconSpec, { host: '127.0.0.1', hostType: 'ipv4', port: 9 }],
    // A Beacon on a host named like a scheme keeps its kind (formatServerSpec writes `ws:4264`).
    ['ws:4264', parseServerSpec, { kind: 'beacon', host: 'ws', port: 4264 }],
    [`turn:4264#${HASH}`, parseServerSpec, { kind: 'beacon', host: 'turn', port: 4264, certHash: HASH }],
    [`[::1]:4264#${HASH}`, parseBeaconSpec, { host: '::1', hostType: 'ipv6', port: 4264, certHash: HASH }],
    ['[2001:DB8::1]', parseBeaconSpec, { host: '2001:db8::1', hostType: 'ipv6', port: 4264 }],
    ['  localhost:1  ', parseBeaconSpec, { host: 'localhost', port: 1 }],
    ['stun:stun.example.com:3478', parseStunSpec, { kind: 'stun', host: 'stun.example.com', port: 3478 }],
    ['stun:stun.example.com', parseStunSpec, { port: 3478 }],
    ['STUN:[::1]:65535', parseStunSpec, { host: '::1', hostType: 'ipv6', port: 65535 }],
    ['turn:turn.example.com:3478?transport=udp', parseTurnSpec, { kind: 'turn', secure: false, transport: 'udp', port: 3478 }],
    ['turn:turn.example.com?transport=TCP', parseTurnSpec, { secure: false, transport: 'tcp', port: 3478 }],
    ['turn:10.0.0.1', parseTurnSpec, { transport: 'udp', hostType: 'ipv4', port: 3478 }],
    ['turns:turn.example.com', parseTurnSpec, { secure: true, transport: 'tls', port: 5349 }],
    ['turns:turn.example.com:443?transport=tcp', parseTurnSpec, { secure: true, transport: 'tls', port: 443 }],
    ['wss://tunnel.example.com', parseTunnelSpec, { kind: 'tunnel', secure: true, port: 443, path: '/', url: 'wss://tunnel.example.com:443/', certHash: undefined }],
    ['ws://127.0.0.1:8080', parseTunnelSpec, { secure: false, port: 8080, url: 'ws://127.0.0.1:8080/' }],
    [`wss://[::1]:8443/tunnel/v1#${HASH}`, parseTunnelSpec, { host: '::1', port: 8443, path: '/tunnel/v1', url: 'wss://[::1]:8443/tunnel/v1', certHash: HASH }],
    ['ws://Tunnel.Example.com', parseTunnelSpec, { host: 'tunnel.example.com', port: 80 }],
    ['stun:x.org', parseServerSpec, { kind: 'stun' }],
    ['turns:x.org', parseServerSpec, { kind: 'turn' }],
    ['wss://x.org', parseServerSpec, { kind: 'tunnel' }],
    ['x.org:1', parseServerSpec, { kind: 'beacon' }],
  ]
  for (const [text, parse, expected] of table) {
    it(`${parse.name}(${JSON.stringify(text)})`, () => {
      const spec = parse(text)
      expect(spec).toMatchObject(expected)
      expect(parse(formatServerSpec(spec))).toEqual(spec)
    })
  }
})

describe('server specs: rejected forms name the bad part', () => {
  const table: Array<[string, (text: string) => ServerSpec, RegExp]> = [
    ['', parseBeaconSpec, /empty/],
    ['   ', parseStunSpec, /empty/],
    ['beacon.example.com:', parseBeaconSpec, /port after ":" is missing/],
    ['beacon.example.com:0', parseBeaconSpec, /port 0 is not between 1 and 65535/],
    ['beacon.example.com:65536', parseBeaconSpec, /65536/],
    ['beacon.example.com:123456', parseBeaconSpec, /port "123456" is not a number/],
    ['beacon.example.com:+80', parseBeaconSpec, /port "\+80"/],
    ['beacon.example.com:4264#', parseBeaconSpec, /hash after "#" is empty/],
    ['beacon.example.com:4264#abc', parseBeaconSpec, /certificate hash "abc"/],
    [`beacon.example.com:4264#${HASH}=`, parseBeaconSpec, /certificate hash/],
    [`beacon.example.com:4264#${HASH.slice(0, 42)}l`, parseBeaconSpec, /certificate hash/], // spare bits set
    [`beacon.example.com:4264#${HASH.replace('-', '+')}`, parseBeaconSpec, /certificate hash/],
    ['wss://beacon.example.com:4264', parseBeaconSpec, /without "wss:\/\/"/],
    [':4264', parseBeaconSpec, /host is missing/],
    ['::1', parseBeaconSpec, /IPv6 address goes in brackets/],
    ['2001:db8::1:4264', parseBeaconSpec, /brackets/],
    ['[::1', parseBeaconSpec, /no closing "]"/],
    ['[::1]4264', parseBeaconSpec, /unexpected "4264"/],
    ['[fe80::1%eth0]:1', parseBeaconSpec, /zone/],
    ['[1.2.3.4]:1', parseBeaconSpec, /not a valid IPv6/],
    ['256.1.1.1:1', parseBeaconSpec, /"256.1.1.1" is not a valid IPv4/],
    ['1.2.3:1', parseBeaconSpec, /not a valid IPv4/],
    ['example.123:1', parseBeaconSpec, /neither an IPv4 address nor a host name/],
    ['-bad.example.com:1', parseBeaconSpec, /not a valid host name/],
    ['bad..example.com:1', parseBeaconSpec, /not a valid host name/],
    ['under_score.example.com:1', parseBeaconSpec, /not a valid host name/],
    ['bücher.example:1', parseBeaconSpec, /punycode/],
    [`${'a'.repeat(64)}.com:1`, parseBeaconSpec, /not a valid host name/],
    ['user@host:1', parseBeaconSpec, /not a valid host name/],
    ['host name:1', parseBeaconSpec, /white space/],
    ['stun.example.com:3478', parseStunSpec, /must start with "stun:"/],
    ['localhost:3478', parseStunSpec, /must start with "stun:"/],
    ['turn:x.org', parseStunSpec, /scheme "turn:" is not "stun:"/],
    ['stun://stun.example.com', parseStunSpec, /no "\/\/" after "stun:"/],
    ['stuns:stun.example.com', parseStunSpec, /stuns: .* not supported/],
    ['stun:stun.example.com:3478?transport=udp', parseStunSpec, /no "\?" query/],
    ['stun:', parseStunSpec, /host is missing/],
    ['turn:x.org?transport=sctp', parseTurnSpec, /"\?transport=sctp" is not/],
    ['turn:x.org?foo=bar', parseTurnSpec, /"\?foo=bar"/],
    ['turns:x.org?transport=udp', parseTurnSpec, /DTLS/],
    ['turn://x.org', parseTurnSpec, /RFC 7065/],
    ['stun:x.org', parseTurnSpec, /"turn:" or "turns:"/],
    ['http://x.org', parseTunnelSpec, /"ws:" or "wss:"/],
    ['wss:x.org', parseTunnelSpec, /expected "\/\/"/],
    [`ws://x.org#${HASH}`, parseTunnelSpec, /needs wss:\/\//],
    ['wss://x.org/?token=1', parseTunnelSpec, /no "\?" query/],
    ['wss://user:pw@x.org', parseTunnelSpec, /user information/],
    ['wss://x.org/a b', parseTunnelSpec, /white space/],
    ['wss://x.org/a"b', parseTunnelSpec, /path "\/a\\"b"/],
    ['wss://x.org/%zz', parseTunnelSpec, /%-encoded/],
    ['wss://', parseTunnelSpec, /host is missing/],
    ['x'.repeat(2000), parseBeaconSpec, /longer than 1024/],
  ]
  for (const [text, parse, message] of table) {
    it(`${parse.name}(${JSON.stringify(text.slice(0, 50))})`, () => {
      let error: unknown
      try {
        parse(text)
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(InvalidServerSpecError)
      expect((error as InvalidServerSpecError).code).toBe('ERR_INVALID_SERVER_SPEC')
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).toMatch(/Expected e\.g\. /)
    })
  }

  it('rejects non-strings with the typed error', () => {
    for (const parse of Object.values(parsers)) {
      for (const value of [undefined, null, 42, {}]) {
        expect(() => parse(value as unknown as string)).toThrow(InvalidServerSpecError)
      }
    }
  })
})

describe('server specs: properties', () => {
  /** Calls `parse`; passes when it returns or throws InvalidServerSpecError. */
  const onlyTypedError = (parse: (text: string) => ServerSpec, text: string): void => {
    let spec: ServerSpec
    try {
      spec = parse(text)
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidServerSpecError)
      return
    }
    expect(parse(formatServerSpec(spec))).toEqual(spec)
  }

  it('throw only InvalidServerSpecError for arbitrary strings', () => {
    const alphabet = fc.constantFrom(...'stunrwbc:/?#[]@%.-_=0123456789abcdefABCDEF ', '::', 'stun:', 'turn:', 'wss://', '?transport=')
    const arbitrary = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.string({ unit: alphabet, maxLength: 20 }),
    )
    fc.assert(
      fc.property(arbitrary, (text) => {
        for (const parse of Object.values(parsers)) onlyTypedError(parse, text)
      }),
      { numRuns: 1500 },
    )
  })

  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/)
  const dns = fc.tuple(fc.array(label, { minLength: 0, maxLength: 3 }), fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/)).map(([ls, tld]) => [...ls, tld].join('.'))
  const host = fc.oneof(dns, fc.ipV4(), fc.ipV6().map((ip) => `[${ip}]`))
  const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })
  const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url'))
  const hostPort = fc.tuple(host, port).map(([h, p]) => (p === undefined ? h : `${h}:${p}`))

  it('accept every well-formed spec and round-trip it through formatServerSpec', () => {
    const specs = fc.oneof(
      fc.tuple(hostPort, fc.option(hash, { nil: undefined })).map(([hp, h]) => (h === undefined ? hp : `${hp}#${h}`)),
      hostPort.map((hp) => `stun:${hp}`),
      fc.tuple(fc.constantFrom('turn:', 'turns:'), hostPort, fc.constantFrom('', '?transport=tcp')).map((p) => p.join('')),
      hostPort.map((hp) => `turn:${hp}?transport=udp`),
      fc.tuple(fc.constantFrom('ws://', 'wss://'), hostPort, fc.constantFrom('', '/', '/t', '/a/b~c')).map((p) => p.join('')),
      fc.tuple(hostPort, hash).map(([hp, h]) => `wss://${hp}#${h}`),
    )
    fc.assert(
      fc.property(specs, (text) => {
        const spec = parseServerSpec(text)
        expect(spec.port).toBeGreaterThanOrEqual(1)
        expect(parseServerSpec(formatServerSpec(spec))).toEqual(spec)
      }),
      { numRuns: 1000 },
    )
  })
})
