/**
 * The udx-native handles behind a {@link PeerSocket} and a live connection's stream, for
 * moving the stream between paths with `changeRemote` (path recovery). `PeerSocket` and
 * `SecureConnection` keep them private; this finds them from the outside: a stream
 * created on a socket says which udx socket it is on, and a udx socket lists its streams.
 *
 * @module
 */
import type UDX from 'udx-native'
import type { PeerSocket } from '../transport/peer-socket.js'

const udxSockets = new WeakMap<PeerSocket, UDX.UDXSocket>()

/**
 * The udx-native socket of `socket` (found once, with a stream that is created and
 * destroyed at once without sending anything).
 *
 * @throws SocketClosedError when the socket is closed.
 */
export function udxSocketOf(socket: PeerSocket): UDX.UDXSocket {
  const known = udxSockets.get(socket)
  if (known !== undefined) return known
  const id = socket.allocateStreamId()
  const family = socket.address().family
  const probe = socket.connectStream(id, 1, socket.port, family === 6 ? '::1' : '127.0.0.1')
  const udx = probe.socket as UDX.UDXSocket
  probe.destroy()
  udxSockets.set(socket, udx)
  return udx
}

/** The open udx stream with local id `id` on any of `sockets`, or `undefined`. */
export function findUdxStream(sockets: readonly PeerSocket[], id: number): UDX.UDXStream | undefined {
  for (const socket of sockets) {
    if (socket.closed) continue
    const streams = (udxSocketOf(socket) as unknown as { streams?: Set<UDX.UDXStream> }).streams
    for (const stream of streams ?? []) if (stream.id === id && !stream.destroyed) return stream
  }
  return undefined
}
