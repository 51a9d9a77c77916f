// Connection time and direct-path throughput through two real kernel NATs (the NAT lab:
// Linux namespaces + nftables, needs root), peerlink side by side with hyperdht and with
// a bare udx-native stream, in the same lab cell and run. Runs against dist/ (npm run
// build first); prints one JSON line.
//
//   node bench/connect.mjs [--runs 20] [--warmup 10] [--mib 64] [--reps 11] [--filtering address-and-port-dependent]
//   node bench/connect.mjs --ladder [--runs 20] [--mib 16] [--reps 3]   (the TURN and tunnel steps: bench/ladder.mjs)
//                          [--ice '{"ta":50}']   (ICE options for peerlink's peers, to compare with the defaults)
//                          [--profile DIR]       (V8 CPU profiles of the peer processes, one file each)
//
// The cell: one public server (a peerlink Beacon, which is also the peers' STUN server,
// and a 10-node hyperdht testnet, `hyperdht/testnet`, each in its own process), and two
// sites, each one host behind its own endpoint-independent-mapping NAT (filtering
// `--filtering`, by default address-and-port-dependent: a "port-restricted cone" home
// router). Each host runs one process per system (peerlink, hyperdht, bare udx).
//
// connect: time from `connect()` to the first byte the listener wrote on the verified
// connection (it writes one at once), `--runs` times in a row, p50/p95.
//   cold  a new dialer for each run — new UDP socket, so new NAT mappings to punch —
//         registered at the Beacon / bootstrapped into the DHT before the clock starts;
//   warm  one dialer for every run (the NAT mappings already exist).
// The listener (a peerlink peer / a hyperdht server in the other host) stays up. Each
// series starts with `--warmup` connects that are not counted but reported
// (`warmupMs`): the first connects of a fresh process run unoptimised code and are
// slower, for both libraries (peerlink's more so: more code runs per connect).
//
// throughput: `--mib` MiB one way over the direct path (64 KiB writes, backpressure
// honoured), timed from the first write to the receiver's acknowledgement of the end;
// median MiB/s of `--reps` repetitions, the three variants interleaved, and the CPU time
// of sender + receiver per MiB while the data flows (each connection is opened before and
// closed after the measured part; --runs 0 measures only throughput):
//   peerlink  a verified connection's main stream (secret-stream + multiplexer over udx)
//   hyperdht  a hyperdht connection (secret-stream over udx)
//   bareUdx   one bare udx-native stream between the hosts' public mappings, punched by hand
//
// JSON: connectMs.{peerlink,hyperdht}.{cold,warm} (p50, p95, min, max; peerlink also the
// median ICE and handshake phases and the candidate types of the selected pairs),
// throughputMiBps (medians), cpuMsPerMiB (CPU time of sender + receiver per MiB, less
// sensitive to the machine's other load), ratios, targets (issue 6's: connect p50 ≤ 1.5 ×
// hyperdht's, p95 < 50 ms; throughput ≥ hyperdht's and ≥ 0.8 × bare udx), the raw
// samples, and the machine with its load average before and after.
import os from 'node:os'

if (process.argv.includes('--ladder')) {
  // Issue 7's part: connect time and throughput per ladder step, in bench/ladder.mjs.
  await import('./ladder.mjs')
  process.exit(0)
}
import { fileURLToPath } from 'node:url'
import { createNatLab, natLabSupport } from '../dist/testing/index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const RUNS = Number(arg('runs', 20))
const MIB = Number(arg('mib', 64))
const REPS = Number(arg('reps', 11))
const WARMUP = Number(arg('warmup', 10))
const FILTERING = arg('filtering', 'address-and-port-dependent')
const ICE = arg('ice', undefined) === undefined ? undefined : JSON.parse(arg('ice'))
// --profile DIR: each peer process writes a V8 CPU profile (.cpuprofile) into DIR.
const PROFILE = arg('profile', undefined)
const log = (...args) => console.error('bench/connect:', ...args)
const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const round = (x, digits = 1) => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits)

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}
const median = (values) => percentile(values, 50)

