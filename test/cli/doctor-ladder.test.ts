// `peerlink doctor` beyond STUN: TURN over UDP and TCP against peerlink's TURN server,
// wrong credentials, tunnel reachability against peerlink's tunnel server, unreachable
// servers, and the ladder verdict as a pure function.
import dgram from 'node:dgram'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { predictLadder } from '../../src/cli/commands/doctor-ladder.js'
import type { DoctorTurnReport } from '../../src/cli/commands/doctor-turn.js'
import { main } from '../../src/cli/peerlink.js'
import { TurnServer } from '../../src/server/turn/turn-server.js'
import { randomPortRange } from '../server/turn/coturn-tools.js'
import { startTunnel, urlOf } from '../server/tunnel/helpers.js'
import { captureIo } from './helpers.js'

const SECRET = 'doctor-test-secret'
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-doctor-ladder-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function doctor(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = captureIo(dir)
  const code = await main(['doctor', ...args], captured.io)
  return { code, stdout: captured.stdout(), stderr: captured.stderr() }
}

/** A port free on 127.0.0.1 for both UDP and TCP right now (a `turn:` URI names one port for both). */
async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = net.createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as net.AddressInfo).port
    const socket = dgram.createSocket('udp4')
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false))
      socket.bind(port, '127.0.0.1', () => resolve(true))
    })
    if (ok) socket.close()
    server.close()
    await once(server, 'close')
    if (ok) return port
  }
  throw new Error('no port free for both UDP and TCP')
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

describe('peerlink doctor against peerlink TURN and tunnel servers', () => {
  let turn: TurnServer
  let port: number

  beforeAll(async () => {
    port = await freeUdpTcpPort()
    turn = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: port,
      relayIps: ['127.0.0.1'],
      ...randomPortRange(50),
      realm: 'doctor.test',
      useAuthSecret: true,
      staticAuthSecrets: [SECRET],
    })
  })
  afterAll(async () => {
    await turn?.close()
  })

  it('allocates over UDP and TCP with a REST secret, and predicts the direct path when UDP works', async () => {
    const { code, stdout } = await doctor(['--stun', `stun:127.0.0.1:${port}`, '--turn', `turn:127.0.0.1:${port}`, '--turn-secret', SECRET, '--json'])
    expect(code).toBe(0)
    const report = JSON.parse(stdout)
    const [server] = report.turn as DoctorTurnReport[]
    expect(server!.credentials).toBe(true)
    expect(server!.transports.map((t) => [t.transport, t.reachable, t.allocated])).toEqual([
      ['udp', true, true],
      ['tcp', true, true],
    ])
    for (const t of server!.transports) {
      expect(t.relayed?.host).toBe('127.0.0.1')
      expect(t.relayed?.port).toBeGreaterThan(0)
    }
    expect(report.ladder.likely).toBe('direct')
    expect(report.ladder.available).toEqual(['direct', 'turn-udp', 'turn-tcp'])
    // The allocations were released: the server holds none.
    await expect.poll(() => turn.stats.allocations, { timeout: 3000 }).toBe(0)
  })

  it('reports a server that refuses the credentials as reachable but not allocated (ERR_TURN_AUTH)', async () => {
    const { code, stdout } = await doctor(['--turn', `turn:127.0.0.1:${port}?transport=tcp`, '--turn-secret', 'wrong-secret', '--json'])
    const report = JSON.parse(stdout)
    const [t] = report.turn[0].transports
    expect(t).toMatchObject({ transport: 'tcp', reachable: true, allocated: false })
    expect(t.error.code).toBe('ERR_TURN_AUTH')
    // No STUN given: UDP untested; TURN over TCP answers, so that is the likely step.
    expect(report.ladder.likely).toBe('turn-tcp')
    expect(report.ladder.reason).toContain('refused the credentials')
    expect(code).toBe(0)
  })

  it('prints a readable TURN, tunnel and ladder report', async () => {
    const tunnel = await startTunnel()
    try {
      const { code, stdout } = await doctor(['--turn', `turn:127.0.0.1:${port}?transport=tcp`, '--turn-secret', SECRET, '--tunnel', urlOf(tunnel)])
      expect(code).toBe(0)
      expect(stdout).toMatch(/TURN turn:127\.0\.0\.1:\d+\?transport=tcp\n {2}over TCP +allocated in \d+ ms, relayed address 127\.0\.0\.1:\d+/)
      expect(stdout).toMatch(/Tunnel ws:\/\/127\.0\.0\.1:\d+\/?\n {2}reachable +reachable \(HTTP \d{3} in \d+ ms\)/)
      expect(stdout).toMatch(/likely path +turn-tcp/)
      expect(stdout).toMatch(/available +turn-tcp, tunnel/)
    } finally {
      await tunnel.close()
    }
  })
})

