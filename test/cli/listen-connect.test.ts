// `peerlink listen` and `peerlink connect` as real child processes of bin/peerlink (which
// runs the compiled dist/: `npm run build` first; `npm test` does it through "pretest"),
// meeting through an in-process Beacon on 127.0.0.1, each offering only 127.0.0.1 as its
// host candidate (--host-address).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { type AddressInfo, type Server, type Socket, connect as tcpConnect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/peerlink.js'
import { createIdentity } from '../../src/identity/index.js'
import type { BeaconServer } from '../../src/server/beacon/index.js'
import { specOf, startBeacon } from '../beacon/helpers.js'
import { TOKEN, startTunnel, urlOf } from '../server/tunnel/helpers.js'
import { assertDistFresh, captureIo } from './helpers.js'
import { sha256 } from '../testing/stream-data.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin', 'peerlink')
const PEER_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/

let beacon: BeaconServer
let spec: string
let dir: string
const children = new Set<Child>()

beforeAll(async () => {
  await assertDistFresh(root, 'cli/peerlink')
  beacon = await startBeacon()
  spec = specOf(beacon)
})
afterAll(async () => {
  await beacon?.close()
})
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-listen-'))
})
afterEach(async () => {
  // A failed test may leave children behind: kill them, and wait until they are gone.
  for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL')
  await Promise.all([...children].map((child) => child.exited))
  children.clear()
  await rm(dir, { recursive: true, force: true })
})

interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** Everything written to stdout so far. */
  stdout(): Buffer
  /** Everything written to stderr so far. */
  stderr(): string
  /** The `--json` lines on stderr so far. */
  events(): Array<Record<string, unknown>>
  /** Resolves with the first event that matches. */
  event(match: (event: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>
  /** Resolves with the first line of stdout. */
  firstLine(ms?: number): Promise<string>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts `bin/peerlink ARGS` with its own key file and home in the test directory. */
function peerlink(args: string[], name = 'peer'): Child {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir, USERPROFILE: dir, PEERLINK_KEY: join(dir, `${name}.key`) },
  })
  const out: Buffer[] = []
  let err = ''
  let changed: () => void = () => {}
  const waitChange = () => new Promise<void>((resolve) => (changed = resolve))
  child.stdout.on('data', (chunk: Buffer) => {
    out.push(chunk)
    changed()
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    err += chunk
    changed()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      resolve({ code, signal })
      changed()
    }),
  )
  const events = () =>
    err
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  const until = async <T>(find: () => T | undefined, what: string, ms: number): Promise<T> => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = find()
      if (found !== undefined) return found
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`peerlink ${args[0]} exited before ${what}; stderr:\n${err}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; stderr:\n${err}`)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([waitChange(), new Promise((resolve) => (timer = setTimeout(resolve, left)))])
      clearTimeout(timer)
    }
  }
  const result: Child = {
    process: child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    events,
    event: (match, ms = 15_000) => until(() => events().find(match), 'an event', ms),
    firstLine: (ms = 15_000) =>
      until(
        () => {
          const text = Buffer.concat(out).toString('latin1')
          const end = text.indexOf('\n')
          return end < 0 ? undefined : text.slice(0, end)
        },
        'the first stdout line',
        ms,
      ),
    exited,
  }
  children.add(result)
  return result
}

const common = () => ['--beacon', spec, '--host-address', '127.0.0.1']

/** A TCP echo server on 127.0.0.1 (half-close aware), and its open connections. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Set<Socket>; close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Sends `data` through a new TCP connection to 127.0.0.1:port, half-closes, and returns all it got back. */
async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  const socket = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true })
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.end(data)
  const [hadError] = (await once(socket, 'close')) as [boolean]
  if (hadError) throw new Error('the forwarded connection failed')
  return Buffer.concat(chunks)
}

