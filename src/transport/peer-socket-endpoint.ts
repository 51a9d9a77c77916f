/**
 * The STUN client's view of a {@link PeerSocket}: STUN datagrams the socket's
 * demultiplexer picked out, and sends from the same UDP port — so server-reflexive
 * addresses and NAT behaviour are learnt for exactly the port peers connect to.
 *
 * @module
 */
import { SocketClosedError } from '../errors.js'
import type { DatagramEndpoint } from '../stun/datagram-endpoint.js'
import type { PeerSocket } from './peer-socket.js'

/**
 * Wraps `socket` as a STUN {@link DatagramEndpoint}. Only datagrams classified as STUN
 * reach its listeners; udx stream packets and TURN ChannelData go their own ways.
 *
 * @example
 * ```ts
 * import { PeerSocket, stunBinding } from 'peerlink'
 *
 * const socket = await PeerSocket.bind()
 * const { mapped } = await stunBinding({ endpoint: peerSocketEndpoint(socket), server })
 * ```
 */
export function peerSocketEndpoint(socket: PeerSocket): DatagramEndpoint {
  return {
    send(data, port, host) {
      // The transaction manager reports a throw here as SocketClosedError.
      if (socket.closed) throw new SocketClosedError('Cannot send: the socket is closed')
      // A refused or failed send is a lost datagram: retransmission covers it.
      socket.send(data, port, host).catch(() => {})
    },
    onMessage(listener) {
      return socket.onStun(listener)
    },
    localAddress() {
      const { host, port, family } = socket.address()
      return { host, port, family: family === 6 ? 'IPv6' : 'IPv4' }
    },
  }
}