describe('peerlink doctor with nothing reachable', () => {
  it('exits 1 with the ladder at none when no TURN or tunnel server answers', async () => {
    const dead = await closedPort()
    const { code, stdout } = await doctor(['--turn', `turn:127.0.0.1:${dead}?transport=tcp`, '--tunnel', `ws://127.0.0.1:${dead}`, '--json'])
    expect(code).toBe(1)
    const report = JSON.parse(stdout)
    expect(report.turn[0].credentials).toBe(false)
    expect(report.turn[0].transports[0]).toMatchObject({ transport: 'tcp', reachable: false, allocated: false })
    expect(report.turn[0].transports[0].error.code).toMatch(/^ERR_/)
    expect(report.tunnels[0]).toMatchObject({ reachable: false })
    expect(report.tunnels[0].error.code).toBe('ERR_CONNECT_FAILED')
    expect(report.ladder).toMatchObject({ likely: 'none', available: [] })
  })

  it('rejects --turn-pass without --turn-user and a pin on a non-TLS TURN URI', async () => {
    expect((await doctor(['--turn', 'turn:127.0.0.1:3478', '--turn-pass', 'x'])).code).toBe(2)
    expect((await doctor(['--turn', 'turn:127.0.0.1:3478#AAAA'])).code).toBe(2)
  })
})

describe('predictLadder', () => {
  const turnOver = (transport: 'udp' | 'tcp' | 'tls', allocated = true): DoctorTurnReport => ({
    server: 'turn:x',
    credentials: true,
    transports: [{ transport, reachable: true, allocated }],
  })

  it('direct when UDP works behind an endpoint-independent NAT or none', () => {
    expect(predictLadder({ udpReachable: true, udpTested: true, mapping: 'endpoint-independent', turn: [], tunnels: [] }).likely).toBe('direct')
    expect(predictLadder({ udpReachable: true, udpTested: true, mapping: 'no-nat', turn: [turnOver('udp')], tunnels: [] }).likely).toBe('direct')
  })

  it('the first relay behind an endpoint-dependent NAT, direct without one', () => {
    const hard = { udpReachable: true, udpTested: true, mapping: 'address-and-port-dependent' as const, tunnels: [] }
    expect(predictLadder({ ...hard, turn: [turnOver('udp')] })).toMatchObject({ likely: 'turn-udp', available: ['direct', 'turn-udp'] })
    expect(predictLadder({ ...hard, turn: [] }).likely).toBe('direct')
    expect(predictLadder({ ...hard, turn: [] }).reason).toContain('Configure a TURN server')
  })

  it('TURN over TCP/TLS, then the tunnel, when UDP is blocked', () => {
    const blocked = { udpReachable: false, udpTested: true, mapping: undefined }
    expect(predictLadder({ ...blocked, turn: [turnOver('tls')], tunnels: [{ server: 'wss://t', reachable: true }] })).toMatchObject({
      likely: 'turn-tls',
      available: ['turn-tls', 'tunnel'],
    })
    expect(predictLadder({ ...blocked, turn: [], tunnels: [{ server: 'wss://t', reachable: true }] }).likely).toBe('tunnel')
    expect(predictLadder({ ...blocked, turn: [], tunnels: [{ server: 'wss://t', reachable: false }] }).likely).toBe('none')
  })
})
