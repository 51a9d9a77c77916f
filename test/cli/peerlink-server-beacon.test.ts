// `peerlink-server beacon` and the Beacon in `all`: option building (in-process) and the
// real `bin/peerlink-server` (which loads the compiled dist/: `npm run build` first; `npm
// test` does it through "pretest"). Every server binds 127.0.0.1 and port 0 (or a port
// the OS picked for the test).
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { type Logger, pino } from 'pino'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BeaconClient, type Introduction } from '../../src/beacon/beacon-client.js'
import { ipv6Available, prepareBeacon, startBeacon } from '../../src/cli/peerlink-server-beacon.js'
import { PeerlinkError } from '../../src/errors.js'
import { createIdentity } from '../../src/identity/index.js'
import { type ServerConfig, parseServerConfig } from '../../src/server/config.js'
import { openDataDir } from '../../src/server/data-dir.js'
import { ServerMetrics } from '../../src/server/metrics.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'
import { assertDistFresh } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin', 'peerlink-server')
const fast = { minDelayMs: 20, maxDelayMs: 200, connectTimeout: 5_000, requestTimeout: 5_000 }
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-beacon-cli-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A pino logger writing JSON lines into an array. */
function memoryLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString())
      done()
    },
  })
  return { log: pino<never>({ level: 'info' }, stream), lines: () => chunks.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line)) }
}

const base = { loopback: false, host: undefined, beaconPort: undefined }

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(PeerlinkError)
    return (err as PeerlinkError).code
  }
  throw new Error('expected a rejection')
}

describe('prepareBeacon: Beacon options from config, command line and data directory', () => {
  it('defaults: 0.0.0.0 and ::, port 4264, the data directory certificate pinned, the config limits in server units', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const config = parseServerConfig('[beacon]\nheartbeat-interval = 2.5\nmax-connections-per-ip = 3\n', join(dir, 'x.toml'))
    const prepared = await prepareBeacon({ ...base, config, dataDir, ipv6Available: async () => true })
    expect(prepared.options).toMatchObject({
      host: ['0.0.0.0', '::'],
      port: 4264,
      cert: dataDir.cert,
      key: dataDir.key,
      stun: true,
      heartbeatMs: 2_500,
      helloTimeoutMs: 10_000,
      redisTtlMs: 10_000,
      maxConnectionsPerIp: 3,
    })
    expect(prepared.options.redis).toBeUndefined()
    expect(prepared.pin).toBe(dataDir.certificateHash)
    expect(prepared.fallBackToFreePort).toBe(false)
    expect(prepared.skipped).toEqual([])
  })

  it('skips "::" (and says so) when the machine has no IPv6, but keeps a lone "::"', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const noIpv6 = async () => false
    const both = await prepareBeacon({ ...base, config: parseServerConfig('', undefined), dataDir, ipv6Available: noIpv6 })
    expect(both.options.host).toEqual(['0.0.0.0'])
    expect(both.skipped).toEqual(['::'])
    const lone = await prepareBeacon({ ...base, config: parseServerConfig('[beacon]\nlistening-ip = "::"\n', undefined), dataDir, ipv6Available: noIpv6 })
    expect(lone.options.host).toEqual(['::'])
    expect(lone.skipped).toEqual([])
  })

  it('--loopback binds 127.0.0.1 and may fall back to a free port; --host and --beacon-port win; an explicit port is never replaced', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const config = parseServerConfig('', undefined)
    const loopback = await prepareBeacon({ ...base, loopback: true, config, dataDir })
    expect(loopback.options.host).toEqual(['127.0.0.1'])
    expect(loopback.fallBackToFreePort).toBe(true)
    const host = await prepareBeacon({ ...base, loopback: true, host: '::1', beaconPort: 0, config, dataDir })
    expect(host.options).toMatchObject({ host: ['::1'], port: 0 })
    expect(host.fallBackToFreePort).toBe(false)
    const explicit = await prepareBeacon({ ...base, loopback: true, config: parseServerConfig('[beacon]\nlistening-port = 4264\n', undefined), dataDir })
    expect(explicit.fallBackToFreePort).toBe(false)
  })

  it('[beacon] cert/pkey: the operator certificate, no pin; redis and instance-id pass through', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const own = createSelfSignedCertificate({ commonName: 'own' })
    await writeFile(join(dir, 'own.pem'), own.cert)
    await writeFile(join(dir, 'own.key'), own.key, { mode: 0o600 })
    const config = parseServerConfig(
      '[beacon]\ncert = "own.pem"\npkey = "own.key"\nredis = "redis://127.0.0.1:1"\ninstance-id = "b-1"\nstun = false\n',
      join(dir, 'server.toml'),
    )
    const prepared = await prepareBeacon({ ...base, config, dataDir })
    expect(prepared.pin).toBeUndefined()
    expect(prepared.options).toMatchObject({ cert: own.cert, key: own.key, redis: 'redis://127.0.0.1:1', instanceId: 'b-1', stun: false })
    if (process.platform !== 'win32') {
      await chmod(join(dir, 'own.key'), 0o644)
      expect(await codeOf(prepareBeacon({ ...base, config, dataDir }))).toBe('ERR_KEY_FILE_PERMISSIONS')
    }
  })

  it('ipv6Available() agrees with whether ::1 can be bound', async () => {
    const expected = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen({ host: '::1', port: 0 }, () => server.close(() => resolve(true)))
    })
    expect(await ipv6Available()).toBe(expected)
  })
})

