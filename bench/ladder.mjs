// The connection ladder through real kernel NATs (the NAT lab: Linux namespaces +
// nftables, needs root): time to connect on each step of the ladder — direct, TURN,
// tunnel — and the throughput of each path against its baseline, in one lab and run.
// Runs against dist/ (npm run build first); prints one JSON line. Issue 7's part of
// bench/connect (`node bench/connect.mjs` measures the direct path against hyperdht).
//
//   node bench/ladder.mjs [--runs 20] [--mib 16] [--reps 3]
//
// The lab: one public server (three addresses: a peerlink Beacon on 4264; peerlink's TURN
// server on 3478 and coturn on 3479, UDP and TCP; a peerlink tunnel server on 443 and a
// bare TCP relay on 80) and three pairs of sites, one host each:
//   direct  two endpoint-independent NATs (address-and-port-dependent filtering)
//   turn    two endpoint-dependent NATs: no direct path without port prediction
//   tunnel  two firewalls that let only TCP 80/443 out: no UDP, no TURN (3478), no Beacon
// Every peer has the same options (the Beacon, the TURN server, the tunnel server) and
// lets the ladder decide; the path each connection took is checked.
//
// connect: time from `connect()` to the first byte the listener wrote on the verified
// connection, `--runs` times per step, p50/p95:
//   cold  a new dialer peer for each run, created just before (its Beacon connection,
//         registration, address gathering and TURN allocation all count);
//   warm  one dialer for every run of the step.
// throughput: `--mib` MiB one way (64 KiB writes, backpressure honoured) until the
// receiver acknowledges the end, median MiB/s of `--reps`:
//   direct       peerlink over the direct path
//   turn         peerlink through peerlink's TURN server; baseline: the same peers
//                through coturn (one relay thread)
//   tunnel       peerlink through the tunnel server; baseline: a bare TCP relay on the
//                same server (two TCP connections joined, no WebSocket, no encryption)
// JSON: connectMs.{direct,turn,tunnel}.{cold,warm} (p50, p95, min, max, paths seen),
// extraMs (p50 of each step minus direct's, cold and warm), throughputMiBps, ratios,
// targets (issue 7: TURN < 1 s more than direct, tunnel < 2 s more), machine.
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { createNatLab, natLabSupport } from '../dist/testing/index.js'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const RUNS = Number(arg('runs', 20))
const MIB = Number(arg('mib', 16))
const REPS = Number(arg('reps', 3))
const USER = { username: 'bench', credential: 'bench-password' }
const log = (...args) => console.error('bench/ladder:', ...args)
const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const round = (x, digits = 1) => (x === null || x === undefined ? null : Math.round(x * 10 ** digits) / 10 ** digits)
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}
const median = (values) => percentile(values, 50)

const support = await natLabSupport()
if (!support.available) {
  console.error(`bench/ladder: the NAT lab cannot run here: ${support.reason}`)
  process.exit(1)
}

