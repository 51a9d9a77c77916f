/**
 * Must-show: coturn's own load client, `turnutils_uclient`, relays through OUR server to
 * coturn's echo peer (`turnutils_peer`) with TURN REST API credentials (`-W`), over UDP
 * and TCP, with channels and with Send indications, losing nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSelfSignedCertificate } from '../../../src/server/tls.js'
import { TurnServer } from '../../../src/server/turn/turn-server.js'
import { randomPortRange, runUclient, startEchoPeer, type EchoPeer } from './coturn-tools.js'

const SECRET = 'uclient-shared-secret'
const MESSAGES = 40
const CLIENTS = 4

describe('turnutils_uclient against TurnServer (REST API credentials)', () => {
  let server: TurnServer
  const peers: EchoPeer[] = []
  let port: number
  let tlsPort: number

  beforeAll(async () => {
    server = await TurnServer.listen({
      listeningIps: ['127.0.0.1'],
      listeningPort: 0,
      relayIps: ['127.0.0.1'],
      ...randomPortRange(400),
      realm: 'peerlink.test',
      staticAuthSecrets: [SECRET],
      allowLoopbackPeers: true, // the echo peer lives on 127.0.0.1
      tls: createSelfSignedCertificate(),
      tlsListeningPort: 0,
    })
    port = server.addresses.find((a) => a.transport === 'udp')!.port
    tlsPort = server.addresses.find((a) => a.transport === 'tls')!.port
  })

  afterAll(async () => {
    await server?.close()
    await Promise.all(peers.map((peer) => peer.stop()))
  })

  const cases: [string, string[]][] = [
    ['UDP, channels', []],
    ['UDP, Send indications', ['-s']],
    ['TCP, channels', ['-t']],
    ['TCP, Send indications', ['-t', '-s']],
    ['TLS, channels', ['-t', '-S']],
  ]
  // uclient spends seconds in fixed waits: the cases run side by side, each with its own
  // echo peer (one shared turnutils_peer could overflow its socket buffer on a busy machine).
  for (const [name, flags] of cases) {
    it.concurrent(`${name}: no loss`, async () => {
      const peer = await startEchoPeer()
      peers.push(peer)
      const result = await runUclient([
        ...flags,
        '-W', SECRET, '-u', 'alice',
        '-e', '127.0.0.1', '-r', String(peer.port),
        '-X', '-g',
        '-m', String(CLIENTS), '-n', String(MESSAGES), '-l', '1000', '-z', '20',
        '-p', String(flags.includes('-S') ? tlsPort : port), '127.0.0.1',
      ])
      const detail = result.output.split('\n').slice(-15).join('\n')
      expect(result.code, detail).toBe(0)
      expect(result.lost, detail).toBe(0)
      // every client sends MESSAGES on its RTP and RTCP allocation
      expect(result.sent, detail).toBeGreaterThanOrEqual(CLIENTS * MESSAGES)
      expect(result.received, detail).toBe(result.sent)
      expect(server.stats.packetsFromPeers).toBeGreaterThanOrEqual(result.received!)
    })
  }
})
