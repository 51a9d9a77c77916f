// Learn your public address and NAT behaviour (RFC 5780) from a STUN server.
// Run: `npm start` in another terminal, then `node examples/nat-check.mjs`
// (in a clone: after `npm ci` or `npm run build`). Another server: STUN=HOST:PORT node examples/nat-check.mjs
import dgram from 'node:dgram'
import { createDgramEndpoint, discoverNatBehavior, loadOrCreateIdentity } from 'peerlink'

const [host = '127.0.0.1', port = '3478'] = (process.env.STUN ?? '').split(':').filter(Boolean)
const identity = await loadOrCreateIdentity(process.env.KEY ?? './peer.key')
console.log('I am', identity.peerId)

const socket = dgram.createSocket('udp4')
await new Promise((resolve) => socket.bind(0, resolve))
try {
  const nat = await discoverNatBehavior({
    endpoint: createDgramEndpoint(socket),
    server: { host, port: Number(port) },
    signal: AbortSignal.timeout(15_000),
  })
  console.log('public address:', `${nat.mapped.host}:${nat.mapped.port}`)
  console.log('NAT mapping:   ', nat.mapping)
  console.log('NAT filtering: ', nat.filtering)
} finally {
  socket.close()
}
