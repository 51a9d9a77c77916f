// Throughput of the stream multiplexer (StreamMux) against the same bytes over the bare
// transport it runs on, measured in the same run (ratios, not absolute numbers, are the
// result), one process, loopback:
//   tcpBare          a TCP connection on 127.0.0.1 (net), one direction
//   tcpMux1          StreamMux over that TCP connection, one stream
//   tcpMux16         StreamMux over TCP, 16 streams in parallel (same total bytes)
//   secureBare       the verified secure connection (PeerSocket + openSecureConnection)
//   secureMux1       StreamMux over the secure connection, one stream
//   secureMux16      StreamMux over the secure connection, 16 parallel streams
// Each variant sends MIB MiB in --chunk-kib writes honouring backpressure; the receiver
// only counts bytes. Variants are interleaved per repetition; medians are reported.
// Runs against dist/ (npm run build first).
//
//   node bench/stream-mux.mjs [--mib 128] [--reps 7] [--chunk-kib 64] [--window-kib 256] [--max-window-kib 16384]
//                             [--only tcpBare,tcpMux1]
// --window-kib / --max-window-kib: the receivers' initialWindow / maxReceiveWindow
// (defaults: the library's, 256 KiB growing up to 16 MiB while the reader keeps up).
import net from 'node:net'
import os from 'node:os'
import { once } from 'node:events'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { PeerSocket, openSecureConnection } from '../dist/transport/index.js'
import { StreamMux } from '../dist/connection/index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const MIB = arg('mib', 128)
const REPS = arg('reps', 7)
const TOTAL = MIB * 1024 * 1024
const CHUNK_KIB = arg('chunk-kib', 64)
const CHUNK = Buffer.alloc(CHUNK_KIB * 1024, 0x5a)
const STREAMS = 16
const WINDOW = arg('window-kib', 256) * 1024
const MAX_WINDOW = process.argv.includes('--max-window-kib') ? arg('max-window-kib') * 1024 : undefined
const windows = { initialWindow: WINDOW, ...(MAX_WINDOW === undefined ? {} : { maxReceiveWindow: MAX_WINDOW }) }

/** Write `total` bytes to `writable`, honouring backpressure, then end it. */
async function pump(writable, total) {
  let sent = 0
  while (sent < total) {
    const chunk = total - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, total - sent)
    sent += chunk.length
    if (!writable.write(chunk)) await new Promise((resolve) => writable.once('drain', resolve))
  }
  writable.end()
}

/** Resolve with the byte count once `readable` has ended. */
function drain(readable) {
  return new Promise((resolve, reject) => {
    let received = 0
    readable.on('data', (d) => (received += d.length))
    readable.once('end', () => resolve(received))
    readable.once('error', reject)
  })
}

const cpuSamples = []

/** Time `transfer()` (which must move TOTAL bytes); returns MiB/s and records CPU ms per MiB. */
async function timed(transfer) {
  const start = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  const received = await transfer()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  cpuSamples.push((cpu.user + cpu.system) / 1000 / MIB)
  if (received !== TOTAL) throw new Error(`received ${received} of ${TOTAL} bytes`)
  return MIB / seconds
}

function closed(stream) {
  return stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', resolve))
}

async function tcpPair() {
  const server = net.createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const a = net.connect({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true })
  await once(a, 'connect')
  const [b] = await accepted
  server.close()
  return {
    a,
    b,
    close: async () => {
      a.destroy()
      b.destroy()
      await Promise.all([closed(a), closed(b)])
    },
  }
}

