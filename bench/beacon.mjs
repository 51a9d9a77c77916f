// Beacon capacity: peers held concurrently (RSS per peer) and introductions per second
// with their latency, as JSON. Runs against dist/ (npm run build first).
//
//   node bench/beacon.mjs [--peers 20000] [--servers 2] [--procs 2] [--rates 1000,2000]
//                         [--modes signal,rendezvous] [--duration 10] [--concurrency 32]
//
// Beacon instances run in their own processes (in memory, no Redis), the peers —
// dist/'s BeaconClient, each with its own identity, connected over TLS to 127.0.0.1 and
// registered for connect-by-PeerId — in `--procs` other processes. Pair k is peers 2k
// and 2k+1 of one process, on one Beacon. Each process holds at most 20,000 file
// descriptors on the machines this was written on (a hard limit), so 20,000 peers need
// at least two Beacon processes; `--servers 1 --procs 1 --peers 19900` measures one.
//
// RSS per peer = (Beacon RSS with the peers − RSS before they came) ÷ peers, after GC.
// The peer processes run with --max-semi-space-size=8: the load generator's scavenges are
// then short (5–8 ms with 10,000 peers each, against up to 11–22 ms with 32), and its
// pauses count in the latencies; the Beacons run with Node's defaults.
// The Beacons run with the Node flags of bin/peerlink-server's first line (what
// `peerlink-server beacon` runs with: a 2 MiB young generation keeps scavenges under
// ~6 ms, against 14–22 ms with Node's default). Extra flags: BEACON_BENCH_NODE_ARGS
// (Beacons), BEACON_BENCH_PEER_NODE_ARGS (peers);
// BEACON_BENCH_TRACE_GC=1 adds --trace-gc. GC pauses of each phase are reported
// (`beaconGc`, `peersGc`: scavenges, mark-compacts, total and longest pause in ms).
// The Beacon's CPU time is also sampled for 5 s with the peers held and idle (heartbeats).
// Introductions are paced (open loop) at each rate for --duration seconds; latency is
// measured from the scheduled time to the moment both peers know each other:
//   signal      A's offer reached B (with A's observed address) and A has the Beacon's
//               answer (with B's observed address) — connect-by-PeerId
//   rendezvous  A announces a fresh identifier, then B; both have their introduction
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { createSelfSignedCertificate } from '../dist/server/tls.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const PEERS = Number(arg('peers', 20_000))
/** The Node flags bin/peerlink-server runs with (its shebang line). */
const SERVER_FLAGS = (/node (.*)$/.exec(readFileSync(new URL('../bin/peerlink-server', import.meta.url), 'utf8').split('\n')[0])?.[1] ?? '').split(' ').filter(Boolean)
const SERVERS = Number(arg('servers', 2))
const PROCS = Number(arg('procs', 2))
const RATES = String(arg('rates', '1000,2000')).split(',').map(Number)
const MODES = String(arg('modes', 'signal,rendezvous')).split(',')
const DURATION_S = Number(arg('duration', 10))
const CONCURRENCY = Number(arg('concurrency', 32))
const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const round = (x, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const log = (...args) => console.error('bench/beacon:', ...args)

function request(child, message, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m?.type !== type) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(m)
    }
    const onExit = (code) => reject(new Error(`child exited with ${code} while waiting for ${type}`))
    child.on('message', onMessage)
    child.once('exit', onExit)
    if (message !== undefined) child.send(message)
  })
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/** GC pauses of several processes: counts and total added, the longest pause kept. */
function sumGc(list) {
  return {
    minor: list.reduce((n, g) => n + g.minor, 0),
    major: list.reduce((n, g) => n + g.major, 0),
    pauseMsTotal: round(list.reduce((n, g) => n + g.pauseMsTotal, 0), 1),
    pauseMsMax: round(Math.max(0, ...list.map((g) => g.pauseMsMax)), 1),
  }
}