describe('peerlink listen / connect (stdin/stdout)', () => {
  it('pipes 1 MB of random data each way intact, and both exit 0 once both directions ended', async () => {
    const fromListener = randomBytes(1024 * 1024)
    const fromConnector = randomBytes(1024 * 1024)
    const listener = peerlink(['listen', ...common()], 'listener')
    const peerId = await listener.firstLine()
    expect(peerId).toMatch(PEER_ID)
    listener.process.stdin.end(fromListener)

    const connector = peerlink(['connect', peerId, ...common()], 'connector')
    connector.process.stdin.end(fromConnector)
    const [l, c] = await Promise.all([listener.exited, connector.exited])
    expect(c).toEqual({ code: 0, signal: null })
    expect(l).toEqual({ code: 0, signal: null })
    expect(sha256(connector.stdout())).toBe(sha256(fromListener))
    const listenerOut = listener.stdout()
    expect(listenerOut.subarray(0, peerId.length + 1).toString()).toBe(`${peerId}\n`)
    expect(sha256(listenerOut.subarray(peerId.length + 1))).toBe(sha256(fromConnector))
    expect(connector.stderr()).toMatch(new RegExp(`connected to ${peerId} \\(direct, 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:\\d+, \\d+ ms\\)`))
    expect(listener.stderr()).toContain(`listening as ${peerId}`)
    expect(listener.stderr()).toMatch(/connection from 12D3KooW\S+ \(direct, /)
  })

  it('--json: every attempt step and the result as JSON lines with path, peer and ms; stdout carries only data', async () => {
    const listener = peerlink(['listen', ...common(), '--json'], 'listener')
    const listening = await listener.event((e) => e.event === 'listening')
    const peerId = listening.peer as string
    expect(peerId).toMatch(PEER_ID)
    expect(listening.beacons).toEqual([spec])
    listener.process.stdin.end('from the listener')

    const connector = peerlink(['connect', peerId, ...common(), '--json'], 'connector')
    connector.process.stdin.end('from the connector')
    expect(await connector.exited).toEqual({ code: 0, signal: null })
    expect(await listener.exited).toEqual({ code: 0, signal: null })
    expect(connector.stdout().toString()).toBe('from the listener')
    expect(listener.stdout().toString()).toBe('from the connector')

    // Every stderr line is JSON.
    for (const child of [listener, connector]) {
      const lines = child.stderr().split('\n').filter((line) => line.length > 0)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
    }
    const keyCreated = connector.events().find((e) => e.event === 'key-created')
    const connectorId = keyCreated?.peerId as string
    expect(connectorId).toMatch(PEER_ID)

    const steps = connector.events().filter((e) => e.event === 'attempt')
    expect(steps.map((e) => e.step)).toEqual(expect.arrayContaining(['answer', 'selected', 'verified']))
    for (const step of steps) expect(step).toMatchObject({ peer: peerId, initiator: true, ms: expect.any(Number) })
    const connected = connector.events().find((e) => e.event === 'connected')
    expect(connected).toMatchObject({
      path: 'direct',
      peer: peerId,
      initiator: true,
      local: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      localType: 'host',
      ms: expect.any(Number),
      iceMs: expect.any(Number),
      handshakeMs: expect.any(Number),
    })
    expect(connected!.ms as number).toBeGreaterThan(0)
    expect(connected!.ms as number).toBeLessThan(10_000)

    const accepted = listener.events().find((e) => e.event === 'connected')
    expect(accepted).toMatchObject({ path: 'direct', peer: connectorId, initiator: false, ms: expect.any(Number) })
    expect(listener.events().filter((e) => e.event === 'attempt').map((e) => e.step)).toEqual(expect.arrayContaining(['offer', 'verified']))
    // The addresses agree: each side's local is the other's remote.
    expect(accepted!.remote).toBe(connected!.local)
    expect(accepted!.local).toBe(connected!.remote)
  })

  it('without --forward, refuses a second connection while the first is joined', async () => {
    const listener = peerlink(['listen', ...common(), '--json'], 'listener')
    const peerId = (await listener.event((e) => e.event === 'listening')).peer as string
    const first = peerlink(['connect', peerId, ...common(), '--json'], 'first')
    await first.event((e) => e.event === 'connected')
    await listener.event((e) => e.event === 'connected')

    const second = peerlink(['connect', peerId, ...common(), '--json'], 'second')
    expect((await second.exited).code).toBe(1)
    expect(second.events().at(-1)).toMatchObject({ event: 'error', code: 'ERR_CONNECTION_CLOSED' })
    await listener.event((e) => e.event === 'refused')

    // The first connection is unharmed.
    listener.process.stdin.end('still here')
    first.process.stdin.end('me too')
    expect(await first.exited).toEqual({ code: 0, signal: null })
    expect(await listener.exited).toEqual({ code: 0, signal: null })
    expect(first.stdout().toString()).toBe('still here')
    expect(listener.stdout().toString()).toBe('me too')
  })

  it('SIGINT stops a joined connect with exit 0; the listener sees the connection fail (exit 1), not a clean end', async () => {
    const listener = peerlink(['listen', ...common(), '--json'], 'listener')
    const peerId = (await listener.event((e) => e.event === 'listening')).peer as string
    const connector = peerlink(['connect', peerId, ...common(), '--json'], 'connector')
    connector.process.stdin.write('partial')
    // Both sides: the listener may have its connection before the connector's connect()
    // has resolved (the connector's first stream frame travels with its last handshake
    // message), and a SIGINT while connecting is an abort (exit 1).
    await Promise.all([listener.event((e) => e.event === 'connected'), connector.event((e) => e.event === 'connected')])
    connector.process.kill('SIGINT')
    expect(await connector.exited).toEqual({ code: 0, signal: null })
    expect(await listener.exited).toEqual({ code: 1, signal: null })
    expect(listener.events().at(-1)).toMatchObject({ event: 'error', code: 'ERR_CONNECTION_CLOSED' })
  })

  it('SIGINT stops a listener that is still waiting, exit 0', async () => {
    const listener = peerlink(['listen', ...common()], 'listener')
    await listener.firstLine()
    listener.process.kill('SIGINT')
    expect(await listener.exited).toEqual({ code: 0, signal: null })
  })

  it('connect to a PeerId nobody listens for exits 1 with ERR_PEER_NOT_FOUND quickly', async () => {
    const stranger = createIdentity().peerId
    const started = Date.now()
    const connector = peerlink(['connect', stranger, ...common(), '--json', '--timeout', '20000'], 'connector')
    connector.process.stdin.end()
    expect(await connector.exited).toEqual({ code: 1, signal: null })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(connector.stdout().length).toBe(0)
    expect(connector.events().at(-1)).toMatchObject({ event: 'error', code: 'ERR_PEER_NOT_FOUND' })

    const human = peerlink(['connect', stranger, ...common()], 'human')
    human.process.stdin.end()
    expect((await human.exited).code).toBe(1)
    expect(human.stderr()).toMatch(/^peerlink: .*\(ERR_PEER_NOT_FOUND\)$/m)
  })
})

describe('peerlink listen --forward / connect --local-port', () => {
  it('forwards 10 concurrent TCP connections intact, each over its own stream; SIGINT exits 0 and leaves nothing', async () => {
    const echo = await echoServer()
    try {
      const listener = peerlink(['listen', ...common(), '--forward', `127.0.0.1:${echo.port}`, '--json'], 'listener')
      const listening = await listener.event((e) => e.event === 'listening')
      const peerId = listening.peer as string
      expect(listening.forward).toBe(`127.0.0.1:${echo.port}`)

      const connector = peerlink(['connect', peerId, ...common(), '--local-port', '0', '--json'], 'connector')
      const local = await connector.event((e) => e.event === 'local-port')
      expect(local).toMatchObject({ address: '127.0.0.1', peer: peerId, port: expect.any(Number) })
      const port = local.port as number

      const payloads = Array.from({ length: 10 }, (_, i) => randomBytes(64 * 1024 + i * 4099))
      const replies = await Promise.all(payloads.map((payload) => roundTrip(port, payload)))
      replies.forEach((reply, i) => expect(sha256(reply)).toBe(sha256(payloads[i]!)))
      // One connection: the listener saw a single verified connection for all ten.
      expect(listener.events().filter((e) => e.event === 'connected')).toHaveLength(1)
      expect(connector.events().filter((e) => e.event === 'attempt' && e.step === 'verified')).toHaveLength(1)
      expect(listener.events().filter((e) => e.event === 'forward-error')).toEqual([])

      connector.process.kill('SIGINT')
      expect(await connector.exited).toEqual({ code: 0, signal: null })
      listener.process.kill('SIGINT')
      expect(await listener.exited).toEqual({ code: 0, signal: null })

      // Nothing left: the target's connections are closed, the local port is closed, and
      // the Beacon no longer knows the listener.
      const deadline = Date.now() + 5_000
      while (echo.sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      expect(echo.sockets.size).toBe(0)
      const refused = tcpConnect({ host: '127.0.0.1', port })
      const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
      expect(error.code).toBe('ECONNREFUSED')
      const late = peerlink(['connect', peerId, ...common(), '--json'], 'late')
      late.process.stdin.end()
      expect((await late.exited).code).toBe(1)
      expect(late.events().at(-1)).toMatchObject({ event: 'error', code: 'ERR_PEER_NOT_FOUND' })
    } finally {
      await echo.close()
    }
  })

  it('forwards the main stream of a plain connect (stdin/stdout) to the target', async () => {
    const echo = await echoServer()
    try {
      const listener = peerlink(['listen', ...common(), '--forward', `127.0.0.1:${echo.port}`], 'listener')
      const peerId = await listener.firstLine()
      const data = randomBytes(256 * 1024)
      const connector = peerlink(['connect', peerId, ...common(), '--json'], 'connector')
      connector.process.stdin.write(data)
      await connector.event((e) => e.event === 'connected')
      // A second connection while the first is open (a second ICE session on the
      // listener's one socket), then a later one: --forward keeps accepting.
      const second = peerlink(['connect', peerId, ...common()], 'second')
      second.process.stdin.end('hello from the second')
      expect(await second.exited).toEqual({ code: 0, signal: null })
      expect(second.stdout().toString()).toBe('hello from the second')
      connector.process.stdin.end()
      expect(await connector.exited).toEqual({ code: 0, signal: null })
      expect(sha256(connector.stdout())).toBe(sha256(data))
      const again = peerlink(['connect', peerId, ...common()], 'second')
      again.process.stdin.end('hello again')
      expect(await again.exited).toEqual({ code: 0, signal: null })
      expect(again.stdout().toString()).toBe('hello again')
      listener.process.kill('SIGTERM')
      expect(await listener.exited).toEqual({ code: 0, signal: null })
    } finally {
      await echo.close()
    }
  })

  it('a target that refuses closes just that stream: the local TCP connection, not the connection', async () => {
    // A port with nothing listening: bind one, note it, close it.
    const probe = createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const deadPort = (probe.address() as AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))

    const listener = peerlink(['listen', ...common(), '--forward', `127.0.0.1:${deadPort}`, '--json'], 'listener')
    const peerId = (await listener.event((e) => e.event === 'listening')).peer as string
    const connector = peerlink(['connect', peerId, ...common(), '--local-port', '0', '--json'], 'connector')
    const port = (await connector.event((e) => e.event === 'local-port')).port as number
    for (let i = 0; i < 2; i++) {
      const socket = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true })
      const errors: string[] = []
      socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message))
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.end('nobody will read this')
      await closed
      // Reset (the stream was), or at most ended: never any data back.
      expect(errors.every((code) => code === 'ECONNRESET')).toBe(true)
      expect(socket.bytesRead).toBe(0)
    }
    const errors = listener.events().filter((e) => e.event === 'forward-error' && e.side === 'tcp')
    expect(errors.length).toBeGreaterThanOrEqual(2)
    expect(errors[0]).toMatchObject({ code: 'ECONNREFUSED', peer: expect.stringMatching(PEER_ID) })
    // The connection survived both failures.
    expect(connector.process.exitCode).toBeNull()
    expect(listener.events().filter((e) => e.event === 'closed')).toEqual([])
    connector.process.kill('SIGINT')
    listener.process.kill('SIGINT')
    expect(await connector.exited).toEqual({ code: 0, signal: null })
    expect(await listener.exited).toEqual({ code: 0, signal: null })
  })
})

