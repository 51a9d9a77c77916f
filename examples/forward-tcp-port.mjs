// Reach a TCP service on another peer's machine: every TCP connection to a local port on
// Bob's side travels as a new stream of one peer connection to Alice, who connects it to
// her service (what `peerlink listen --forward HOST:PORT` and `peerlink connect PEERID
// --local-port PORT` do). One hole punch, any number of TCP connections.
//
// Run (in a clone, after `npm ci`): node examples/forward-tcp-port.mjs
// It starts its own Beacon and a small TCP service on loopback;
// BEACON='HOST:PORT#CERT_HASH' uses another Beacon (`npm start` prints one).
import net from 'node:net'
import { pipeline } from 'node:stream'
import { createPeer } from 'peerlink'
import { BeaconServer, createSelfSignedCertificate } from 'peerlink/server'

let beacon
let spec = process.env.BEACON
if (spec === undefined) {
  const { cert, key } = createSelfSignedCertificate({ ipAddresses: ['127.0.0.1'] })
  beacon = await BeaconServer.listen({ host: '127.0.0.1', port: 0, cert, key })
  spec = `127.0.0.1:${beacon.port}#${beacon.certificateHash}`
}
const local = { host: '127.0.0.1', gather: { hostAddresses: ['127.0.0.1'], includeLoopback: true } }

// Alice's service: answers each line in upper case.
const service = net.createServer((socket) => socket.on('data', (data) => socket.write(data.toString().toUpperCase())))
await new Promise((resolve) => service.listen(0, '127.0.0.1', resolve))

// Alice forwards every stream of a connection to her service.
const alice = await createPeer({ beacons: [spec], ...local })
await alice.listen()
alice.on('connection', (conn) => {
  // A connection fails with a coded error (ERR_CONNECTION_CLOSED when the other side
  // goes away abruptly); without a listener it would be thrown.
  conn.on('error', (err) => console.log(`alice: connection ended: ${err.code}`))
  conn.on('stream', (stream) => {
    const socket = net.connect(service.address().port, '127.0.0.1')
    pipeline(stream, socket, stream, () => {})
  })
})

// Bob connects once, then opens a local port whose TCP connections become streams.
const bob = await createPeer({ beacons: [spec], ...local })
const conn = await bob.connect(alice.peerId, { signal: AbortSignal.timeout(15_000) })
const forwarder = net.createServer((socket) => pipeline(socket, conn.openStream({ label: 'tcp' }), socket, () => {}))
await new Promise((resolve) => forwarder.listen(0, '127.0.0.1', resolve))
const port = forwarder.address().port
console.log(`bob: 127.0.0.1:${port} now reaches alice's service`)

// Three TCP clients at once, each through its own stream.
const answers = await Promise.all(
  ['one', 'two', 'three'].map(
    (word) =>
      new Promise((resolve, reject) => {
        const client = net.connect(port, '127.0.0.1', () => client.write(word))
        client.once('data', (data) => {
          resolve(data.toString())
          client.end()
        })
        client.once('error', reject)
      }),
  ),
)
console.log('answers:', answers.join(' '))

forwarder.close()
await bob.close() // closes its connections
await alice.close()
service.close()
await beacon?.close()
