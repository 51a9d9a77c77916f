/**
 * Test helper: runs Debian's coturn (`turnserver`) on loopback as an RFC 5780 STUN
 * server (two listening IPs, 127.0.0.1 and 127.0.0.2, primary and alternate port).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StunTimeoutError } from '../../src/errors.js'
import { createDgramEndpoint, stunBinding } from '../../src/stun/index.js'

export interface Coturn {
  /** Primary port (alternate port is port + 1). */
  port: number
  /** Everything coturn printed so far (for failure messages). */
  output(): string
  stop(): Promise<void>
}

export interface CoturnOptions {
  /** Listening IPs. @default ['127.0.0.1', '127.0.0.2'] */
  ips?: string[]
  /** Extra config lines. */
  extra?: string[]
}

async function bindUdp(host: string, port: number): Promise<number | undefined> {
  const socket = createSocket('udp4')
  try {
    return await new Promise<number>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, host, () => resolve(socket.address().port))
    })
  } catch {
    return undefined
  } finally {
    await new Promise<void>((r) => socket.close(() => r()))
  }
}

/** A port P such that P and P+1 are free on every given IP right now. */
async function freePortPair(ips: string[]): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await bindUdp(ips[0] as string, 0)
    if (p === undefined || p >= 65535) continue
    let ok = true
    for (const ip of ips) {
      for (const port of [p, p + 1]) if ((await bindUdp(ip, port)) === undefined) ok = false
    }
    if (ok) return p
  }
  throw new Error('no free UDP port pair')
}

async function answers(port: number): Promise<boolean> {
  const socket = createSocket('udp4')
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  try {
    await stunBinding({ endpoint: createDgramEndpoint(socket), server: { host: '127.0.0.1', port }, rto: 50, rc: 2, rm: 2 })
    return true
  } catch (err) {
    if (err instanceof StunTimeoutError) return false
    throw err
  } finally {
    await new Promise<void>((r) => socket.close(() => r()))
  }
}

/**
 * Starts coturn and waits until it answers Binding requests. The process runs under
 * `timeout`, so it dies within 120 s even if the test process is killed before `stop()`.
 */
export async function startCoturn(options: CoturnOptions = {}): Promise<Coturn> {
  const ips = options.ips ?? ['127.0.0.1', '127.0.0.2']
  let lastOutput = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePortPair(ips)
    const dir = mkdtempSync(join(tmpdir(), 'peerlink-coturn-'))
    const conf = join(dir, 'turnserver.conf')
    writeFileSync(
      conf,
      [
        ...ips.map((ip) => `listening-ip=${ip}`),
        `listening-port=${port}`,
        `alt-listening-port=${port + 1}`,
        'stun-only',
        'no-cli',
        'no-tls',
        'no-dtls',
        'no-tcp',
        `userdb=${join(dir, 'turndb')}`,
        `pidfile=${join(dir, 'turnserver.pid')}`,
        'log-file=stdout',
        'simple-log',
        ...(options.extra ?? []),
        '',
      ].join('\n'),
    )
    const child: ChildProcess = spawn('timeout', ['-k', '5', '120', 'turnserver', '-c', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
    let exited = false
    const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())))
    const stop = async (): Promise<void> => {
      if (!exited) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exit
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
    }
    const deadline = Date.now() + 8000
    while (!exited && Date.now() < deadline) {
      if (await answers(port)) return { port, output: () => output, stop }
    }
    lastOutput = output
    await stop()
  }
  throw new Error(`coturn did not start:\n${lastOutput}`)
}
