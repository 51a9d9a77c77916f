// TURN relay cost: the same turnutils_uclient load against coturn (one relay thread, for
// fairness, and coturn's defaults) and against peerlink's TURN server, in the same run.
// Reports CPU microseconds per relayed packet (server process user+system time from
// /proc), loss, and RSS per held allocation, as JSON. Needs Debian's coturn
// (turnserver, turnutils_uclient, turnutils_peer) and dist/ (npm run build).
//
//   node bench/turn.mjs [--clients 100] [--messages 500] [--size 1000] [--interval 20] [--transports udp,tcp]
//
// Every relayed message crosses the relay twice (client → peer and the echo back), so
// relayed packets = 2 × messages received by the clients.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { createSocket } from 'node:dgram'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const CLIENTS = Number(arg('clients', 100))
const MESSAGES = Number(arg('messages', 500))
const SIZE = Number(arg('size', 1000))
const INTERVAL = Number(arg('interval', 20))
const TRANSPORTS = String(arg('transports', 'udp,tcp')).split(',')
const SERVERS = String(arg('servers', 'coturn-1-thread,coturn-default,peerlink')).split(',')
// Extra Node.js flags for peerlink's server process (experiments; empty by default).
const NODE_FLAGS = String(arg('node-flags', '')).split(' ').filter(Boolean)
const SECRET = 'bench-secret-not-for-production'
const REALM = 'bench.peerlink'
const HOST = '127.0.0.1'
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100)
const here = fileURLToPath(new URL('.', import.meta.url))

for (const tool of ['turnserver', 'turnutils_uclient', 'turnutils_peer']) {
  if (spawnSync('which', [tool]).status !== 0) {
    console.error(`bench/turn: ${tool} is missing (apt-get install coturn)`)
    process.exit(1)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A free port on HOST for both UDP and TCP. */
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve) => {
      const server = createServer().listen(0, HOST, () => {
        const { port } = server.address()
        server.close(() => resolve(port))
      })
    })
    const ok = await new Promise((resolve) => {
      const socket = createSocket('udp4')
      socket.once('error', () => resolve(false))
      socket.bind(port, HOST, () => socket.close(() => resolve(true)))
    })
    if (ok) return port
  }
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(fields[11]) + Number(fields[12]) // utime + stime (fields 14 and 15 of stat)
}

/** CPU ticks per thread name (main thread vs GC/libuv helpers), user and system. */
function threadTicks(pid) {
  const out = {}
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
      out[`${name} user`] = (out[`${name} user`] ?? 0) + Number(fields[11])
      out[`${name} system`] = (out[`${name} system`] ?? 0) + Number(fields[12])
    } catch {}
  }
  return out
}

function rssKiB(pid) {
  const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) : 0
}

async function waitForPort(port, transport, child) {
  // Give the server a moment and make sure it is still alive.
  for (let i = 0; i < 50; i++) {
    await sleep(100)
    if (child.exitCode !== null) throw new Error(`server exited early with ${child.exitCode}`)
    const probe = spawnSync('ss', ['-lnH', transport === 'tcp' ? '-t' : '-u', `sport = :${port}`], { encoding: 'utf8' })
    if (probe.stdout.trim().length > 0) return
  }
  throw new Error(`server did not listen on ${port}`)
}

/** Starts the server under test; resolves { pid, stop }. */
async function startServer(kind, port, minPort, maxPort, dir) {
  let child
  if (kind.startsWith('coturn')) {
    const args = [
      '-n', '--no-cli', '--listening-ip', HOST, '--listening-port', String(port),
      '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', REALM,
      '--allow-loopback-peers', '--min-port', String(minPort), '--max-port', String(maxPort),
      '--no-tls', '--no-dtls', '--log-file', join(dir, 'coturn.log'), '--pidfile', join(dir, 'coturn.pid'),
      '--userdb', join(dir, 'coturn.db'), '--no-stdout-log', '--simple-log',
    ]
    if (kind === 'coturn-1-thread') args.push('--relay-threads', '1')
    child = spawn('turnserver', args, { stdio: 'ignore' })
  } else {
    const options = {
      listeningIps: [HOST], listeningPort: port, useAuthSecret: true, staticAuthSecrets: [SECRET], realm: REALM,
      allowLoopbackPeers: true, minPort, maxPort, noTls: true,
    }
    child = spawn(process.execPath, [...NODE_FLAGS, join(here, 'fixtures', 'turn-server.mjs'), JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'inherit'] })
  }
  await waitForPort(port, 'udp', child)
  return {
    pid: child.pid,
    stop: async () => {
      child.kill('SIGTERM')
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)))
    },
  }
}

