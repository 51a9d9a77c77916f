/**
 * peerlink: connect to a peer by its public key, through any NAT or firewall, over an
 * encrypted stream that is verified to end at that peer.
 *
 * `createPeer` gives a peer with one identity and one UDP socket; `peer.listen()` makes it
 * reachable by PeerId through the Beacons, `peer.connect(peerId)` finds a direct UDP path
 * with ICE (hole punching) and resolves with a connection whose remote proved that
 * PeerId. A connection is a Duplex (its main stream) that carries any number of other
 * streams. This version connects over direct paths; TURN and tunnel paths come next.
 *
 * @example
 * ```ts
 * import { createPeer, loadOrCreateIdentity } from 'peerlink'
 *
 * const identity = await loadOrCreateIdentity('./peer.key')   // created with mode 0600
 * const peer = await createPeer({ identity, beacons: ['beacon.example.com:4264#weOs…'] })
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
export * from './turn/index.js'
export * from './beacon/index.js'
export * from './tunnel/index.js'
export * from './peer/index.js'
export * from './connection/index.js'