describe('startBeacon in-process', () => {
  it('--loopback: a taken default port is replaced by a free one; without IPv6 the "::" address is skipped with a log line; metrics', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    // A port that is taken, standing in for the default 4264 (not set explicitly).
    const blocker = createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    const taken = (blocker.address() as { port: number }).port
    const parsed = parseServerConfig('', undefined)
    const config: ServerConfig = { ...parsed, beacon: { ...parsed.beacon, listeningPort: taken } }
    const { log, lines } = memoryLogger()
    const metrics = new ServerMetrics()
    const controller = new AbortController()
    const started = await startBeacon({ ...base, loopback: true, config, dataDir, log, addSecret: () => {}, metrics, signal: controller.signal })
    try {
      expect(started.report.port).not.toBe(taken)
      expect(started.report).toMatchObject({
        spec: `127.0.0.1:${started.report.port}#${dataDir.certificateHash}`,
        pinned: true,
        stunUrl: `stun:127.0.0.1:${started.report.port}`,
        registry: 'memory',
      })
      expect(lines().some((line) => line.msg === 'the Beacon port is in use; using a free port instead')).toBe(true)
      const text = await metrics.metrics()
      expect(text).toMatch(/^peerlink_beacon_connections 0$/m)
      expect(text).toMatch(/^peerlink_beacon_refused_total\{reason="auth"\} 0$/m)
      expect(text).toMatch(/^peerlink_beacon_stun_binding_responses_total 0$/m)
    } finally {
      await started.close()
      blocker.close()
    }
    // The metrics went with the server.
    expect(await metrics.metrics()).not.toContain('peerlink_beacon_')

    // Without IPv6, "::" is skipped and the start succeeds on the rest.
    const withV6 = parseServerConfig('[beacon]\nlistening-ip = ["127.0.0.1", "::"]\nlistening-port = 0\n', undefined)
    const second = memoryLogger()
    const noV6 = await startBeacon({ ...base, config: withV6, dataDir, log: second.log, addSecret: () => {}, metrics: undefined, signal: controller.signal, ipv6Available: async () => false })
    try {
      expect(noV6.report.addresses).toEqual([{ family: 'IPv4', host: '127.0.0.1', port: noV6.report.port }])
      expect(second.lines().find((line) => line.host === '::')?.msg).toBe('this machine has no IPv6: not listening on "::"')
    } finally {
      await noV6.close()
    }
  })

  it('a port taken by something else fails with ERR_SOCKET_BIND when the port was chosen explicitly', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const blocker = createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    try {
      const port = (blocker.address() as { port: number }).port
      const { log } = memoryLogger()
      const attempt = startBeacon({ ...base, loopback: true, beaconPort: port, config: parseServerConfig('', undefined), dataDir, log, addSecret: () => {}, metrics: undefined, signal: new AbortController().signal })
      expect(await codeOf(attempt)).toBe('ERR_SOCKET_BIND')
    } finally {
      blocker.close()
    }
  })
})

// ---------------------------------------------------------------------------------------
// The real bin/peerlink-server.

