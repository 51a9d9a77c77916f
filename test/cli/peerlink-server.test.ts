// Runs the real `bin/peerlink-server` (which loads the compiled dist/): `npm run build`
// first (`npm test` does it through "pretest"). Every server binds 127.0.0.x and port 0.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/peerlink-server.js'
import { createDgramEndpoint, stunBinding } from '../../src/stun/index.js'
import { TurnClient } from '../../src/turn/index.js'
import dgram from 'node:dgram'
import { assertDistFresh, captureIo } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin', 'peerlink-server')
const posix = process.platform !== 'win32'
let dir: string

beforeAll(async () => {
  await assertDistFresh(root, 'cli/peerlink-server')
})
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-server-cli-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const env = () => ({ PATH: process.env.PATH, HOME: dir, USERPROFILE: dir })

/** Runs the bin to completion (for commands that exit by themselves). */
function runToExit(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: dir, env: env(), timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr })
    })
  })
}

interface Running {
  child: ChildProcess
  listening: Record<string, any>
  stderr: () => string
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts the bin with --json and waits for its `listening` line. */
async function start(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [bin, ...args, '--json'], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
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
      child.kill(signal)
      const [code] = (await exited) as [number | null]
      return code
    },
  }
}

const mode = async (path: string) => (await stat(path)).mode & 0o777

describe('bin/peerlink-server: the data directory', () => {
  it('first run writes the files with the right modes; the second reuses them and prints the same hash', async () => {
    const dataDir = join(dir, 'data')
    const first = await start(['stun', '--loopback', '--stun-port', '0', '--data-dir', dataDir])
    expect(first.listening).toMatchObject({ event: 'listening', dataDir })
    expect(first.listening.stun.url).toMatch(/^stun:127\.0\.0\.1:\d+$/)
    expect(first.listening.stun.rfc5780).toBe(true)
    const hash = first.listening.certificateHash as string
    expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await first.stop()).toBe(0)
    expect(first.stderr()).toContain('"msg":"stopped"')

    expect((await readdir(dataDir)).sort()).toEqual(['cert.pem', 'certificate_hash.txt', 'key.pem', 'logs', 'peerlink-server.toml'])
    expect(await readFile(join(dataDir, 'certificate_hash.txt'), 'utf8')).toBe(`${hash}\n`)
    expect(await readFile(join(dataDir, 'peerlink-server.toml'), 'utf8')).toMatch(/^# listening-port = 3478$/m)
    if (posix) {
      expect(await mode(dataDir)).toBe(0o700)
      expect(await mode(join(dataDir, 'key.pem'))).toBe(0o600)
      expect(await mode(join(dataDir, 'peerlink-server.toml'))).toBe(0o600)
      expect(await mode(join(dataDir, 'logs'))).toBe(0o700)
    }
    const log = await readFile(join(dataDir, 'logs', 'peerlink-server.log'), 'utf8')
    expect(log.match(/"msg":"created"/g)).toHaveLength(6)

    const second = await start(['all', '--loopback', '--beacon-port', '0', '--stun-port', '0', '--turn-port', '0', '--turns-port', '0', '--tunnel-port', '0', '--tunnel-http-port', '0', '--data-dir', dataDir])
    expect(second.listening.certificateHash).toBe(hash)
    expect(await second.stop('SIGINT')).toBe(0)
    const log2 = await readFile(join(dataDir, 'logs', 'peerlink-server.log'), 'utf8')
    expect(log2.startsWith(log)).toBe(true)
    expect(log2.match(/"msg":"created"/g)).toHaveLength(6) // nothing new created (but the TURN secret)
    expect(second.listening.turn.urls[2]).toMatch(new RegExp(`#${hash}$`))
    expect(second.stderr()).not.toContain('"msg":"created"')
  })

  it('the STUN server it starts answers, and the config file is honoured', async () => {
    const config = join(dir, 'server.toml')
    await writeFile(config, '[stun]\nlistening-ip = "127.0.0.1"\nlistening-port = 0\nno-software-attribute = true\n[log]\nlevel = "warn"\n')
    const server = await start(['stun', '--config', config, '--data-dir', join(dir, 'data')])
    const socket = dgram.createSocket('udp4')
    try {
      expect(server.listening.stun.rfc5780).toBe(false)
      const port = Number(/:(\d+)$/.exec(server.listening.stun.url)![1])
      socket.bind(0, '127.0.0.1')
      await once(socket, 'listening')
      const result = await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port } })
      expect(result.mapped).toEqual({ family: 'IPv4', host: '127.0.0.1', port: socket.address().port })
    } finally {
      socket.close()
    }
    expect(await server.stop()).toBe(0)
    // With --config, the data directory gets no template; level warn keeps info lines out.
    expect(await readdir(join(dir, 'data'))).not.toContain('peerlink-server.toml')
    expect(server.stderr()).toBe('')
  })

  it('serves metrics with --metrics-port on loopback', async () => {
    const server = await start(['stun', '--loopback', '--stun-port', '0', '--metrics-port', '0', '--data-dir', join(dir, 'data')])
    try {
      const url: string = server.listening.metrics.url
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      const text = await (await fetch(url)).text()
      expect(text).toMatch(/^peerlink_stun_binding_responses_total 0$/m)
      expect(text).toContain('peerlink_process_resident_memory_bytes')
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })
})

