// Throughput of peerlink's verified secure connection against its own building blocks,
// measured in the same run on loopback (ratios, not absolute numbers, are the result):
//   secureConnection    PeerSocket + openSecureConnection (node:stream Duplex wrapper)
//   secretStreamDirect  udx-native + @hyperswarm/secret-stream used directly
//   bareUdx             a bare udx-native stream (no encryption)
//   tcp                 plain Node net (TCP) on 127.0.0.1
// Each variant sends MIB MiB one way in 64 KiB writes (--chunk-kib); variants are interleaved per
// repetition; the median (and the best) of the repetitions is reported. Runs against dist/ (npm run build first).
//
//   node bench/secure-stream.mjs [--mib 128] [--reps 11] [--chunk-kib 64] [--only secureConnection,tcp]
import net from 'node:net'
import os from 'node:os'
import { once } from 'node:events'
import UDX from 'udx-native'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { PeerSocket, openSecureConnection } from '../dist/transport/index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const MIB = arg('mib', 128)
const REPS = arg('reps', 11)
const TOTAL = MIB * 1024 * 1024
const CHUNK_KIB = arg('chunk-kib', 64)
const CHUNK = Buffer.alloc(CHUNK_KIB * 1024, 0x5a)

/** Write TOTAL bytes to `writable`, honouring backpressure, then end it. */
async function pump(writable) {
  let sent = 0
  while (sent < TOTAL) {
    const chunk = TOTAL - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, TOTAL - sent)
    sent += chunk.length
    if (!writable.write(chunk)) await new Promise((resolve) => writable.once('drain', resolve))
  }
  writable.end()
}

/** CPU milliseconds per MiB of each measured run, by variant (filled by measure()). */
const cpuSamples = []

/**
 * Resolve with MiB/s once `readable` has delivered TOTAL bytes and ended; records the
 * process CPU time (user + system) the transfer used in `cpuSamples`.
 */
async function measure(writable, readable) {
  let received = 0
  const done = new Promise((resolve, reject) => {
    readable.on('data', (d) => (received += d.length))
    readable.once('end', resolve)
    readable.once('error', reject)
  })
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  await Promise.all([pump(writable), done])
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  cpuSamples.push((cpu.user + cpu.system) / 1000 / MIB)
  if (received !== TOTAL) throw new Error(`received ${received} of ${TOTAL} bytes`)
  return MIB / seconds
}

function closed(stream) {
  return stream.destroyed ? Promise.resolve() : new Promise((resolve) => stream.once('close', resolve))
}

async function secureConnection() {
  const a = await PeerSocket.bind({ host: '127.0.0.1' })
  const b = await PeerSocket.bind({ host: '127.0.0.1' })
  const ka = NoiseSecretStream.keyPair()
  const kb = NoiseSecretStream.keyPair()
  const ia = a.allocateStreamId()
  const ib = b.allocateStreamId()
  const [ca, cb] = await Promise.all([
    openSecureConnection({ socket: a, remote: { host: '127.0.0.1', port: b.port }, localStreamId: ia, remoteStreamId: ib, isInitiator: true, keyPair: ka, expectedRemotePublicKey: kb.publicKey }),
    openSecureConnection({ socket: b, remote: { host: '127.0.0.1', port: a.port }, localStreamId: ib, remoteStreamId: ia, isInitiator: false, keyPair: kb, expectedRemotePublicKey: ka.publicKey }),
  ])
  ca.resume()
  const mibs = await measure(ca, cb)
  cb.end()
  await Promise.all([ca.close(), cb.close()])
  await Promise.all([a.close(), b.close()])
  return mibs
}

function udxPair() {
  const u1 = new UDX()
  const u2 = new UDX()
  const s1 = u1.createSocket()
  const s2 = u2.createSocket()
  s1.bind(0, '127.0.0.1')
  s2.bind(0, '127.0.0.1')
  const r1 = u1.createStream(1)
  const r2 = u2.createStream(2)
  r1.connect(s1, 2, s2.address().port, '127.0.0.1')
  r2.connect(s2, 1, s1.address().port, '127.0.0.1')
  return { r1, r2, close: () => Promise.all([s1.close(), s2.close()]) }
}

async function secretStreamDirect() {
  const { r1, r2, close } = udxPair()
  const e1 = new NoiseSecretStream(true, r1, { keyPair: NoiseSecretStream.keyPair() })
  const e2 = new NoiseSecretStream(false, r2, { keyPair: NoiseSecretStream.keyPair() })
  await Promise.all([e1.opened, e2.opened])
  e1.resume()
  const mibs = await measure(e1, e2)
  e2.end()
  await Promise.all([closed(e1), closed(e2)])
  await close()
  return mibs
}

async function bareUdx() {
  const { r1, r2, close } = udxPair()
  r1.resume()
  const mibs = await measure(r1, r2)
  r2.end()
  await Promise.all([closed(r1), closed(r2)])
  await close()
  return mibs
}

async function tcp() {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const client = net.connect(server.address().port, '127.0.0.1')
  await once(client, 'connect')
  const [socket] = await accepted
  client.resume()
  const mibs = await measure(client, socket)
  socket.end()
  await Promise.all([closed(client), closed(socket)])
  await new Promise((resolve) => server.close(resolve))
  return mibs
}

const all = { secureConnection, secretStreamDirect, bareUdx, tcp }
const onlyIndex = process.argv.indexOf('--only')
const variants =
  onlyIndex === -1
    ? all
    : Object.fromEntries(process.argv[onlyIndex + 1].split(',').map((name) => [name, all[name]]))
for (const [name, run] of Object.entries(variants)) if (!run) throw new Error(`unknown variant ${name}`)
const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
const cpuPerMiB = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
const loadBefore = os.loadavg()
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, run] of Object.entries(variants)) {
    samples[name].push(await run())
    cpuPerMiB[name].push(cpuSamples.pop())
  }
}
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const round = (x) => Math.round(x * 10) / 10
const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v))]))
const best = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(Math.max(...v))]))
const ratio = (x) => (x && results.secureConnection ? Math.round((results.secureConnection / x) * 1000) / 1000 : null)
// Per-repetition ratio of neighbouring runs, which cancels slow periods (shared CPUs)
// that hit both variants of one repetition.
const paired =
  samples.secureConnection && samples.secretStreamDirect
    ? Math.round(median(samples.secureConnection.map((x, i) => x / samples.secretStreamDirect[i])) * 1000) / 1000
    : null
console.log(
  JSON.stringify({
    bench: 'secure-stream',
    unit: 'MiB/s',
    mib: MIB,
    reps: REPS,
    chunkKiB: CHUNK_KIB,
    results,
    ratios: {
      vsSecretStreamDirect: ratio(results.secretStreamDirect),
      vsBareUdx: ratio(results.bareUdx),
      vsTcp: ratio(results.tcp),
      pairedVsSecretStreamDirect: paired,
    },
    best,
    // CPU time (ms, user + system, both ends in this one process) per MiB moved: less
    // sensitive than MiB/s to other load on shared machines.
    cpuMsPerMiB: Object.fromEntries(Object.entries(cpuPerMiB).map(([k, v]) => [k, Math.round(median(v) * 100) / 100])),
    samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map(round)])),
    machine: { cpu: os.cpus()[0]?.model, cpus: os.cpus().length, node: process.version, loadavgBefore: loadBefore.map(round), loadavgAfter: os.loadavg().map(round) },
  }),
)
