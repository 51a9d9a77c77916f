// Two peers that share only a pairing code meet through a Beacon (its symmetric mode) and
// get a connection verified to be the peer they were introduced to. Neither needs to know
// the other's PeerId beforehand, and the Beacon sees only a hash of the code.
//
// Run (in a clone, after `npm ci`): node examples/rendezvous.mjs [CODE]
// It runs both sides, with its own Beacon on loopback. Across two machines: give both the
// same Beacon (BEACON='HOST:PORT#CERT_HASH', as `npm start` prints it) and the same CODE,
// and run one side on each: SIDE=a on one, SIDE=b on the other.
import { randomBytes } from 'node:crypto'
import { createPeer } from 'peerlink'
import { BeaconServer, createSelfSignedCertificate } from 'peerlink/server'

const code = process.argv[2] ?? `pairing-${randomBytes(4).toString('hex')}`
let beacon
let spec = process.env.BEACON
if (spec === undefined) {
  const { cert, key } = createSelfSignedCertificate({ ipAddresses: ['127.0.0.1'] })
  beacon = await BeaconServer.listen({ host: '127.0.0.1', port: 0, cert, key })
  spec = `127.0.0.1:${beacon.port}#${beacon.certificateHash}`
}
const local = process.env.BEACON === undefined ? { host: '127.0.0.1', gather: { hostAddresses: ['127.0.0.1'], includeLoopback: true } } : {}

async function side(name) {
  const peer = await createPeer({ beacons: [spec], ...local })
  // Waits (up to a minute here) for another peer with the same code.
  const conn = await peer.rendezvous(code, { signal: AbortSignal.timeout(60_000) })
  console.log(`${name}: met ${conn.remotePeerId} over ${conn.path}`)
  conn.end(`hello from ${name}`)
  let got = ''
  for await (const chunk of conn) got += chunk
  console.log(`${name}: got "${got}"`)
  await peer.close()
}

const sides = process.env.SIDE === undefined ? ['a', 'b'] : [process.env.SIDE]
console.log(`code: ${code}`)
await Promise.all(sides.map(side))
await beacon?.close()
