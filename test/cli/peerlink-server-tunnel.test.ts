// `peerlink-server tunnel` and the tunnel in `all`: option building and fallbacks
// (in-process), and the real `bin/peerlink-server` with the real `bin/peerlink expose`
// and curl (both load the compiled dist/: `npm run build` first; `npm test` does it
// through "pretest"). Every server binds 127.0.0.1 and port 0, and public ports come
// from a range found free just before.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type Logger, pino } from 'pino'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/peerlink-server.js'
import { TUNNEL_TOKEN_FILE, prepareTunnel, startTunnel } from '../../src/cli/peerlink-server-tunnel.js'
import { PeerlinkError } from '../../src/errors.js'
import { openDataDir } from '../../src/server/data-dir.js'
import { ServerMetrics } from '../../src/server/metrics.js'
import { exposeServices } from '../../src/tunnel/tunnel-client.js'
import { closeServer, exchange, freePortRange, portOf, startEcho, startHttpEcho, until } from '../server/tunnel/helpers.js'
import { assertDistFresh, captureIo } from './helpers.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const serverBin = join(root, 'bin', 'peerlink-server')
const peerlinkBin = join(root, 'bin', 'peerlink')
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-tunnel-cli-'))
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

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(PeerlinkError)
    return (err as PeerlinkError).code
  }
  throw new Error('expected a rejection')
}

/** A TCP server on 127.0.0.1 port 0 that holds the port. */
async function blocker(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: portOf(server), close: () => new Promise((resolve) => server.close(() => resolve())) }
}

describe('prepareTunnel / startTunnel in-process', () => {
  it('--loopback may replace default ports, never ports set in the file or on the command line', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const loopback = await prepareTunnel({ loopback: true, host: undefined, section: {}, dataDir })
    expect(loopback.fallBackToFreePort).toBe(true)
    expect(loopback.options).toMatchObject({ listeningIps: ['127.0.0.1'], publicHost: '127.0.0.1' })
    const fromFile = await prepareTunnel({ loopback: true, host: undefined, section: { controlPort: 8443 }, explicit: new Set(['controlPort']), dataDir })
    expect(fromFile.fallBackToFreePort).toBe(false)
    const fromCli = await prepareTunnel({ loopback: true, host: undefined, httpPort: 0, section: {}, dataDir })
    expect(fromCli.fallBackToFreePort).toBe(false)
    expect(fromCli.options.httpPort).toBe(0)
    const range = await prepareTunnel({ loopback: false, host: '::1', allowPorts: '30000-30009', section: { allowPorts: '20000-20009', publicHost: 'tunnel.example.com' }, dataDir })
    expect(range.options).toMatchObject({ listeningIps: ['::1'], allowPorts: '30000-30009', publicHost: 'tunnel.example.com' })
    expect(range.fallBackToFreePort).toBe(false)
  })

  it('a taken default port is replaced by a free one (with a log line); metrics come and go with the server', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    // A port that is taken, standing in for the default 8443 (not set explicitly).
    const taken = await blocker()
    const { log, lines } = memoryLogger()
    const metrics = new ServerMetrics()
    try {
      const started = await startTunnel({ loopback: true, host: undefined, section: { controlPort: taken.port, httpPort: 0 }, dataDir, log, addSecret: () => {}, metrics, signal: new AbortController().signal })
      try {
        expect(started.report.controlPort).not.toBe(taken.port)
        expect(started.report.url).toBe(`wss://127.0.0.1:${started.report.controlPort}#${dataDir.certificateHash}`)
        expect(lines().some((line) => line.msg === 'a tunnel port is in use; using free ports instead')).toBe(true)
        const text = await metrics.metrics()
        expect(text).toMatch(/^peerlink_tunnel_devices 0$/m)
        expect(text).toMatch(/^peerlink_tunnel_connections_total 0$/m)
        expect(text).toMatch(/^peerlink_tunnel_bytes_to_devices_total 0$/m)
      } finally {
        await started.close()
      }
      expect(await metrics.metrics()).not.toContain('peerlink_tunnel_')
      // Chosen explicitly, a taken port is an error.
      const explicit = startTunnel({ loopback: true, host: undefined, controlPort: taken.port, section: {}, dataDir, log, addSecret: () => {}, metrics: undefined, signal: new AbortController().signal })
      expect(await codeOf(explicit)).toBe('ERR_SOCKET_BIND')
    } finally {
      await taken.close()
    }
  })
})