function runClients(port, peerPort, transport) {
  const args = [
    '-W', SECRET, '-u', 'bench', '-e', HOST, '-r', String(peerPort), '-m', String(CLIENTS), '-n', String(MESSAGES),
    '-l', String(SIZE), '-z', String(INTERVAL), '-c', '-X', '-p', String(port),
  ]
  if (transport === 'tcp') args.push('-t')
  args.push(HOST)
  return new Promise((resolve) => {
    const child = spawn('turnutils_uclient', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.once('exit', (code) => resolve({ code, out }))
  })
}

function parseClients(out) {
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out.split('\n').filter((l) => /start_mclient: tot_send_msgs=/.test(l)).at(-1) ?? '')
  const lost = /Total lost packets (\d+)/.exec(out)
  return {
    sent: totals ? Number(totals[1]) : NaN,
    received: totals ? Number(totals[2]) : NaN,
    lost: lost ? Number(lost[1]) : NaN,
  }
}

async function measure(kind, transport) {
  const dir = mkdtempSync(join(os.tmpdir(), 'peerlink-bench-turn-'))
  const port = await freePort()
  const peerPort = await freePort()
  // Below Linux's ephemeral range (32768+), where other sockets on the machine could sit.
  const minPort = 20000 + Math.floor(Math.random() * 8000)
  const peer = spawn('turnutils_peer', ['-L', HOST, '-p', String(peerPort)], { stdio: 'ignore' })
  const server = await startServer(kind, port, minPort, minPort + 4 * CLIENTS + 1000, dir)
  try {
    await sleep(300)
    const rssIdle = rssKiB(server.pid)
    let rssPeak = rssIdle
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, rssKiB(server.pid))
      } catch {}
    }, 50)
    const before = cpuTicks(server.pid)
    const threadsBefore = threadTicks(server.pid)
    const start = Date.now()
    const { code, out } = await runClients(port, peerPort, transport)
    const after = cpuTicks(server.pid)
    const threadsAfter = threadTicks(server.pid)
    const threadCpuSeconds = Object.fromEntries(
      Object.entries(threadsAfter).map(([name, ticks]) => [name, (ticks - (threadsBefore[name] ?? 0)) / TICKS]).filter(([, s]) => s > 0),
    )
    clearInterval(sampler)
    const clients = parseClients(out)
    if (Number.isNaN(clients.received)) throw new Error(`turnutils_uclient exited ${code}: ${out.trim().split('\n').slice(-4).join(' | ')}`)
    const relayed = 2 * clients.received
    const cpuSeconds = (after - before) / TICKS
    return {
      server: kind,
      transport,
      exitCode: code,
      wallSeconds: (Date.now() - start) / 1000,
      messagesSent: clients.sent,
      messagesReceived: clients.received,
      lost: clients.lost,
      lossPercent: clients.sent > 0 ? (100 * (clients.sent - clients.received)) / clients.sent : NaN,
      relayedPackets: relayed,
      cpuSeconds,
      cpuMicrosPerRelayedPacket: relayed > 0 ? (cpuSeconds * 1e6) / relayed : NaN,
      threadCpuSeconds,
      rssIdleKiB: rssIdle,
      rssPeakKiB: rssPeak,
      rssKiBPerAllocation: (rssPeak - rssIdle) / CLIENTS,
    }
  } finally {
    await server.stop()
    peer.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
}

const loadBefore = os.loadavg()[0]
const results = []
for (const transport of TRANSPORTS) {
  for (const kind of SERVERS) {
    try {
      results.push(await measure(kind, transport))
    } catch (err) {
      results.push({ server: kind, transport, error: String(err?.message ?? err) })
    }
  }
}
const ratio = (transport) => {
  const ours = results.find((r) => r.server === 'peerlink' && r.transport === transport)
  const coturn = results.find((r) => r.server === 'coturn-1-thread' && r.transport === transport)
  return ours && coturn ? ours.cpuMicrosPerRelayedPacket / coturn.cpuMicrosPerRelayedPacket : NaN
}
console.log(
  JSON.stringify({
    bench: 'turn',
    load: { clients: CLIENTS, messagesPerClient: MESSAGES, bytes: SIZE, intervalMs: INTERVAL },
    results,
    ratios: Object.fromEntries(TRANSPORTS.map((t) => [`cpuPerPacketVsCoturn1Thread_${t}`, ratio(t)])),
    target: 'no loss; cpuPerPacketVsCoturn1Thread <= 2',
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore, loadAfter: os.loadavg()[0] },
  }),
)
