// Two peers meet through a Beacon and talk over an encrypted connection that is verified
// to end at the PeerId asked for; a second, labelled stream shares the connection.
//
// Run (in a clone, after `npm ci`): node examples/connect-by-peerid.mjs
// It starts its own Beacon on loopback. To use the servers of `npm start` instead, pass
// the line it prints: BEACON='127.0.0.1:4264#CERT_HASH' node examples/connect-by-peerid.mjs
import { createPeer } from 'peerlink'
import { BeaconServer, createSelfSignedCertificate } from 'peerlink/server'

let beacon
let spec = process.env.BEACON
if (spec === undefined) {
  const { cert, key } = createSelfSignedCertificate({ ipAddresses: ['127.0.0.1'] })
  beacon = await BeaconServer.listen({ host: '127.0.0.1', port: 0, cert, key })
  spec = `127.0.0.1:${beacon.port}#${beacon.certificateHash}` // HOST:PORT#pin of its certificate
}

// On one machine both peers offer their loopback address; on the Internet leave `gather`
// out and each peer offers its interfaces and public (STUN) addresses.
const local = { host: '127.0.0.1', gather: { hostAddresses: ['127.0.0.1'], includeLoopback: true } }
const alice = await createPeer({ beacons: [spec], ...local })
const bob = await createPeer({ beacons: [spec], ...local })

// Alice listens: she registers her PeerId at the Beacon and answers connections.
await alice.listen()
alice.on('connection', (conn) => {
  console.log(`alice: connection from ${conn.remotePeerId} over ${conn.path}`)
  conn.pipe(conn) // echo the main stream
  conn.on('stream', (stream) => stream.end(`alice got stream "${stream.label}"`))
})

// Bob knows only Alice's PeerId (her public key).
const conn = await bob.connect(alice.peerId, { signal: AbortSignal.timeout(15_000) })
console.log(`bob: connected to ${conn.remotePeerId} (${conn.path}, ${conn.info.ms} ms)`)

const side = conn.openStream({ label: 'notes' })
side.end()
let reply = ''
for await (const chunk of side) reply += chunk
console.log(`bob: ${reply}`)

// The connection itself is its main stream; ending it both ways closes the connection.
conn.end('hello alice')
let echoed = ''
for await (const chunk of conn) echoed += chunk
console.log(`bob: echo "${echoed}"`)

await bob.close()
await alice.close()
await beacon?.close()
