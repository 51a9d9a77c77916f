// `peerlink expose` as a child process (the real bin/peerlink, which loads dist/: run
// `npm run build` first; `npm test` does it): it prints the endpoints, curl reaches the
// service through them, it comes back after the server drops it, and Ctrl-C exits 0.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TunnelServer } from '../../src/server/tunnel/tunnel-server.js'
import { main } from '../../src/cli/peerlink.js'
import { captureIo } from '../cli/helpers.js'
import { TOKEN, certificate, closeServer, portOf, startHttpEcho, startTunnel, until, urlOf } from '../server/tunnel/helpers.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin', 'peerlink')

async function newest(path: string): Promise<number> {
  const info = await stat(path)
  if (!info.isDirectory()) return info.mtimeMs
  const entries = await readdir(path)
  return Math.max(0, ...(await Promise.all(entries.map((entry) => newest(join(path, entry))))))
}

/** Collects a child's output lines. */
function lines(child: ChildProcess, stream: 'stdout' | 'stderr'): string[] {
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

let server: TunnelServer
let web: Server
let dir: string

beforeAll(async () => {
  const built = await stat(join(root, 'dist', 'cli', 'commands', 'expose.js')).catch(() => undefined)
  if (built === undefined) throw new Error('dist/cli/commands/expose.js is missing: run `npm run build` before these tests')
  for (const source of ['src/cli', 'src/tunnel']) {
    if ((await newest(join(root, source))) > built.mtimeMs) throw new Error(`dist/ is older than ${source}: run \`npm run build\` before these tests`)
  }
  server = await startTunnel({ tls: { cert: certificate.cert, key: certificate.key }, allowedPeerIds: ['*'] })
  web = await startHttpEcho()
  dir = await mkdtemp(join(tmpdir(), 'peerlink-expose-'))
})

afterAll(async () => {
  await server?.close()
  await closeServer(web)
  await rm(dir, { recursive: true, force: true })
})

describe('peerlink expose (child process)', () => {
  it('prints the endpoints, serves through them, reconnects, and exits 0 on Ctrl-C', async () => {
    const child = spawn(process.execPath, [bin, 'expose', String(portOf(web)), '--tunnel', urlOf(server), '--name', 'cli', '--json'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, PEERLINK_TUNNEL_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out = lines(child, 'stdout')
    const err = lines(child, 'stderr')
    const exited = once(child, 'exit')
    try {
      await until(() => out.length > 0, 15_000, 'the endpoints')
      const endpoints = JSON.parse(out[0]!) as { event: string; name: string; httpUrl: string; ports: Array<{ local: number; public: number }> }
      expect(endpoints).toMatchObject({ event: 'endpoints', name: 'cli', httpUrl: `http://cli.example.test:${server.httpPort}/`, resumed: false })
      expect(endpoints.ports[0]!.local).toBe(portOf(web))

      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--resolve', `cli.example.test:${server.httpPort}:127.0.0.1`, endpoints.httpUrl + 'hello'])
      expect(JSON.parse(stdout)).toMatchObject({ url: '/hello', headers: { 'x-forwarded-for': '127.0.0.1' } })
      const { stdout: direct } = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${endpoints.ports[0]!.public}/tcp`])
      expect(JSON.parse(direct).url).toBe('/tcp')

      // The server drops the control socket: the command reconnects and reports the same endpoints.
      expect(server.dropDevice('cli')).toBe(true)
      await until(() => out.length > 1, 15_000, 'the endpoints after the reconnection')
      expect(JSON.parse(out[1]!)).toMatchObject({ name: 'cli', resumed: true, ports: endpoints.ports })
      expect(err.some((line) => JSON.parse(line).event === 'disconnected')).toBe(true)

      child.kill('SIGINT')
      const [code] = (await exited) as [number | null]
      expect(code).toBe(0)
      await until(() => server.stats.devices === 0, 5_000, 'the server to see the device go')
    } finally {
      child.kill('SIGKILL')
    }
  }, 40_000)
})

describe('peerlink expose (in process)', () => {
  it('needs ports and a tunnel', async () => {
    const io = captureIo(dir)
    expect(await main(['expose', '--tunnel', urlOf(server)], io.io)).toBe(2)
    expect(io.stderr()).toMatch(/needs the ports/)
    const io2 = captureIo(dir)
    expect(await main(['expose', '8080'], io2.io)).toBe(2)
    expect(io2.stderr()).toMatch(/needs a tunnel server/)
    const io3 = captureIo(dir)
    expect(await main(['expose', '80,abc', '--tunnel', urlOf(server)], io3.io)).toBe(2)
  })

  it('fails with the code of a refusal (bad token)', async () => {
    const io = captureIo(dir)
    const code = await main(['expose', String(portOf(web)), '--tunnel', urlOf(server), '--token', 'wrong-token-123', '--json'], io.io)
    expect(code).toBe(1)
    const last = io.stderr().trim().split('\n').at(-1)!
    expect(JSON.parse(last)).toMatchObject({ event: 'error', code: 'ERR_TUNNEL_AUTH' })
  })

  it('logs in with the key file when no token is given, and stops on its signal', async () => {
    const controller = new AbortController()
    const io = captureIo(dir)
    const running = main(['expose', `127.0.0.1:${portOf(web)}`, '--tunnel', urlOf(server), '--key', join(dir, 'peer.key')], { ...io.io, signal: controller.signal })
    await until(() => io.stdout().includes('Exposed through'), 10_000, 'the endpoints')
    expect(io.stdout()).toMatch(/http:\/\/t-[a-z2-7]{10}\.example\.test:\d+\/ +-> http 127\.0\.0\.1:\d+/)
    expect(io.stderr()).toMatch(/created a new identity/)
    controller.abort()
    expect(await running).toBe(0)
  })
})