async function securePair() {
  const sa = await PeerSocket.bind({ host: '127.0.0.1' })
  const sb = await PeerSocket.bind({ host: '127.0.0.1' })
  const ka = NoiseSecretStream.keyPair()
  const kb = NoiseSecretStream.keyPair()
  const ia = sa.allocateStreamId()
  const ib = sb.allocateStreamId()
  const [a, b] = await Promise.all([
    openSecureConnection({ socket: sa, remote: { host: '127.0.0.1', port: sb.port }, localStreamId: ia, remoteStreamId: ib, isInitiator: true, keyPair: ka, expectedRemotePublicKey: kb.publicKey }),
    openSecureConnection({ socket: sb, remote: { host: '127.0.0.1', port: sa.port }, localStreamId: ib, remoteStreamId: ia, isInitiator: false, keyPair: kb, expectedRemotePublicKey: ka.publicKey }),
  ])
  return {
    a,
    b,
    close: async () => {
      await Promise.all([a.close(), b.close()])
      await Promise.all([sa.close(), sb.close()])
    },
  }
}

/** The bare transport: TOTAL bytes from a to b. */
async function bare(makePair) {
  const { a, b, close } = await makePair()
  a.resume()
  const mibs = await timed(async () => (await Promise.all([pump(a, TOTAL), drain(b)]))[1])
  b.end()
  await close()
  return mibs
}

/** TOTAL bytes from a to b over `streams` parallel StreamMux streams. */
async function mux(makePair, streams) {
  const { a, b, close } = await makePair()
  const ma = new StreamMux(a, { isInitiator: true, ...windows })
  const mb = new StreamMux(b, { isInitiator: false, ...windows })
  const received = []
  mb.on('stream', (s) => received.push(drain(s).then((n) => (s.end(), n))))
  const per = Math.floor(TOTAL / streams)
  const mibs = await timed(async () => {
    const sizes = Array.from({ length: streams }, (_, i) => (i === 0 ? TOTAL - per * (streams - 1) : per))
    const outbound = sizes.map((size) => {
      const s = ma.openStream({ label: 'bench' })
      s.resume()
      return pump(s, size).then(() => closed(s))
    })
    await Promise.all(outbound)
    const counts = await Promise.all(received)
    return counts.reduce((x, y) => x + y, 0)
  })
  await Promise.all([ma.close({ timeout: 2_000 }), mb.close({ timeout: 2_000 })])
  await close()
  return mibs
}

const all = {
  tcpBare: () => bare(tcpPair),
  tcpMux1: () => mux(tcpPair, 1),
  tcpMux16: () => mux(tcpPair, STREAMS),
  secureBare: () => bare(securePair),
  secureMux1: () => mux(securePair, 1),
  secureMux16: () => mux(securePair, STREAMS),
}
const onlyIndex = process.argv.indexOf('--only')
const variants =
  onlyIndex === -1 ? all : Object.fromEntries(process.argv[onlyIndex + 1].split(',').map((name) => [name, all[name]]))
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
const round3 = (x) => Math.round(x * 1000) / 1000
const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v))]))
/** Median of the per-repetition ratios (cancels slow periods that hit both runs of one repetition). */
const paired = (x, y) => (samples[x] && samples[y] ? round3(median(samples[x].map((v, i) => v / samples[y][i]))) : null)
console.log(
  JSON.stringify({
    bench: 'stream-mux',
    unit: 'MiB/s',
    mib: MIB,
    reps: REPS,
    chunkKiB: CHUNK_KIB,
    streams: STREAMS,
    windowKiB: WINDOW / 1024,
    maxWindowKiB: MAX_WINDOW === undefined ? 'default' : MAX_WINDOW / 1024,
    results,
    ratios: {
      tcpMux1VsBare: paired('tcpMux1', 'tcpBare'),
      tcpMux16VsBare: paired('tcpMux16', 'tcpBare'),
      secureMux1VsBare: paired('secureMux1', 'secureBare'),
      secureMux16VsBare: paired('secureMux16', 'secureBare'),
    },
    cpuMsPerMiB: Object.fromEntries(Object.entries(cpuPerMiB).map(([k, v]) => [k, Math.round(median(v) * 100) / 100])),
    samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map(round)])),
    machine: { cpu: os.cpus()[0]?.model, cpus: os.cpus().length, node: process.version, loadavgBefore: loadBefore.map(round), loadavgAfter: os.loadavg().map(round) },
  }),
)