describe('peerlink listen / connect over a tunnel server only (--tunnel, no Beacon)', () => {
  it('connects over the tunnel with the verified PeerId, 256 KiB each way intact', async () => {
    const tunnel = await startTunnel()
    try {
      const via = ['--tunnel', urlOf(tunnel), '--tunnel-token', TOKEN]
      const fromListener = randomBytes(256 * 1024)
      const fromConnector = randomBytes(256 * 1024)
      const listener = peerlink(['listen', ...via], 'listener')
      const peerId = await listener.firstLine()
      expect(peerId).toMatch(PEER_ID)
      listener.process.stdin.end(fromListener)
      const connector = peerlink(['connect', peerId, ...via, '--paths', 'tunnel', '--json'], 'connector')
      connector.process.stdin.end(fromConnector)
      const [l, c] = await Promise.all([listener.exited, connector.exited])
      expect(c).toEqual({ code: 0, signal: null })
      expect(l).toEqual({ code: 0, signal: null })
      expect(sha256(connector.stdout())).toBe(sha256(fromListener))
      expect(sha256(listener.stdout().subarray(peerId.length + 1))).toBe(sha256(fromConnector))
      expect(connector.events().find((e) => e.event === 'connected')).toMatchObject({ path: 'tunnel', peer: peerId })
    } finally {
      await tunnel.close()
    }
  })

  it('refuses --turn without credentials and listen without any Beacon or tunnel', async () => {
    const noCredentials = captureIo(dir)
    expect(await main(['connect', createIdentity().peerId, '--beacon', spec, '--turn', 'turn:127.0.0.1:3478'], noCredentials.io)).toBe(2)
    expect(noCredentials.stderr()).toContain('needs credentials')
    const nothing = captureIo(dir)
    expect(await main(['listen'], nothing.io)).toBe(2)
    expect(nothing.stderr()).toContain('needs a Beacon')
  })
})