describe('main() in-process: the banner', () => {
  it('--loopback prints the exact `peerlink expose` line, with the token; it works', async () => {
    const captured = captureIo(dir)
    const controller = new AbortController()
    let banner = ''
    const printed = new Promise<void>((resolve) => {
      captured.io.stdout.write = (text: string) => {
        banner += text
        resolve()
      }
    })
    const done = main(['tunnel', '--loopback', '--tunnel-port', '0', '--tunnel-http-port', '0', '--tunnel-ports', await freePortRange(2), '--data-dir', 'data'], { ...captured.io, signal: controller.signal })
    const echo = await startEcho()
    try {
      await Promise.race([printed, done.then((code) => Promise.reject(new Error(`exited ${code}: ${captured.stderr()}`)))])
      const token = (await readFile(join(dir, 'data', TUNNEL_TOKEN_FILE), 'utf8')).trim()
      const hash = (await readFile(join(dir, 'data', 'certificate_hash.txt'), 'utf8')).trim()
      const line = /^ {2}\.\/bin\/peerlink expose 3000 --name NAME --tunnel (wss:\/\/127\.0\.0\.1:(\d+)#(\S+)) --token (\S+)$/m.exec(banner)
      expect(line, banner).not.toBeNull()
      expect(line![3]).toBe(hash)
      expect(line![4]).toBe(token)
      expect(banner).toMatch(new RegExp(`^ {2}Tunnel {7}wss://127\\.0\\.0\\.1:${line![2]}#${hash} {4}\\(control WebSocket; HTTP by name http://NAME\\.localhost:\\d+/; public TCP ports \\d+-\\d+; in memory\\)$`, 'm'))
      expect(banner).toContain(`  Tunnel token ${token}\n`)
      const client = await exposeServices({ servers: line![1]!, ports: [portOf(echo)], token: line![4]!, name: 'banner' })
      try {
        const data = Buffer.from('the banner line works')
        expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
      } finally {
        await client.close()
      }
    } finally {
      controller.abort()
      expect(await done).toBe(0)
      await closeServer(echo)
    }
    // The token never reaches the logs.
    const token = (await readFile(join(dir, 'data', TUNNEL_TOKEN_FILE), 'utf8')).trim()
    expect(captured.stderr()).not.toContain(token)
    expect(await readFile(join(dir, 'data', 'logs', 'peerlink-server.log'), 'utf8')).not.toContain(token)
  })

  it('without --loopback the token stays in its file, and the expose line reads it from there', async () => {
    const captured = captureIo(dir)
    const controller = new AbortController()
    let banner = ''
    const printed = new Promise<void>((resolve) => {
      captured.io.stdout.write = (text: string) => {
        banner += text
        resolve()
      }
    })
    const done = main(['tunnel', '--host', '127.0.0.1', '--tunnel-port', '0', '--tunnel-http-port', '0', '--data-dir', 'data'], { ...captured.io, signal: controller.signal })
    try {
      await Promise.race([printed, done.then((code) => Promise.reject(new Error(`exited ${code}: ${captured.stderr()}`)))])
      const file = join(dir, 'data', TUNNEL_TOKEN_FILE)
      const token = (await readFile(file, 'utf8')).trim()
      expect(banner).not.toContain(token)
      expect(banner).toContain(`  Tunnel token in ${file}\n`)
      expect(banner).toMatch(new RegExp(`--tunnel wss://127\\.0\\.0\\.1:\\d+#\\S+ --token "\\$\\(cat ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)"\\n`))
    } finally {
      controller.abort()
      expect(await done).toBe(0)
    }
  })
})

// ---------------------------------------------------------------------------------------
// The real bin/peerlink-server, bin/peerlink and curl.

const env = () => ({ PATH: process.env.PATH, HOME: dir, USERPROFILE: dir })

interface Running {
  child: ChildProcess
  listening: Record<string, any>
  stderr: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts bin/peerlink-server with --json and waits for its `listening` line. */
async function startBin(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [serverBin, ...args, '--json'], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = once(child, 'exit')
  const lines = createInterface({ input: child.stdout! })
  const first = once(lines, 'line') as Promise<[string]>
  const early = exited.then(([code]) => {
    throw new Error(`peerlink-server exited with ${code} before listening: ${stderr}`)
  })
  early.catch(() => {})
  const [line] = await Promise.race([first, early])
  lines.close()
  return {
    child,
    listening: JSON.parse(line),
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      const [code] = (await exited) as [number | null]
      return code
    },
  }
}

/** Collects a child's output lines. */
function outputLines(child: ChildProcess, stream: 'stdout' | 'stderr'): string[] {
  const out: string[] = []
  let rest = ''
  child[stream]!.setEncoding('utf8')
  child[stream]!.on('data', (text: string) => {
    rest += text
    const parts = rest.split('\n')
    rest = parts.pop()!
    out.push(...parts)
  })
  return out
}

/** curl with a Host header; resolves with the status and the body. */
async function curl(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '10', '-H', `Host: ${host}`, '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`])
  const cut = stdout.lastIndexOf('\n')
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) }
}