const loadBefore = os.loadavg()
const { cert, key, hash } = createSelfSignedCertificate()
const servers = []
const peerProcs = []
try {
  for (let s = 0; s < SERVERS; s++) {
    const options = { host: '127.0.0.1', port: 0, cert, key, maxConnectionsPerIp: 1_000_000, maxConnections: 1_000_000 }
    const child = fork(here('./fixtures/beacon-server.mjs'), [JSON.stringify(options)], { execArgv: ['--expose-gc', ...SERVER_FLAGS, ...(process.env.BEACON_BENCH_TRACE_GC ? ['--trace-gc'] : []), ...(process.env.BEACON_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const { port } = await request(child, undefined, 'listening')
    servers.push({ child, spec: `127.0.0.1:${port}#${hash}` })
  }
  const idle = await Promise.all(servers.map(({ child }) => request(child, 'stats', 'stats')))

  // Spread the peers over the processes; pairs stay on one Beacon.
  const perProc = Math.ceil(PEERS / PROCS / 2) * 2
  let first = 0
  const connectPlan = []
  for (let p = 0; p < PROCS && first < PEERS; p++) {
    const count = Math.min(perProc, PEERS - first)
    const serverOf = Array.from({ length: count }, (_, i) => Math.floor((first + i) / 2) % SERVERS)
    const child = fork(here('./fixtures/beacon-peers.mjs'), [], { execArgv: ['--max-semi-space-size=8', ...(process.env.BEACON_BENCH_PEER_NODE_ARGS ?? '').split(' ').filter(Boolean), ...(process.env.BEACON_BENCH_TRACE_GC ? ['--trace-gc'] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    await request(child, undefined, 'ready')
    peerProcs.push(child)
    connectPlan.push({ child, message: { cmd: 'connect', specs: servers.map((s) => s.spec), count, concurrency: CONCURRENCY, serverOf } })
    first += count
  }
  log(`connecting ${PEERS} peers to ${SERVERS} Beacon process(es) from ${peerProcs.length} processes …`)
  const connectStart = performance.now()
  const connected = await Promise.all(connectPlan.map(({ child, message }) => request(child, message, 'connected')))
  const connectSeconds = (performance.now() - connectStart) / 1000
  const held = connected.reduce((n, c) => n + c.connected, 0)
  const failed = connected.reduce((n, c) => n + c.failed, 0)
  log(`${held} connected and listening (${failed} failed${failed ? `: ${connected.find((c) => c.firstError)?.firstError}` : ''}) in ${round(connectSeconds, 1)} s`)
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  const loaded = await Promise.all(servers.map(({ child }) => request(child, 'stats', 'stats')))
  const registrations = loaded.reduce((n, s) => n + s.stats.registrations, 0)
  const rssTotal = loaded.reduce((n, s) => n + s.rss, 0)
  const rssGrowth = loaded.reduce((n, s, i) => n + s.rss - idle[i].rss, 0)
  const heapGrowth = loaded.reduce((n, s, i) => n + s.heapUsed - idle[i].heapUsed, 0)

  // Background load: what the held peers cost with no introductions (heartbeats).
  const idleBefore = await Promise.all(servers.map(({ child }) => request(child, 'cpu', 'cpu')))
  const idleStart = performance.now()
  await new Promise((resolve) => setTimeout(resolve, 5_000))
  const idleAfter = await Promise.all(servers.map(({ child }) => request(child, 'cpu', 'cpu')))
  const idleCpuShare = idleAfter.reduce((n, s, i) => n + s.cpuMs - idleBefore[i].cpuMs, 0) / (performance.now() - idleStart)
  log(`Beacon CPU while holding the peers idle: ${round(idleCpuShare * 100, 1)} % of one core`)

  const introductions = []
  for (const mode of MODES) {
    for (const rate of RATES) {
      const cpuBefore = await Promise.all(servers.map(({ child }) => request(child, 'cpu', 'cpu')))
      const results = await Promise.all(
        peerProcs.map((child) => request(child, { cmd: 'introduce', mode, rate: rate / peerProcs.length, durationMs: DURATION_S * 1000 }, 'introduced')),
      )
      const cpuAfter = await Promise.all(servers.map(({ child }) => request(child, 'cpu', 'cpu')))
      const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b)
      const elapsed = Math.max(...results.map((r) => r.elapsedMs)) / 1000
      const serverCpuMs = cpuAfter.reduce((n, s, i) => n + s.cpuMs - cpuBefore[i].cpuMs, 0)
      const entry = {
        mode,
        targetPerSecond: rate,
        completed: latencies.length,
        achievedPerSecond: round(latencies.length / elapsed, 1),
        errors: results.reduce((n, r) => n + r.errors, 0),
        lost: results.reduce((n, r) => n + r.lost, 0),
        firstError: results.find((r) => r.firstError)?.firstError,
        latencyMs: { p50: round(percentile(latencies, 50)), p90: round(percentile(latencies, 90)), p99: round(percentile(latencies, 99)), max: round(latencies.at(-1) ?? NaN) },
        beaconCpuUsPerIntroduction: round((serverCpuMs * 1000) / Math.max(1, latencies.length), 1),
        beaconSystemCpuShare: round(cpuAfter.reduce((n, s, i) => n + s.systemMs - cpuBefore[i].systemMs, 0) / Math.max(1, serverCpuMs)),
        peersCpuUsPerIntroduction: round((results.reduce((n, r) => n + r.cpuMs, 0) * 1000) / Math.max(1, latencies.length), 1),
        beaconGc: sumGc(cpuAfter.map((c) => c.gc)),
        peersGc: sumGc(results.map((r) => r.gc)),
      }
      introductions.push(entry)
      log(JSON.stringify(entry))
    }
  }

  const result = {
    benchmark: 'beacon',
    peers: { requested: PEERS, held, failed, registrations, beaconProcesses: SERVERS, peerProcesses: peerProcs.length, connectSeconds: round(connectSeconds, 1), connectsPerSecond: round(held / connectSeconds, 1), beaconIdleCpuPercentOfOneCore: round(idleCpuShare * 100, 1) },
    memory: {
      beaconRssMiB: round(rssTotal / 2 ** 20, 1),
      beaconIdleRssMiB: round(idle.reduce((n, s) => n + s.rss, 0) / 2 ** 20, 1),
      rssPerPeerKiB: round(rssGrowth / held / 1024, 2),
      heapPerPeerKiB: round(heapGrowth / held / 1024, 2),
      projectedRssMiBFor20000: round((idle.reduce((n, s) => n + s.rss, 0) + (rssGrowth / held) * 20_000) / 2 ** 20, 1),
    },
    introductions,
    machine: { beaconNodeFlags: SERVER_FLAGS, cpu: os.cpus()[0]?.model, cpus: os.cpus().length, node: process.version, loadavgBefore: loadBefore.map((x) => round(x)), loadavgAfter: os.loadavg().map((x) => round(x)) },
  }
  console.log(JSON.stringify(result))
} finally {
  for (const child of peerProcs) child.connected && child.send({ cmd: 'close' })
  await Promise.all(servers.map(({ child }) => child.connected ? request(child, 'close', 'never').catch(() => {}) : undefined))
  for (const child of [...peerProcs, ...servers.map((s) => s.child)]) if (child.exitCode === null) child.kill('SIGKILL')
}