describe('bin/peerlink-server: TURN', () => {
  it('turn --loopback prints URLs, a generated REST secret and a login that our TURN client can use over UDP and pinned TLS', async () => {
    const dataDir = join(dir, 'data')
    const server = await start(['turn', '--loopback', '--turn-port', '0', '--turns-port', '0', '--metrics-port', '0', '--data-dir', dataDir])
    const clients: TurnClient[] = []
    const sockets: dgram.Socket[] = []
    try {
      const { turn, certificateHash } = server.listening
      expect(server.listening.stun).toBeUndefined()
      const [udpUrl, tcpUrl, tlsUrl] = turn.urls as string[]
      expect(udpUrl).toMatch(/^turn:127\.0\.0\.1:\d+\?transport=udp$/)
      expect(tcpUrl).toMatch(/^turn:127\.0\.0\.1:\d+\?transport=tcp$/)
      expect(tlsUrl).toBe(`turns:127.0.0.1:${/:(\d+)#/.exec(tlsUrl)![1]}#${certificateHash}`)
      expect(turn.secret).toBe((await readFile(join(dataDir, 'turn_rest_secret.txt'), 'utf8')).trim())
      expect(turn.username).toMatch(/^\d+:peerlink$/)
      const credentials = { username: turn.username as string, password: turn.credential as string }

      const udp = async (password: string) => {
        const socket = dgram.createSocket('udp4')
        sockets.push(socket)
        socket.bind(0, '127.0.0.1')
        await once(socket, 'listening')
        const client = await TurnClient.connect({ server: udpUrl, endpoint: createDgramEndpoint(socket), credentials: { ...credentials, password } })
        clients.push(client)
        return client
      }
      expect((await (await udp(credentials.password)).allocate()).relayed.host).toBe('127.0.0.1')
      const tls = await TurnClient.connect({ server: tlsUrl, credentials })
      clients.push(tls)
      expect((await tls.allocate()).relayed.host).toBe('127.0.0.1')
      const wrong = await udp('wrong')
      await expect(wrong.allocate()).rejects.toMatchObject({ code: 'ERR_TURN_AUTH' })

      const metrics = await (await fetch(server.listening.metrics.url)).text()
      expect(metrics).toMatch(/^peerlink_turn_allocations 2$/m)
      expect(metrics).toMatch(/^peerlink_turn_allocations_created_total 2$/m)
      expect(metrics).toMatch(/^peerlink_turn_auth_failures_total [1-9]/m)
    } finally {
      await Promise.all(clients.map((client) => client.close().catch(() => {})))
      for (const socket of sockets) socket.close()
      expect(await server.stop()).toBe(0)
    }
    // Secrets never reach the logs.
    const log = await readFile(join(dataDir, 'logs', 'peerlink-server.log'), 'utf8')
    expect(log).toContain('TURN server listening')
    expect(log).not.toContain(server.listening.turn.secret)
    expect(log).not.toContain(server.listening.turn.credential)
    expect(server.stderr()).not.toContain(server.listening.turn.secret)
  })

  it('all --loopback runs the Beacon, TURN, the RFC 5780 STUN server beside it and the tunnel', async () => {
    const server = await start(['all', '--loopback', '--beacon-port', '0', '--turn-port', '0', '--turns-port', '0', '--stun-port', '0', '--tunnel-port', '0', '--tunnel-http-port', '0', '--data-dir', join(dir, 'data')])
    try {
      expect(server.listening.stun.rfc5780).toBe(true)
      expect(server.listening.turn.urls).toHaveLength(3)
      expect(server.listening.stun.url).not.toBe(server.listening.turn.stunUrl)
      expect(server.listening.beacon.spec).toBe(`127.0.0.1:${server.listening.beacon.port}#${server.listening.certificateHash}`)
      expect(server.listening.tunnel.url).toBe(`wss://127.0.0.1:${server.listening.tunnel.controlPort}#${server.listening.certificateHash}`)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })
})

describe('bin/peerlink-server: failures', () => {
  it('a bad config exits 1 naming the key (and suggesting the right one)', async () => {
    const config = join(dir, 'bad.toml')
    await writeFile(config, '[turn]\nlisten-port = 3478\n')
    const { code, stdout, stderr } = await runToExit(['stun', '--loopback', '--config', config, '--data-dir', join(dir, 'data')])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toBe(`peerlink-server: Config file ${config}: [turn] listen-port: unknown key; did you mean listening-port? (ERR_CONFIG_INVALID)\n`)
  })

  it('with --json, the error is one JSON line with its code', async () => {
    // The data directory's own config file is validated too.
    const dataDir = join(dir, 'data')
    const first = await start(['stun', '--loopback', '--stun-port', '0', '--data-dir', dataDir])
    await first.stop()
    await writeFile(join(dataDir, 'peerlink-server.toml'), '[metrics]\nport = "9641"\n')
    const { code, stdout, stderr } = await runToExit(['stun', '--loopback', '--data-dir', dataDir, '--json'])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    const error = JSON.parse(stderr.trim().split('\n').at(-1)!)
    expect(error).toMatchObject({ event: 'error', code: 'ERR_CONFIG_INVALID' })
    expect(error.message).toContain('[metrics] port must be a port number')
  })

  it.skipIf(!posix)('refuses a key.pem readable by others (exit 1, chmod hint)', async () => {
    const dataDir = join(dir, 'data')
    const first = await start(['stun', '--loopback', '--stun-port', '0', '--data-dir', dataDir])
    expect(await first.stop()).toBe(0)
    await chmod(join(dataDir, 'key.pem'), 0o644)
    const { code, stderr } = await runToExit(['stun', '--loopback', '--stun-port', '0', '--data-dir', dataDir])
    expect(code).toBe(1)
    expect(stderr).toContain(`chmod 600 "${join(dataDir, 'key.pem')}"`)
    expect(stderr).toContain('(ERR_KEY_FILE_PERMISSIONS)')
  })

  it('usage errors exit 2', async () => {
    const bad = [
      ['nonsense'],
      ['beacon', '--beacon-port', '4264x'],
      ['stun', '--stun-port', '99999'],
      ['turn', '--turns-port', '-1'],
      ['tunnel', '--tunnel-port', '70000'],
      ['tunnel', '--tunnel-http-port', 'x'],
      ['tunnel', '--tunnel-ports', '20000-'],
      ['stun', '--no-such-option'],
      [],
    ]
    // Concurrently: each is a Node start-up, slow on a busy CI machine.
    const results = await Promise.all(bad.map((args) => runToExit(args)))
    bad.forEach((args, i) => {
      const { code, stderr, stdout } = results[i]!
      expect(code).toBe(2)
      if (args.length > 0) expect(stderr).toMatch(/^peerlink-server: .*\nRun 'peerlink-server --help' for usage\.\n$/)
      else expect(stdout).toMatch(/^Usage: peerlink-server all\|beacon\|stun\|turn\|tunnel /)
    })
    const help = await runToExit(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--data-dir DIR')
    expect(help.stdout).toContain('--tunnel-port PORT')
    // Nothing was written for usage errors.
    expect(await readdir(dir)).toEqual([])
  }, 60_000)
})

describe('main() in-process', () => {
  it('stops cleanly when io.signal aborts, and an abort during startup is a clean stop too', async () => {
    const controller = new AbortController()
    const captured = captureIo(dir)
    let resolveLine: (line: string) => void
    const line = new Promise<string>((resolve) => (resolveLine = resolve))
    const io = {
      ...captured.io,
      signal: controller.signal,
      stdout: { write: (text: string) => resolveLine(text) },
    }
    const done = main(['stun', '--loopback', '--stun-port', '0', '--json', '--data-dir', 'data'], io)
    const listening = JSON.parse(await line)
    expect(listening.dataDir).toBe(join(dir, 'data'))
    controller.abort()
    expect(await done).toBe(0)

    const aborted = captureIo(dir)
    expect(await main(['stun', '--loopback', '--stun-port', '0', '--data-dir', 'data'], { ...aborted.io, signal: AbortSignal.abort() })).toBe(0)
    expect(aborted.stdout()).toBe('')
  })
})