describe('bin/peerlink-server tunnel with bin/peerlink expose and curl', () => {
  let web: Server
  let echo: net.Server

  beforeAll(async () => {
    await assertDistFresh(root, 'cli/peerlink-server')
    // bin/peerlink runs `expose` (the rest of the command is not involved here).
    await assertDistFresh(root, 'cli/commands/expose')
    web = await startHttpEcho()
    echo = await startEcho()
  })
  afterAll(async () => {
    if (web !== undefined) await closeServer(web)
    if (echo !== undefined) await closeServer(echo)
  })

  it('tunnel --loopback --json: curl by Host and raw TCP reach the local services, 50 connections at once, metrics, the offline page', async () => {
    const dataDir = join(dir, 'data')
    const server = await startBin(['tunnel', '--loopback', '--data-dir', dataDir, '--tunnel-port', '0', '--tunnel-http-port', '0', '--tunnel-ports', await freePortRange(4), '--metrics-port', '0'])
    let expose: ChildProcess | undefined
    try {
      const { tunnel, certificateHash } = server.listening
      expect(server.listening).toMatchObject({ event: 'listening', dataDir, certificateHash: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) })
      expect(server.listening.beacon).toBeUndefined()
      expect(server.listening.turn).toBeUndefined()
      expect(tunnel.url).toBe(`wss://127.0.0.1:${tunnel.controlPort}#${certificateHash}`)
      expect(tunnel.httpUrlPattern).toBe(`http://NAME.localhost:${tunnel.httpPort}/`)
      expect(tunnel.token).toBe((await readFile(join(dataDir, TUNNEL_TOKEN_FILE), 'utf8')).trim())
      expect(tunnel.tokenFile).toBe(join(dataDir, TUNNEL_TOKEN_FILE))
      expect(tunnel.state).toBe('memory')

      expose = spawn(process.execPath, [peerlinkBin, 'expose', `${portOf(web)},${portOf(echo)}`, '--tunnel', tunnel.url, '--name', 'kitchen', '--token', tunnel.token, '--json'], {
        cwd: dir,
        env: env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const out = outputLines(expose, 'stdout')
      const errors = outputLines(expose, 'stderr')
      const exposeExited = once(expose, 'exit')
      await until(() => out.length > 0, 15_000, 'the endpoints of peerlink expose').catch((err: Error) => {
        throw new Error(`${err.message}; its stderr: ${errors.join('\n')}`)
      })
      const endpoints = JSON.parse(out[0]!) as { name: string; httpUrl: string; ports: Array<{ local: number; public: number }> }
      expect(endpoints).toMatchObject({ name: 'kitchen', httpUrl: `http://kitchen.localhost:${tunnel.httpPort}/` })

      // HTTP by name: curl to the HTTP port with the device's Host header.
      const answer = await curl(tunnel.httpPort, `kitchen.localhost:${tunnel.httpPort}`, '/hello?x=1')
      expect(answer.status).toBe(200)
      expect(JSON.parse(answer.body)).toMatchObject({ method: 'GET', url: '/hello?x=1', headers: { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http' } })
      expect((await curl(tunnel.httpPort, 'nobody.localhost', '/')).status).toBe(404)

      // Raw TCP through the echo service's public port, 50 connections at once.
      const tcp = endpoints.ports.find((p) => p.local === portOf(echo))!
      const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000 + i * 997, i))
      const echoed = await Promise.all(payloads.map((data) => exchange(tcp.public, data)))
      for (const [i, data] of echoed.entries()) expect(data.equals(payloads[i]!)).toBe(true)

      const metrics = await (await fetch(server.listening.metrics.url)).text()
      expect(metrics).toMatch(/^peerlink_tunnel_devices 1$/m)
      expect(metrics).toMatch(/^peerlink_tunnel_connections_total 5[1-9]$/m)
      expect(metrics).toMatch(/^peerlink_tunnel_http_requests_total 2$/m)

      // The device goes: its name gets the offline page.
      expose.kill('SIGINT')
      expect((await exposeExited)[0]).toBe(0)
      const offline = await curl(tunnel.httpPort, 'kitchen.localhost', '/')
      expect(offline.status).toBe(503)
      expect(offline.body).toContain('offline')
    } finally {
      expose?.kill('SIGKILL')
      expect(await server.stop()).toBe(0)
    }
    expect((await readdir(dataDir)).sort()).toEqual(['cert.pem', 'certificate_hash.txt', 'key.pem', 'logs', 'peerlink-server.toml', TUNNEL_TOKEN_FILE])
    const log = await readFile(join(dataDir, 'logs', 'peerlink-server.log'), 'utf8')
    expect(log).toContain('tunnel server listening')
    expect(log).not.toContain(server.listening.tunnel.token)
    expect(server.stderr()).not.toContain(server.listening.tunnel.token)
    expect(await readFile(join(dataDir, 'peerlink-server.toml'), 'utf8')).toMatch(/^\[tunnel\]\n(?:.*\n)*# control-port = 8443$/m)
  }, 60_000)

  it('a [tunnel] section in --config is honoured (plain ws://, configured token, domain)', async () => {
    const config = join(dir, 'server.toml')
    await writeFile(config, `[tunnel]\nlistening-ip = "127.0.0.1"\ncontrol-port = 0\nhttp-port = 0\nno-tls = true\ntokens = ["configured-device-token"]\ndomain = "tunnel.test"\nallow-ports = "${await freePortRange(2)}"\n[log]\nlevel = "warn"\n`)
    const server = await startBin(['tunnel', '--config', config, '--data-dir', join(dir, 'data')])
    try {
      const { tunnel } = server.listening
      expect(tunnel.url).toBe(`ws://127.0.0.1:${tunnel.controlPort}`)
      expect(tunnel.token).toBeUndefined()
      expect(tunnel.tokenFile).toBeUndefined()
      expect(tunnel.httpUrlPattern).toBe(`http://NAME.tunnel.test:${tunnel.httpPort}/`)
      const client = await exposeServices({ servers: tunnel.url, ports: [portOf(web)], token: 'configured-device-token', name: 'cfg' })
      try {
        const answer = await curl(tunnel.httpPort, 'cfg.tunnel.test', '/cfg')
        expect(answer.status).toBe(200)
        expect(JSON.parse(answer.body).url).toBe('/cfg')
      } finally {
        await client.close()
      }
    } finally {
      expect(await server.stop()).toBe(0)
    }
    expect(await readdir(join(dir, 'data'))).not.toContain(TUNNEL_TOKEN_FILE)
    expect(server.stderr()).toBe('')
  }, 30_000)

  it('all --loopback runs the tunnel beside the Beacon, TURN and STUN', async () => {
    const range = await freePortRange(2)
    const server = await startBin(['all', '--loopback', '--beacon-port', '0', '--stun-port', '0', '--turn-port', '0', '--turns-port', '0', '--tunnel-port', '0', '--tunnel-http-port', '0', '--tunnel-ports', range, '--data-dir', join(dir, 'data')])
    try {
      const { beacon, turn, stun, tunnel, certificateHash } = server.listening
      expect(beacon.spec).toBe(`127.0.0.1:${beacon.port}#${certificateHash}`)
      expect(turn.urls).toHaveLength(3)
      expect(stun.rfc5780).toBe(true)
      expect(tunnel.url).toBe(`wss://127.0.0.1:${tunnel.controlPort}#${certificateHash}`)
      expect(tunnel.allowPorts).toBe(range)
      expect(typeof tunnel.token).toBe('string')
      const client = await exposeServices({ servers: tunnel.url, ports: [portOf(echo)], token: tunnel.token })
      try {
        const data = Buffer.from('through all')
        expect((await exchange(client.endpoints!.ports[0]!.public, data)).equals(data)).toBe(true)
      } finally {
        await client.close()
      }
    } finally {
      expect(await server.stop('SIGINT')).toBe(0)
    }
  }, 30_000)
})
