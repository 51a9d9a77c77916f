// Run the reference servers from your own program (what `peerlink-server all` does):
// a Beacon (rendezvous, with STUN on its UDP port), a TURN server with TURN REST API
// credentials, and a tunnel server; then print what peers and devices need.
//
// Run (in a clone, after `npm ci`): node examples/run-servers.mjs      (Ctrl-C stops it)
// EXIT_AFTER_MS=2000 stops it by itself. Everything listens on 127.0.0.1, port 0 (any free
// port); on a VPS listen on its addresses and open the ports in the firewall
// (docs/server.md lists them).
import { randomBytes } from 'node:crypto'
import { BeaconServer, TunnelServer, TurnServer, createSelfSignedCertificate } from 'peerlink/server'
import { turnRestCredentials } from 'peerlink'

// One self-signed certificate: clients pin it by the hash printed below (no CA needed).
const { cert, key } = createSelfSignedCertificate({ ipAddresses: ['127.0.0.1'] })
const turnSecret = randomBytes(24).toString('base64url') // coturn's static-auth-secret
const deviceToken = randomBytes(18).toString('base64url')

const beacon = await BeaconServer.listen({ host: '127.0.0.1', port: 0, cert, key })
const turn = await TurnServer.listen({
  listeningIps: ['127.0.0.1'],
  listeningPort: 0,
  realm: 'example.peerlink',
  useAuthSecret: true,
  staticAuthSecrets: [turnSecret], // several may be listed, to rotate without downtime
})
const tunnel = await TunnelServer.listen({
  listeningIps: '127.0.0.1',
  controlPort: 0,
  httpPort: 0,
  domain: 'tunnel.test',
  publicHost: '127.0.0.1',
  allowPorts: '41000-41099',
  tokens: [deviceToken],
  tls: { cert, key },
})

const udp = turn.addresses.find((a) => a.transport === 'udp')
const credentials = turnRestCredentials({ secret: turnSecret, user: 'alice', ttl: 3600 })
console.log(`beacon:  127.0.0.1:${beacon.port}#${beacon.certificateHash}`)
console.log(`turn:    turn:${udp.host}:${udp.port}  user ${credentials.username}  password ${credentials.password}`)
console.log(`tunnel:  ${tunnel.url}#${tunnel.certificateHash}  token ${deviceToken}`)
console.log(`http:    http://NAME.tunnel.test:${tunnel.httpPort}/ (Host header routing)`)

const stop = async () => {
  await Promise.all([beacon.close(), turn.close(), tunnel.close()])
  console.log('stopped')
}
process.once('SIGINT', () => void stop())
const exitAfter = Number(process.env.EXIT_AFTER_MS ?? 0)
if (exitAfter > 0) setTimeout(() => void stop(), exitAfter)
