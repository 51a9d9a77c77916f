// PeerSocket.bindSibling: a second socket on the same udx-native instance, so that a live
// stream can move between them with `changeRemote` (what moving a connection between the
// relay shim's socket and the peer's own socket needs).
import { describe, expect, it } from 'vitest'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { InvalidArgumentError } from '../../src/errors.js'
import type UDX from 'udx-native'

function nextData(stream: UDX.UDXStream): Promise<string> {
  return new Promise((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString())))
}

describe('PeerSocket.bindSibling', () => {
  it('binds on the same udx instance: a live stream moves from the sibling to the parent socket and keeps its data order', async () => {
    const parent = await PeerSocket.bind({ host: '127.0.0.1' })
    const sibling = await parent.bindSibling({ host: '127.0.0.1' })
    const remote = await PeerSocket.bind({ host: '127.0.0.1' })
    try {
      expect(sibling.port).not.toBe(parent.port)
      const idA = parent.allocateStreamId()
      const idB = remote.allocateStreamId()
      const a = sibling.connectStream(idA, idB, remote.port, '127.0.0.1')
      const b = remote.connectStream(idB, idA, sibling.port, '127.0.0.1')
      const first = nextData(b)
      a.write(Buffer.from('over the sibling'))
      expect(await first).toBe('over the sibling')

      // The parent's udx socket, as a stream on it sees it.
      const probe = parent.connectStream(parent.allocateStreamId(), 1, remote.port, '127.0.0.1')
      const parentUdx = probe.socket as UDX.UDXSocket
      probe.destroy()
      await Promise.all([a.changeRemote(parentUdx, idB, remote.port, '127.0.0.1'), b.changeRemote(b.socket as UDX.UDXSocket, idA, parent.port, '127.0.0.1')])
      expect(a.socket).toBe(parentUdx)
      const second = nextData(b)
      a.write(Buffer.from('over the parent'))
      expect(await second).toBe('over the parent')
      const back = nextData(a)
      b.write(Buffer.from('and back'))
      expect(await back).toBe('and back')
      a.destroy()
      b.destroy()
    } finally {
      await sibling.close()
      await remote.close()
      await parent.close()
    }
  })

  it('closing the sibling leaves the parent open; misuse throws or rejects', async () => {
    const parent = await PeerSocket.bind({ host: '127.0.0.1' })
    const sibling = await parent.bindSibling()
    await sibling.close()
    expect(parent.closed).toBe(false)
    expect(await parent.send(Buffer.from([0]), parent.port, '127.0.0.1')).toBe(true)
    expect(() => parent.bindSibling({ host: 'localhost' })).toThrow(InvalidArgumentError)
    await parent.close()
    await expect(parent.bindSibling()).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
  })
})
