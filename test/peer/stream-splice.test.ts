// The stream splice (src/peer/stream-splice.ts) on loopback: a secure connection runs
// through the splice of each peer; its path (a user-space forwarder standing for the
// network) is black-holed mid-transfer and the outer relays are moved to a second
// forwarder: the transfer completes intact, which a stream moved with changeRemote alone
// cannot do (its in-flight packets keep going to the dead path).
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { createIdentity } from '../../src/identity/index.js'
import { findUdxStream, udxSocketOf } from '../../src/peer/udx-handles.js'
import { RELAY_SAFE_MTU, StreamSplice } from '../../src/peer/stream-splice.js'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { openSecureConnection, type SecureConnection } from '../../src/transport/secure-connection.js'
import { sha256 } from '../testing/stream-data.js'

interface Forwarder {
  a: Socket
  b: Socket
  dropping: boolean
  close(): void
}

/** Two loopback sockets relaying datagrams between `left` (faces a) and `right` (faces b). */
async function forwarder(left: PeerSocket, right: PeerSocket): Promise<Forwarder> {
  const f: Forwarder = {
    a: createSocket('udp4'),
    b: createSocket('udp4'),
    dropping: false,
    close: () => {
      f.a.close()
      f.b.close()
    },
  }
  f.a.on('message', (m) => !f.dropping && f.b.send(m, right.port, '127.0.0.1'))
  f.b.on('message', (m) => !f.dropping && f.a.send(m, left.port, '127.0.0.1'))
  await Promise.all([new Promise<void>((r) => f.a.bind(0, '127.0.0.1', r)), new Promise<void>((r) => f.b.bind(0, '127.0.0.1', r))])
  return f
}

describe('StreamSplice', () => {
  it('a transfer survives its path dying when the outer relays move to another path', async () => {
    const left = await PeerSocket.bind({ host: '127.0.0.1' })
    const right = await PeerSocket.bind({ host: '127.0.0.1' })
    const [sl, sr] = await Promise.all([StreamSplice.open(left), StreamSplice.open(right)])
    const f1 = await forwarder(left, right)
    const f2 = await forwarder(left, right)
    const [ka, kb] = [createIdentity(), createIdentity()]
    const idL = left.allocateStreamId()
    const idR = right.allocateStreamId()
    let a: SecureConnection | undefined
    let b: SecureConnection | undefined
    try {
      const endL = sl.connect({ socket: left, host: '127.0.0.1', port: f1.a.address().port, localStreamId: idL, remoteStreamId: idR })
      const endR = sr.connect({ socket: right, host: '127.0.0.1', port: f1.b.address().port, localStreamId: idR, remoteStreamId: idL })
      ;[a, b] = await Promise.all([
        openSecureConnection({ ...endL, isInitiator: true, keyPair: ka.keyPair, expectedRemotePublicKey: kb.keyPair.publicKey }),
        openSecureConnection({ ...endR, isInitiator: false, keyPair: kb.keyPair, expectedRemotePublicKey: ka.keyPair.publicKey }),
      ])
      const payload = randomBytes(8 * 1024 * 1024)
      const chunks: Buffer[] = []
      let received = 0
      const done = new Promise<void>((resolve, reject) => {
        b!.on('data', (chunk: Buffer) => {
          chunks.push(chunk)
          received += chunk.length
          if (received > payload.length / 3 && !f1.dropping) {
            f1.dropping = true
            // Half a second on the dead path, then move both outer relays to path 2.
            setTimeout(() => {
              for (const [socket, id, remoteId, port] of [
                [left, idL, idR, f2.a.address().port],
                [right, idR, idL, f2.b.address().port],
              ] as const) {
                const outer = findUdxStream([socket], id)
                expect(outer).toBeDefined()
                void Promise.resolve(outer!.changeRemote(udxSocketOf(socket), remoteId, port, '127.0.0.1')).catch(() => {})
              }
            }, 500)
          }
        })
        b!.once('end', resolve)
        b!.once('error', reject)
      })
      a.end(payload)
      await done
      expect(f1.dropping).toBe(true)
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(payload))
    } finally {
      a?.destroy()
      b?.destroy()
      await Promise.all([sl.close({ grace: 500 }), sr.close({ grace: 500 })])
      f1.close()
      f2.close()
      await Promise.all([left.close(), right.close()])
    }
  }, 30_000)

  it('clampMtu caps the secure stream packet size; close releases the socket', async () => {
    const left = await PeerSocket.bind({ host: '127.0.0.1' })
    const right = await PeerSocket.bind({ host: '127.0.0.1' })
    const splice = await StreamSplice.open(left)
    try {
      const idL = left.allocateStreamId()
      const end = splice.connect({ socket: left, host: '127.0.0.1', port: right.port, localStreamId: idL, remoteStreamId: 7 })
      expect(splice.outer?.id).toBe(idL)
      expect(end.socket).toBe(splice.socket)
      expect(end.remote).toEqual({ host: '127.0.0.1', port: splice.socket.port })
      // The secure stream, as openSecureConnection would create it.
      const secure = splice.socket.connectStream(end.localStreamId, end.remoteStreamId, end.remote.port, end.remote.host)
      const mtuIndex = (createRequire(import.meta.url)('udx-native/binding') as { offsetof_udx_stream_t_mtu: number }).offsetof_udx_stream_t_mtu >> 1
      const view = (secure as unknown as { _view16: Uint16Array })._view16
      view[mtuIndex] = 1500 // as udx's path MTU probing finds on an Ethernet path
      expect((secure as unknown as { mtu: number }).mtu).toBe(1500)
      splice.clampMtu()
      expect((secure as unknown as { mtu: number }).mtu).toBe(RELAY_SAFE_MTU)
      splice.clampMtu(1300)
      expect((secure as unknown as { mtu: number }).mtu).toBe(1300)
      secure.destroy()
      await splice.close({ grace: 200 })
      expect(splice.socket.closed).toBe(true)
      expect(RELAY_SAFE_MTU).toBeLessThanOrEqual(1500 - 36)
    } finally {
      await splice.close()
      await Promise.all([left.close(), right.close()])
    }
  })
})