describe('bin/peerlink-server beacon', () => {
  beforeAll(async () => {
    await assertDistFresh(root, 'cli/peerlink-server')
  })

  const env = () => ({ PATH: process.env.PATH, HOME: dir, USERPROFILE: dir })

  interface Running {
    child: ChildProcess
    /** The `listening` JSON (with --json), or the stdout lines up to the `--beacon` line. */
    listening: Record<string, any>
    stdout: string
    stderr: () => string
    stop: (signal?: NodeJS.Signals) => Promise<number | null>
  }

  /** Starts the bin and waits for its `listening` line (--json) or the banner's `--beacon` line. */
  async function start(args: string[], json = true): Promise<Running> {
    const child = spawn(process.execPath, [bin, ...args, ...(json ? ['--json'] : [])], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = once(child, 'exit')
    const lines = createInterface({ input: child.stdout! })
    let stdout = ''
    const ready = new Promise<string>((resolve) => {
      lines.on('line', (line) => {
        stdout += `${line}\n`
        if (json || /^ {2}--beacon /.test(line)) resolve(line)
      })
    })
    const early = exited.then(([code]) => {
      throw new Error(`peerlink-server exited with ${code} before listening: ${stderr}`)
    })
    early.catch(() => {})
    const line = await Promise.race([ready, early])
    return {
      child,
      listening: json ? JSON.parse(line) : { beaconLine: line },
      stdout,
      stderr: () => stderr,
      stop: async (signal = 'SIGTERM') => {
        child.kill(signal)
        const [code] = (await exited) as [number | null]
        lines.close()
        return code
      },
    }
  }

  /** Whether a process with this pid still exists. */
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }

  it('beacon --loopback --json: two peers meet through the printed spec; a wrong pin is refused; the data dir is complete and reused', async () => {
    const dataDir = join(dir, 'data')
    const server = await start(['beacon', '--loopback', '--beacon-port', '0', '--metrics-port', '0', '--data-dir', dataDir])
    const clients: BeaconClient[] = []
    let spec: string
    let hash: string
    try {
      const { beacon, certificateHash } = server.listening
      expect(server.listening).toMatchObject({ event: 'listening', dataDir })
      expect(server.listening.stun).toBeUndefined()
      expect(server.listening.turn).toBeUndefined()
      spec = beacon.spec
      hash = certificateHash
      const match = /^127\.0\.0\.1:(\d+)#([A-Za-z0-9_-]{43})$/.exec(spec)
      expect(match).not.toBeNull()
      expect(match![2]).toBe(hash)
      expect(beacon).toMatchObject({ port: Number(match![1]), pinned: true, registry: 'memory', stunUrl: `stun:127.0.0.1:${match![1]}` })

      const alice = createIdentity()
      const bob = createIdentity()
      const a = await BeaconClient.connect({ identity: alice, server: spec, ...fast })
      clients.push(a)
      const b = await BeaconClient.connect({ identity: bob, server: spec, ...fast })
      clients.push(b)
      const topic = `cli-meet-${Math.random()}`
      await a.announce(topic)
      const toA = once(a, 'introduction', { signal: AbortSignal.timeout(5_000) }) as Promise<[Introduction]>
      const toB = once(b, 'introduction', { signal: AbortSignal.timeout(5_000) }) as Promise<[Introduction]>
      await b.announce(topic)
      const [[introA], [introB]] = await Promise.all([toA, toB])
      expect(introA.peerId).toBe(bob.peerId)
      expect(introB.peerId).toBe(alice.peerId)
      expect(introA.observed).toEqual([b.observed])

      const other = createSelfSignedCertificate()
      const wrongPin = BeaconClient.connect({ identity: createIdentity(), server: `127.0.0.1:${beacon.port}#${other.hash}`, ...fast })
      expect(await codeOf(wrongPin)).toBe('ERR_BEACON_CERT_MISMATCH')

      const metrics = await (await fetch(server.listening.metrics.url)).text()
      expect(metrics).toMatch(/^peerlink_beacon_connections 2$/m)
      expect(metrics).toMatch(/^peerlink_beacon_announcements 2$/m)
      expect(metrics).toMatch(/^peerlink_beacon_introductions_total 2$/m)
    } finally {
      await Promise.all(clients.map((client) => client.close()))
      expect(await server.stop()).toBe(0)
    }
    expect(alive(server.child.pid!)).toBe(false)
    expect(server.stderr()).toContain('"msg":"stopped"')

    expect((await readdir(dataDir)).sort()).toEqual(['cert.pem', 'certificate_hash.txt', 'key.pem', 'logs', 'peerlink-server.toml'])
    expect(await readFile(join(dataDir, 'certificate_hash.txt'), 'utf8')).toBe(`${hash}\n`)
    const toml = await readFile(join(dataDir, 'peerlink-server.toml'), 'utf8')
    expect(toml).toMatch(/^\[beacon\]$/m)
    expect(toml).toMatch(/^# listening-port = 4264$/m)
    expect(toml).toMatch(/^# redis = "redis:\/\/127\.0\.0\.1:6379"$/m)
    const log = await readFile(join(dataDir, 'logs', 'peerlink-server.log'), 'utf8')
    expect(log).toContain('Beacon listening')

    // `all` on the same directory: the same certificate, so the same pin.
    const again = await start(['all', '--loopback', '--beacon-port', '0', '--stun-port', '0', '--turn-port', '0', '--turns-port', '0', '--tunnel-port', '0', '--tunnel-http-port', '0', '--data-dir', dataDir])
    try {
      expect(again.listening.certificateHash).toBe(hash)
      expect(again.listening.beacon.spec).toBe(`127.0.0.1:${again.listening.beacon.port}#${hash}`)
      expect(again.listening.turn.urls).toHaveLength(3)
      expect(again.listening.stun.rfc5780).toBe(true)
      const client = await BeaconClient.connect({ identity: createIdentity(), server: again.listening.beacon.spec, ...fast })
      await client.close()
    } finally {
      expect(await again.stop('SIGINT')).toBe(0)
    }
    expect(alive(again.child.pid!)).toBe(false)
    expect(again.stderr()).not.toContain('"msg":"created"')
  })

  it('the banner prints the exact --beacon line a peer needs, and it works', async () => {
    const server = await start(['beacon', '--loopback', '--beacon-port', '0', '--data-dir', join(dir, 'data')], false)
    try {
      const hash = (await readFile(join(dir, 'data', 'certificate_hash.txt'), 'utf8')).trim()
      const match = /^ {2}--beacon (127\.0\.0\.1:(\d+)#(\S+))$/.exec(server.listening.beaconLine)
      expect(match).not.toBeNull()
      expect(match![3]).toBe(hash)
      expect(server.stdout).toContain(`  Beacon       ${match![1]}`)
      const client = await BeaconClient.connect({ identity: createIdentity(), server: match![1]!, ...fast })
      expect(client.state).toBe('connected')
      await client.close()
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('a config file with [beacon] is honoured (two addresses, no STUN); a bad [beacon] key exits 1 with ERR_CONFIG_INVALID', async () => {
    const config = join(dir, 'server.toml')
    await writeFile(config, '[beacon]\nlistening-ip = ["127.0.0.1", "::1"]\nlistening-port = 0\nstun = false\nmax-identifiers-per-connection = 1\n[log]\nlevel = "warn"\n')
    const v6 = await ipv6Available()
    if (!v6) await writeFile(config, '[beacon]\nlistening-ip = "127.0.0.1"\nlistening-port = 0\nstun = false\nmax-identifiers-per-connection = 1\n[log]\nlevel = "warn"\n')
    const server = await start(['beacon', '--config', config, '--data-dir', join(dir, 'data')])
    const clients: BeaconClient[] = []
    try {
      const { beacon } = server.listening
      expect(beacon.stunUrl).toBeUndefined()
      expect(beacon.addresses.map((a: { host: string }) => a.host)).toEqual(v6 ? ['127.0.0.1', '::1'] : ['127.0.0.1'])
      const client = await BeaconClient.connect({ identity: createIdentity(), server: beacon.spec, ...fast })
      clients.push(client)
      expect(client.limits).toMatchObject({ maxTopics: 1 })
      if (v6) {
        const over6 = await BeaconClient.connect({ identity: createIdentity(), server: `[::1]:${beacon.port}#${beacon.certificateHash}`, ...fast })
        clients.push(over6)
        expect(over6.observed).toMatchObject({ family: 'IPv6', host: '::1' })
      }
    } finally {
      await Promise.all(clients.map((client) => client.close()))
      expect(await server.stop()).toBe(0)
    }
    expect(server.stderr()).toBe('')

    await writeFile(config, '[beacon]\nlisten-port = 0\n')
    const child = spawn(process.execPath, [bin, 'beacon', '--config', config, '--data-dir', join(dir, 'data')], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    expect(code).toBe(1)
    expect(stderr).toBe(`peerlink-server: Config file ${config}: [beacon] listen-port: unknown key; did you mean listening-port? (ERR_CONFIG_INVALID)\n`)
  })
})