const EIM = { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' }
const EDM = { mapping: 'endpoint-dependent', filtering: 'address-and-port-dependent' }
const WEB = { ...EIM, firewall: { onlyTcp: [80, 443] } }
const STEPS = { direct: EIM, turn: EDM, tunnel: WEB }
const sites = {}
for (const [step, kind] of Object.entries(STEPS)) for (const side of ['a', 'b']) sites[`${step}-${side}`] = { ...kind, hosts: [`${step}${side}`] }

const loadBefore = os.loadavg()[0]
const lab = await createNatLab({ servers: { infra: { addresses: 3 } }, sites })
const children = []
try {
  const [beaconHost, turnHost, tunnelHost] = lab.node('infra').addresses
  const servers = lab.fork('infra', fixture('ladder-servers.mjs'), [beaconHost, turnHost, tunnelHost, USER.username, USER.credential])
  children.push(servers)
  const specs = await new Promise((resolve) => servers.once('message', resolve))
  const options = (turn = specs.turn) => ({
    beacons: [specs.beacon],
    turn: [{ urls: [turn, `${turn}?transport=tcp`], ...USER }],
    tunnels: [specs.tunnel],
  })

  /** One agent process per host. */
  const agents = {}
  await Promise.all(
    Object.values(sites).map(async (site) => {
      const host = site.hosts[0]
      const child = lab.fork(host, fixture('ladder-peer.mjs'))
      children.push(child)
      await new Promise((resolve) => child.once('message', resolve))
      let next = 1
      agents[host] = (op, args = {}, timeout = 60_000) =>
        new Promise((resolve, reject) => {
          const id = next++
          const timer = setTimeout(() => reject(new Error(`${op} in ${host} timed out`)), timeout)
          const onMessage = (m) => {
            if (m.id !== id) return
            child.off('message', onMessage)
            clearTimeout(timer)
            if (m.ok) resolve(m)
            else reject(Object.assign(new Error(`${op} in ${host}: ${m.code} ${m.message}`), { code: m.code }))
          }
          child.on('message', onMessage)
          child.send({ id, op, ...args })
        })
    }),
  )

  // Listeners: the "a" host of each pair (and one more through coturn for the baseline).
  const listeners = {}
  for (const step of Object.keys(STEPS)) {
    listeners[step] = (await agents[`${step}a`]('start', { name: 'listener', options: options() })).peerId
    await agents[`${step}a`]('listen', { name: 'listener' })
  }
  const coturnListener = (await agents.turna('start', { name: 'coturn-listener', options: options(specs.coturn) })).peerId
  await agents.turna('listen', { name: 'coturn-listener' })
  log('servers and listeners up', specs)

  const connectMs = {}
  for (const step of Object.keys(STEPS)) {
    const dial = agents[`${step}b`]
    const cold = []
    const warm = []
    const paths = new Set()
    for (let run = 0; run < RUNS; run++) {
      await dial('start', { name: `cold-${run}`, options: options() })
      const r = await dial('connect', { name: `cold-${run}`, target: listeners[step] })
      cold.push(r.ms)
      paths.add(r.path)
      await dial('close', { name: `cold-${run}` })
    }
    await dial('start', { name: 'warm', options: options() })
    for (let run = 0; run < RUNS; run++) {
      const r = await dial('connect', { name: 'warm', target: listeners[step] })
      warm.push(r.ms)
      paths.add(r.path)
    }
    await dial('close', { name: 'warm' })
    const stats = (xs) => ({ p50: round(percentile(xs, 50)), p95: round(percentile(xs, 95)), min: round(Math.min(...xs)), max: round(Math.max(...xs)) })
    connectMs[step] = { cold: stats(cold), warm: stats(warm), paths: [...paths], samples: { cold: cold.map((x) => round(x)), warm: warm.map((x) => round(x)) } }
    log(step, JSON.stringify({ cold: connectMs[step].cold, warm: connectMs[step].warm, paths: connectMs[step].paths }))
  }

  // Throughput, the variants interleaved in each repetition.
  const samples = { direct: [], turn: [], turnCoturn: [], tunnel: [], tcpRelay: [] }
  const cpu = { direct: [], turn: [], turnCoturn: [], tunnel: [] }
  await agents.directb('start', { name: 'sender', options: options() })
  await agents.turnb('start', { name: 'sender', options: options() })
  await agents.turnb('start', { name: 'coturn-sender', options: options(specs.coturn) })
  await agents.tunnelb('start', { name: 'sender', options: options() })
  for (let rep = 0; rep < REPS; rep++) {
    const runs = [
      ['direct', () => agents.directb('throughput', { name: 'sender', target: listeners.direct, mib: MIB }, 300_000)],
      ['turn', () => agents.turnb('throughput', { name: 'sender', target: listeners.turn, mib: MIB, paths: ['turn'] }, 300_000)],
      ['turnCoturn', () => agents.turnb('throughput', { name: 'coturn-sender', target: coturnListener, mib: MIB, paths: ['turn'] }, 300_000)],
      ['tunnel', () => agents.tunnelb('throughput', { name: 'sender', target: listeners.tunnel, mib: MIB }, 300_000)],
      [
        'tcpRelay',
        async () => {
          const room = `rep-${rep}`
          await agents.tunnela('relay', { ...specs.relay, room, listen: true })
          return agents.tunnelb('relay', { ...specs.relay, room, mib: MIB }, 300_000)
        },
      ],
    ]
    for (const [variant, run] of runs) {
      const r = await run()
      samples[variant].push(r.mibps)
      if (r.cpuMs !== undefined) cpu[variant].push(r.cpuMs / MIB)
      log(`rep ${rep + 1}/${REPS} ${variant}: ${round(r.mibps)} MiB/s over ${r.path}`)
    }
  }
  const mibps = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, round(median(xs))]))
  const extra = (variant) => ({
    cold: round(connectMs[variant].cold.p50 - connectMs.direct.cold.p50),
    warm: round(connectMs[variant].warm.p50 - connectMs.direct.warm.p50),
  })
  const result = {
    bench: 'ladder',
    runs: RUNS,
    mib: MIB,
    reps: REPS,
    connectMs,
    extraMs: { turn: extra('turn'), tunnel: extra('tunnel') },
    throughputMiBps: mibps,
    senderCpuMsPerMiB: Object.fromEntries(Object.entries(cpu).map(([k, xs]) => [k, round(median(xs), 2)])),
    ratios: {
      turnVsCoturn: round(mibps.turn / mibps.turnCoturn, 2),
      tunnelVsTcpRelay: round(mibps.tunnel / mibps.tcpRelay, 2),
    },
    targets: {
      turnExtraUnder1s: connectMs.turn.cold.p50 - connectMs.direct.cold.p50 < 1000,
      tunnelExtraUnder2s: connectMs.tunnel.cold.p50 - connectMs.direct.cold.p50 < 2000,
      pathsAsExpected: connectMs.direct.paths.join() === 'direct' && connectMs.turn.paths.join() === 'turn' && connectMs.tunnel.paths.join() === 'tunnel',
    },
    machine: { cpus: os.cpus().length, node: process.version, loadBefore: round(loadBefore, 2), loadAfter: round(os.loadavg()[0], 2) },
  }
  console.log(JSON.stringify(result))
} finally {
  for (const child of children) if (child.connected) child.disconnect()
  await new Promise((resolve) => setTimeout(resolve, 500))
  await lab.close()
}
