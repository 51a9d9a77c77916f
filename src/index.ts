/**
 * peerlink: connect to a peer by its public key, through any NAT or firewall, over an
 * encrypted stream that is verified to end at that peer.
 *
 * `createPeer` gives a peer with one identity and one UDP socket; `peer.listen()` makes it
 * reachable by PeerId through the Beacons (and tunnel servers), `peer.connect(peerId)`
 * climbs the ladder — a direct UDP path by ICE (hole punching), else a TURN relay, else
 * the WebSocket tunnel — and resolves with a connection whose remote proved that PeerId,
 * whatever the path (`connection.path`). `peer.rendezvous(code)` meets a peer that knows
 * the same code. A connection is a Duplex (its main stream) that carries any number of
 * other streams.
 *
 * @example
 * ```ts
 * import { createPeer, loadOrCreateIdentity } from 'peerlink'
 *
 * const identity = await loadOrCreateIdentity('./peer.key')   // created with mode 0600
 * const peer = await createPeer({
 *   identity,
 *   beacons: ['beacon.example.com:4264#weOs…'],
 *   turn: [{ urls: 'turn:turn.example.com:3478', secret: process.env.TURN_SECRET }], // optional relay
 *   tunnels: ['wss://tunnel.example.com:8443#…'],                                     // optional last resort
 * })
 * await peer.listen()
 * peer.on('connection', (conn) => conn.pipe(conn))             // an echo service
 * const conn = await peer.connect('12D3KooW…')                  // verified to be that peer
 * conn.end('hello')
 * ```
 *
 * @packageDocumentation
 */
export * from './errors.js'
export * from './identity/index.js'
export * from './stun/index.js'
export * from './server-spec.js'
// The peer's one UDP socket: TURN over UDP from a peer's own socket takes it as `endpoint`.
export { PeerSocket, MAX_DELIVERABLE_DATAGRAM } from './transport/peer-socket.js'
export { classifyDatagram, type DatagramKind } from './transport/packet-demux.js'
export type { PeerSocketOptions, PeerSocketStats, DatagramAddress, DatagramListener as PeerSocketListener } from './transport/peer-socket.js'
export * from './turn/index.js'
export * from './beacon/index.js'
export * from './tunnel/index.js'
export * from './peer/index.js'
export * from './connection/index.js'
