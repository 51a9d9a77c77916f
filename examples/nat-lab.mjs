// The NAT lab in your own tests: real network namespaces, real kernel NATs (nftables).
// A Beacon runs on a public lab server; Alice and Bob sit behind two home routers that
// map endpoint-independently and filter address-and-port-dependently (the strictest
// filtering that still punches); Bob connects to Alice by PeerId and the connection goes
// directly through both NATs. Each side runs in its own namespace as a child process
// (here: inline scripts; in a test suite, fixture modules with `lab.fork`).
//
// Run (Linux, root, `ip` and `nft` installed; in a clone after `npm ci`):
//   sudo node examples/nat-lab.mjs
import { createInterface } from 'node:readline'
import { createNatLab, natLabSupport } from 'peerlink/testing'

const support = await natLabSupport()
if (!support.available) {
  console.log(`the NAT lab cannot run here: ${support.reason}`)
  process.exit(0)
}

// Inline programs for the lab's namespaces; each prints JSON lines on stdout.
const BEACON = `
  import { BeaconServer, createSelfSignedCertificate } from 'peerlink/server'
  const { cert, key } = createSelfSignedCertificate({ ipAddresses: [process.argv[1]] })
  const beacon = await BeaconServer.listen({ host: process.argv[1], port: 4264, cert, key })
  console.log(JSON.stringify({ beacon: process.argv[1] + ':4264#' + beacon.certificateHash }))`
const ALICE = `
  import { createPeer } from 'peerlink'
  const peer = await createPeer({ beacons: [process.argv[1]] })
  await peer.listen()
  peer.on('connection', (conn) => { conn.on('error', () => {}); conn.pipe(conn) })
  console.log(JSON.stringify({ alice: peer.peerId }))`
const BOB = `
  import { createPeer } from 'peerlink'
  const peer = await createPeer({ beacons: [process.argv[1]] })
  const conn = await peer.connect(process.argv[2], { signal: AbortSignal.timeout(20000) })
  conn.end('hello through two NATs')
  let echo = ''
  for await (const chunk of conn) echo += chunk
  console.log(JSON.stringify({ path: conn.path, local: conn.info.local, remote: conn.info.remote, ms: conn.info.ms, echo }))
  await peer.close()`

// Built in ~150 ms; removed by close(), even after a crash (see docs/nat-lab.md).
const lab = await createNatLab({
  servers: { rendezvous: {} },
  sites: {
    home: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['alice'] },
    office: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['bob'] },
  },
})
try {
  const run = (node, code, ...args) => {
    const child = lab.spawn(node, process.execPath, ['--input-type=module', '-e', code, ...args], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] })
    const lines = createInterface({ input: child.stdout })
    return { child, next: () => new Promise((resolve) => lines.once('line', (line) => resolve(JSON.parse(line)))) }
  }
  const { beacon } = await run('rendezvous', BEACON, lab.address('rendezvous')).next()
  const { alice } = await run('alice', ALICE, beacon).next()
  console.log(`alice (${lab.address('alice')}, behind ${lab.site('home').publicAddress}) listens as ${alice}`)
  const result = await run('bob', BOB, beacon, alice).next()
  console.log(`bob (${lab.address('bob')}, behind ${lab.site('office').publicAddress}) connected in ${result.ms} ms over ${result.path}`)
  console.log(`  from ${result.local.address}:${result.local.port} (${result.local.type}) to ${result.remote.address}:${result.remote.port} (${result.remote.type})`)
  console.log(`  echo: ${result.echo}`)
} finally {
  await lab.close()
}