describe('peerlink listen / connect: usage', () => {
  it('refuses bad arguments before touching the network', async () => {
    const run = async (args: string[]) => {
      const captured = captureIo(dir)
      const code = await main([...args, '--key', join(dir, 'k.key')], captured.io)
      return { code, stderr: captured.stderr() }
    }
    const id = createIdentity().peerId
    expect(await run(['connect'])).toMatchObject({ code: 2, stderr: expect.stringContaining('needs the PeerId') })
    expect(await run(['connect', 'not-a-peer-id', '--beacon', spec])).toMatchObject({ code: 1, stderr: expect.stringContaining('ERR_INVALID_PEER_ID') })
    expect(await run(['connect', id, '--beacon', spec, '--paths', 'direct,carrier-pigeon'])).toMatchObject({ code: 2, stderr: expect.stringContaining('carrier-pigeon') })
    expect(await run(['connect', id, '--beacon', spec, '--timeout', '-5'])).toMatchObject({ code: 2 })
    expect(await run(['connect', id, '--beacon', spec, '--local-port', '70000'])).toMatchObject({ code: 2 })
    expect(await run(['connect', id])).toMatchObject({ code: 2, stderr: expect.stringContaining('needs a Beacon') })
    expect(await run(['listen'])).toMatchObject({ code: 2, stderr: expect.stringContaining('needs a Beacon') })
    expect(await run(['listen', '--beacon', spec, '--forward', 'nowhere'])).toMatchObject({ code: 2, stderr: expect.stringContaining('HOST:PORT') })
    expect(await run(['listen', '--beacon', spec, '--host-address', 'localhost'])).toMatchObject({ code: 2, stderr: expect.stringContaining('not an IP address') })
    const json = captureIo(dir)
    expect(await main(['listen', '--json', '--key', join(dir, 'k.key')], json.io)).toBe(2)
    expect(JSON.parse(json.stderr().trim())).toMatchObject({ event: 'error', code: 'ERR_CLI_USAGE' })
  })

  it('help lists listen and connect with their options', async () => {
    const top = captureIo(dir)
    expect(await main(['--help'], top.io)).toBe(0)
    expect(top.stdout()).toMatch(/^ {2}listen +/m)
    expect(top.stdout()).toMatch(/^ {2}connect +/m)
    const help = captureIo(dir)
    expect(await main(['connect', '--help'], help.io)).toBe(0)
    for (const option of ['--local-port', '--paths', '--timeout', '--beacon', '--host-address', '--json']) expect(help.stdout()).toContain(option)
  })
})
