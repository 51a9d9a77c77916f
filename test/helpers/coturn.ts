/**
 * Test helper: runs Debian's coturn (`turnserver`) on loopback as an RFC 5780 STUN
 * server (two listening IPs, 127.0.0.1 and 127.0.0.2, primary and alternate port), or
 * with `turn: true` as a TURN server (UDP and TCP listeners, loopback peers allowed,
 * relay ports from a range outside the ephemeral one) and optionally TLS.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StunTimeoutError } from '../../src/errors.js'
import { createDgramEndpoint, stunBinding } from '../../src/stun/index.js'

export interface Coturn {
  /** Primary port (alternate port is port + 1); UDP and, with `turn`, TCP. */
  port: number
  /** TLS port (with `tls`). */
  tlsPort?: number
  /** The throwaway certificate, PEM (with `tls`): CN=localhost, SAN DNS:localhost, IP:127.0.0.1. */
  certPem?: string
  /** base64url SHA-256 of the DER certificate (with `tls`). */
  certHash?: string
  /** Everything coturn printed so far (for failure messages). */
  output(): string
  stop(): Promise<void>
}

export interface CoturnOptions {
  /** Listening IPs. @default ['127.0.0.1', '127.0.0.2'] */
  ips?: string[]
  /** Extra config lines. */
  extra?: string[]
  /**
   * Run as a TURN server: no `stun-only`, TCP listeners, `allow-loopback-peers`,
   * `relay-ip` = the first IP and a relay port range outside the ephemeral range.
   * Authentication (`lt-cred-mech` + `user=`, or `use-auth-secret`), `realm` etc. go in `extra`.
   * @default false
   */
  turn?: boolean
  /** Also listen for TLS with a throwaway certificate (implies `turn`). @default false */
  tls?: boolean
}

async function tcpFree(host: string, port: number): Promise<number | undefined> {
  const server = createServer()
  try {
    return await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve((server.address() as { port: number }).port))
    })
  } catch {
    return undefined
  } finally {
    await new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()))
  }
}

/** A port P such that P and P+1 are free for TCP on `ip` right now. */
async function freeTcpPortPair(ip: string, avoid: number[]): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await tcpFree(ip, 0)
    if (p === undefined || p >= 65535 || avoid.includes(p) || avoid.includes(p + 1)) continue
    if ((await tcpFree(ip, p)) !== undefined && (await tcpFree(ip, p + 1)) !== undefined) return p
  }
  throw new Error('no free TCP port pair')
}

function makeCertificate(dir: string): { cert: string; key: string; pem: string; hash: string } {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  )
  const pem = readFileSync(cert, 'utf8')
  const hash = createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url')
  return { cert, key, pem, hash }
}

function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
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
  const tls = options.tls === true
  const turn = options.turn === true || tls
  const ips = options.ips ?? (turn ? ['127.0.0.1'] : ['127.0.0.1', '127.0.0.2'])
  let lastOutput = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePortPair(ips)
    const dir = mkdtempSync(join(tmpdir(), 'peerlink-coturn-'))
    const conf = join(dir, 'turnserver.conf')
    const tlsPort = tls ? await freeTcpPortPair(ips[0] as string, [port, port + 1]) : undefined
    const certificate = tls ? makeCertificate(dir) : undefined
    // Relay ports below the ephemeral range (32768–60999), so they cannot collide with
    // ports the OS hands out to tests; a random window keeps parallel servers apart.
    const relayBase = 20000 + 200 * Math.floor(Math.random() * 60)
    const modeLines = turn
      ? [
          `relay-ip=${ips[0] as string}`,
          `min-port=${relayBase}`,
          `max-port=${relayBase + 199}`,
          'allow-loopback-peers',
          'no-rfc5780',
          ...(certificate === undefined
            ? ['no-tls']
            : [`tls-listening-port=${tlsPort as number}`, `alt-tls-listening-port=${(tlsPort as number) + 1}`, `cert=${certificate.cert}`, `pkey=${certificate.key}`]),
        ]
      : ['stun-only', 'no-tcp', 'no-tls']
    writeFileSync(
      conf,
      [
        ...ips.map((ip) => `listening-ip=${ip}`),
        `listening-port=${port}`,
        `alt-listening-port=${port + 1}`,
        ...modeLines,
        'no-cli',
        'no-dtls',
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
      if (!(await answers(port))) continue
      if ((turn && !(await tcpAnswers(port))) || (tlsPort !== undefined && !(await tcpAnswers(tlsPort)))) {
        await new Promise((r) => setTimeout(r, 50))
        continue
      }
      return {
        port,
        ...(tlsPort === undefined ? {} : { tlsPort }),
        ...(certificate === undefined ? {} : { certPem: certificate.pem, certHash: certificate.hash }),
        output: () => output,
        stop,
      }
    }
    lastOutput = output
    await stop()
  }
  throw new Error(`coturn did not start:\n${lastOutput}`)
}