function summary(samples) {
  const ms = samples.map((s) => s.ms)
  return { runs: ms.length, p50: round(percentile(ms, 50)), p95: round(percentile(ms, 95)), min: round(Math.min(...ms)), max: round(Math.max(...ms)) }
}

function nextMessage(child, accept, timeout, what) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      const value = accept(m)
      if (value === undefined) return
      cleanup()
      resolve(value)
    }
    const onExit = (code) => {
      cleanup()
      reject(new Error(`${what}: the child exited (${code})`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`${what}: no answer within ${timeout} ms`))
    }, timeout)
    const cleanup = () => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

let nextId = 1
async function call(child, op, args = {}, timeout = 120_000) {
  const id = nextId++
  const reply = nextMessage(child, (m) => (m?.id === id ? m : undefined), timeout, op)
  child.send({ id, op, ...args })
  const r = await reply
  if (!r.ok) throw new Error(`${op}: ${r.code} ${r.message}`)
  return r
}

const support = await natLabSupport()
if (!support.available) {
  console.log(JSON.stringify({ bench: 'connect', skipped: `the NAT lab cannot run here: ${support.reason} (it needs Linux and root)` }))
  process.exit(0)
}

const loadBefore = os.loadavg()
const lab = await createNatLab({
  servers: { server: {} },
  sites: {
    'home-a': { mapping: 'endpoint-independent', filtering: FILTERING, hosts: ['alice'] },
    'home-b': { mapping: 'endpoint-independent', filtering: FILTERING, hosts: ['bob'] },
  },
})
let result
const peers = []
try {
  // Each system gets its own processes (servers and peers), so that one's timers and
  // background traffic never delay the other's.
  const serve = (role) => lab.fork('server', fixture('connect-server.mjs'), [role, lab.address('server')])
  const [{ beacon }, { bootstrap }] = await Promise.all([
    nextMessage(serve('beacon'), (m) => (m?.beacon ? m : undefined), 60_000, 'beacon'),
    nextMessage(serve('hyperdht'), (m) => (m?.bootstrap ? m : undefined), 60_000, 'hyperdht testnet'),
  ])
  const start = async (host) => {
    const execArgv = PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, `--cpu-prof-name=${host}-${peers.length}.cpuprofile`]
    const child = lab.fork(host, fixture('connect-peer.mjs'), [], { execArgv })
    peers.push(child)
    await nextMessage(child, (m) => (m?.ready ? true : undefined), 30_000, `peer in ${host}`)
    return child
  }
  const [alice, bob, aliceDht, bobDht, aliceUdx, bobUdx] = await Promise.all(['alice', 'bob', 'alice', 'bob', 'alice', 'bob'].map(start))
  const ice = ICE === undefined ? {} : { ice: ICE }

  log('peerlink: listener')
  const { peerId } = await call(bob, 'peerlink-listen', { beacon, ...ice })
  const { publicKey } = await call(bobDht, 'dht-listen', { bootstrap })
  const connect = { peerlink: {}, hyperdht: {} }
  const raw = { peerlink: {}, hyperdht: {} }
  const warmupMs = { peerlink: {}, hyperdht: {} }
  for (const mode of RUNS > 0 ? ['cold', 'warm'] : []) {
    const fresh = mode === 'cold'
    log(`peerlink: ${RUNS} ${mode} connects`)
    const pl = (await call(alice, 'peerlink-dial', { beacon, target: peerId, runs: WARMUP + RUNS, fresh, ...ice })).samples
    raw.peerlink[mode] = pl.slice(WARMUP)
    warmupMs.peerlink[mode] = pl.slice(0, WARMUP).map((s) => round(s.ms))
    log(`hyperdht: ${RUNS} ${mode} connects`)
    const dht = (await call(aliceDht, 'dht-dial', { bootstrap, publicKey, runs: WARMUP + RUNS, fresh })).samples
    raw.hyperdht[mode] = dht.slice(WARMUP)
    warmupMs.hyperdht[mode] = dht.slice(0, WARMUP).map((s) => round(s.ms))
    connect.peerlink[mode] = {
      ...summary(raw.peerlink[mode]),
      iceP50: round(median(raw.peerlink[mode].map((s) => s.iceMs))),
      handshakeP50: round(median(raw.peerlink[mode].map((s) => s.handshakeMs))),
      // Median ms from connect() to each step of the attempt (its 'attempt' events), to
      // connect() resolving (`connected`) and to the first byte (`firstByte`).
      stepsP50: Object.fromEntries(
        [...new Set(raw.peerlink[mode].flatMap((s) => Object.keys(s.steps ?? {})))].map((step) => [step, round(median(raw.peerlink[mode].map((s) => s.steps?.[step]).filter((v) => v !== undefined)))]).concat([
          ['connected', round(median(raw.peerlink[mode].map((s) => s.connectedMs)))],
          ['firstByte', round(median(raw.peerlink[mode].map((s) => s.ms)))],
        ]),
      ),
      pairs: [...new Set(raw.peerlink[mode].map((s) => `${s.local}-${s.remote}`))],
    }
    connect.hyperdht[mode] = summary(raw.hyperdht[mode])
  }

  const bytes = MIB * 1024 * 1024
  const mibps = { peerlink: [], hyperdht: [], bareUdx: [] }
  const cpuMsPerMiB = { peerlink: [], hyperdht: [], bareUdx: [] }
  const cpuSplit = { peerlink: [], hyperdht: [], bareUdx: [] }
  // Per repetition: [sender user-CPU ms, receiver user-CPU ms, sender datagrams, receiver datagrams] per MiB.
  const userAndDatagrams = { peerlink: [], hyperdht: [], bareUdx: [] }
  /**
   * Pumps `bytes` from `a` (which has a connection open) to `b`; adds the CPU time both
   * spent meanwhile per MiB to cpuMsPerMiB[name]. The connection's setup is not counted.
   */
  const withCpu = async (name, [a, b]) => {
    const before = await Promise.all([call(a, 'cpu'), call(b, 'cpu')])
    const result = await call(a, 'pump', { bytes })
    const after = await Promise.all([call(a, 'cpu'), call(b, 'cpu')])
    await call(a, 'drop')
    cpuMsPerMiB[name].push((after[0].ms - before[0].ms + after[1].ms - before[1].ms) / MIB)
    cpuSplit[name].push([round((after[0].ms - before[0].ms) / MIB, 2), round((after[1].ms - before[1].ms) / MIB, 2)])
    userAndDatagrams[name].push([
      round((after[0].userMs - before[0].userMs) / MIB, 2),
      round((after[1].userMs - before[1].userMs) / MIB, 2),
      round((after[0].udp.out - before[0].udp.out) / MIB),
      round((after[1].udp.out - before[1].udp.out) / MIB),
    ])
    return result
  }
  const [{ port: alicePort }, { port: bobPort }] = await Promise.all([call(aliceUdx, 'udx-bind'), call(bobUdx, 'udx-bind')])
  const alicePublic = { host: lab.site('home-a').publicAddress, port: alicePort }
  const bobPublic = { host: lab.site('home-b').publicAddress, port: bobPort }
  // Endpoint-independent mapping keeps a free inside port: each host's mapping is its
  // box's public address and its own port. Both send at once: the punch.
  await Promise.all([call(aliceUdx, 'udx-punch', bobPublic), call(bobUdx, 'udx-punch', alicePublic)])
  let pathInfo
  for (let rep = 0; rep < REPS; rep++) {
    log(`throughput, repetition ${rep + 1} of ${REPS}: ${MIB} MiB each`)
    const opened = await call(alice, 'peerlink-open', { beacon, target: peerId, ...ice })
    pathInfo = { local: opened.local, remote: opened.remote, path: opened.path }
    const pl = await withCpu('peerlink', [alice, bob])
    mibps.peerlink.push(MIB / (pl.ms / 1000))
    await call(aliceDht, 'dht-open', { bootstrap, publicKey })
    const dht = await withCpu('hyperdht', [aliceDht, bobDht])
    mibps.hyperdht.push(MIB / (dht.ms / 1000))
    const ids = { streamId: 2 * rep + 2, remoteStreamId: 2 * rep + 1 }
    await call(bobUdx, 'udx-listen', { ...alicePublic, streamId: ids.remoteStreamId, remoteStreamId: ids.streamId })
    await call(aliceUdx, 'udx-open', { ...bobPublic, ...ids })
    const udx = await withCpu('bareUdx', [aliceUdx, bobUdx])
    mibps.bareUdx.push(MIB / (udx.ms / 1000))
  }
  const throughput = Object.fromEntries(Object.entries(mibps).map(([k, v]) => [k, round(median(v))]))

  const ratios = {
    connectP50VsHyperdht: round(connect.peerlink.cold?.p50 / connect.hyperdht.cold?.p50, 2),
    warmConnectP50VsHyperdht: round(connect.peerlink.warm?.p50 / connect.hyperdht.warm?.p50, 2),
    throughputVsHyperdht: round(throughput.peerlink / throughput.hyperdht, 2),
    throughputVsBareUdx: round(throughput.peerlink / throughput.bareUdx, 2),
  }
  result = {
    bench: 'connect',
    cell: { mapping: 'endpoint-independent', filtering: FILTERING, ice: ICE ?? 'defaults' },
    connectMs: connect,
    throughputMiBps: throughput,
    // CPU time of both processes (sender + receiver) per MiB moved while pumping (the
    // connection's setup is not counted): less sensitive to the machine's other load than MiB/s.
    cpuMsPerMiB: Object.fromEntries(Object.entries(cpuMsPerMiB).map(([k, v]) => [k, round(median(v), 2)])),
    // [sender, receiver] CPU ms per MiB, per repetition.
    cpuMsPerMiBSenderReceiver: cpuSplit,
    // Per repetition: [sender, receiver] user-mode CPU ms per MiB, then the datagrams each
    // host sent per MiB (its namespace's UDP counters: data packets, and acknowledgements).
    userCpuAndDatagramsPerMiB: userAndDatagrams,
    throughputSamples: Object.fromEntries(Object.entries(mibps).map(([k, v]) => [k, v.map((x) => round(x))])),
    peerlinkPath: pathInfo,
    ratios,
    targets: {
      connectP50AtMost1_5xHyperdht: ratios.connectP50VsHyperdht <= 1.5,
      connectP95Under50ms: connect.peerlink.cold?.p95 < 50,
      throughputAtLeastHyperdht: ratios.throughputVsHyperdht >= 1,
      throughputAtLeast0_8xBareUdx: ratios.throughputVsBareUdx >= 0.8,
    },
    warmupMs,
    peerlinkPhasesMs: Object.fromEntries(Object.entries(raw.peerlink).map(([k, v]) => [k, v.map((s) => [round(s.ms), s.iceMs, s.handshakeMs])])),
    samplesMs: {
      peerlink: Object.fromEntries(Object.entries(raw.peerlink).map(([k, v]) => [k, v.map((s) => round(s.ms))])),
      hyperdht: Object.fromEntries(Object.entries(raw.hyperdht).map(([k, v]) => [k, v.map((s) => round(s.ms))])),
    },
    params: { runs: RUNS, warmup: WARMUP, mib: MIB, reps: REPS },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore: loadBefore.map((x) => round(x, 2)), loadAfter: os.loadavg().map((x) => round(x, 2)) },
  }
} finally {
  // A profiled process writes its profile when it exits by itself, not when killed.
  if (PROFILE !== undefined) {
    await Promise.all(peers.map((child) => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      const timer = setTimeout(resolve, 10_000)
      child.once('exit', () => resolve(clearTimeout(timer)))
      child.disconnect()
    })))
  }
  await lab.close()
}
console.log(JSON.stringify(result))
