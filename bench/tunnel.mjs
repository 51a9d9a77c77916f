// The WebSocket reverse tunnel against direct TCP, measured in the same run on loopback
// (ratios, not absolute numbers, are the result):
//   stream   one TCP stream of --mib MiB (default 512) through the tunnel (a device's public
//            port → transfer WebSocket → local service), over ws:// and wss://, against the
//            same stream sent directly to the service; and the other way (`down`: the
//            local service sends, the public client receives)
//   http     small HTTP requests per second through the tunnel's HTTP port (Host: NAME.<domain>)
//            against requests sent directly to the service, from a keep-alive client with
//            --concurrency requests in flight (default 64) for --seconds (default 3)
//   idle     RSS of the server and of the device with --idle (default 1,000) idle tunnelled
//            connections open, after GC, minus RSS before they were opened
// The tunnel server (bench/fixtures/tunnel-server.mjs) and the device
// (bench/fixtures/tunnel-device.mjs) run in processes of their own, one pair for ws://
// and one for wss://; the load generator and the local services run in this process, so
// this process does the same work for a direct and a tunnelled variant. Variants are
// interleaved per repetition; medians are reported. Runs against dist/ (npm run build first).
//
//   node bench/tunnel.mjs [--mib 512] [--reps 5] [--seconds 3] [--http-reps 3] [--concurrency 64]
//                         [--idle 1000] [--only stream,http,idle] [--modes ws,wss] [--node-flags "--cpu-prof"]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const MIB = Number(arg('mib', 512))
const REPS = Number(arg('reps', 5))
const SECONDS = Number(arg('seconds', 3))
const HTTP_REPS = Number(arg('http-reps', 3))
const CONCURRENCY = Number(arg('concurrency', 64))
const IDLE = Number(arg('idle', 1000))
const ONLY = String(arg('only', 'stream,http,idle')).split(',')
const MODES = String(arg('modes', 'ws,wss')).split(',')
// Node.js flags of the server and device processes: those bin/peerlink-server and
// bin/peerlink run with (their shebang), then --node-flags (profiling: "--cpu-prof").
const BIN_FLAGS = ['--initial-old-space-size=64']
const NODE_FLAGS = [...BIN_FLAGS, ...String(arg('node-flags', '')).split(' ').filter(Boolean)]
const TOTAL = MIB * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 0x5a)
const HOST = '127.0.0.1'
const TOKEN = 'bench-device-token-0123456789'
const TICKS = 100
const here = fileURLToPath(new URL('.', import.meta.url))

const round = (x, digits = 1) => (x === null || x === undefined ? null : Math.round(x * 10 ** digits) / 10 ** digits)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** CPU ticks of a process: [user, system]. */
function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return [Number(fields[11]), Number(fields[12])]
}

/** CPU ms per MiB (user + system, and the system share) of `processes` since `before`, and of this process since `ownBefore`. */
function cpuSince(processes, before, ownBefore) {
  const perMiB = (ticks) => (ticks * (1000 / TICKS)) / MIB
  const own = process.cpuUsage(ownBefore)
  return {
    processes: processes.map((p, i) => {
      const [user, system] = cpuTicks(p.child.pid)
      const total = user - before[i][0] + system - before[i][1]
      return { total: perMiB(total), system: total === 0 ? 0 : (system - before[i][1]) / total }
    }),
    own: (own.user + own.system) / 1000 / MIB,
  }
}

function rssKiB(pid) {
  const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) : 0
}

/** Forks a fixture with IPC; resolves { child, ready, request(message) } once it sent { ready }. */
async function forkFixture(file, config) {
  const child = fork(join(here, 'fixtures', file), [JSON.stringify(config)], { execArgv: ['--expose-gc', ...NODE_FLAGS], stdio: ['ignore', 2, 'inherit', 'ipc'] })
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${file} exited with ${code} before it was ready`)
    }),
  ])
  return {
    child,
    ready: message.ready,
    async request(body) {
      child.send(body)
      const [answer] = await once(child, 'message')
      return answer
    },
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

// ------------------------------------------------------------------ local services

/** Counts the bytes of each connection; answers with one byte once the sender ended. */
async function startSink() {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {})
    let received = 0
    socket.on('data', (chunk) => (received += chunk.length))
    socket.on('end', () => socket.end(received === TOTAL ? 'k' : 'x'))
  })
  server.listen(0, HOST)
  await once(server, 'listening')
  return server
}

/** Sends TOTAL bytes to each connection, then ends. */
async function startSource() {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    let sent = 0
    const pump = () => {
      while (sent < TOTAL) {
        const chunk = TOTAL - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, TOTAL - sent)
        sent += chunk.length
        if (!socket.write(chunk)) return void socket.once('drain', pump)
      }
      socket.end()
    }
    pump()
  })
  server.listen(0, HOST)
  await once(server, 'listening')
  return server
}

/** Echoes; holds idle connections for the RSS measurement. */
async function startEcho() {
  const sockets = new Set()
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  server.listen(0, HOST)
  await once(server, 'listening')
  return { server, sockets }
}

const BODY = Buffer.from(JSON.stringify({ ok: true, service: 'bench', padding: 'x'.repeat(64) }))

async function startHttp() {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length })
      res.end(BODY)
    })
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, HOST)
  await once(server, 'listening')
  return server
}

const portOf = (server) => server.address().port

// ------------------------------------------------------------------ measurements

/** Sends TOTAL bytes to port; resolves MiB/s once the sink confirmed every byte. */
async function stream(port, processes) {
  const socket = net.connect({ host: HOST, port, allowHalfOpen: true })
  socket.setNoDelay(true)
  await once(socket, 'connect')
  const ticksBefore = processes.map((p) => cpuTicks(p.child.pid))
  const ownBefore = process.cpuUsage()
  const start = process.hrtime.bigint()
  const answer = new Promise((resolve, reject) => {
    let text = ''
    socket.on('data', (d) => (text += d))
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
  let sent = 0
  while (sent < TOTAL) {
    const chunk = TOTAL - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, TOTAL - sent)
    sent += chunk.length
    if (!socket.write(chunk)) await once(socket, 'drain')
  }
  socket.end()
  const text = await answer
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  socket.destroy()
  if (text !== 'k') throw new Error(`the sink did not get all ${TOTAL} bytes (${JSON.stringify(text)})`)
  return { mibs: MIB / seconds, cpu: cpuSince(processes, ticksBefore, ownBefore) }
}

/** Receives TOTAL bytes from port (the source service); resolves MiB/s. */
async function streamDown(port, processes) {
  const socket = net.connect({ host: HOST, port })
  socket.setNoDelay(true)
  await once(socket, 'connect')
  const ticksBefore = processes.map((p) => cpuTicks(p.child.pid))
  const ownBefore = process.cpuUsage()
  const start = process.hrtime.bigint()
  let received = 0
  await new Promise((resolve, reject) => {
    socket.on('data', (d) => (received += d.length))
    socket.on('end', resolve)
    socket.on('error', reject)
  })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  socket.destroy()
  if (received !== TOTAL) throw new Error(`received ${received} of ${TOTAL} bytes`)
  return { mibs: MIB / seconds, cpu: cpuSince(processes, ticksBefore, ownBefore) }
}

/** Requests per second from a keep-alive client with CONCURRENCY requests in flight. */
async function requests(port, hostHeader) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  let done = 0
  let errors = 0
  const deadline = performance.now() + SECONDS * 1000
  const one = () =>
    new Promise((resolve) => {
      const req = http.request({ host: HOST, port, path: '/item?id=1', agent, headers: { host: hostHeader } }, (res) => {
        res.resume()
        res.on('end', () => {
          if (res.statusCode === 200) done++
          else errors++
          resolve()
        })
      })
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end()
    })
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) await one()
    }),
  )
  const seconds = (performance.now() - start) / 1000
  agent.destroy()
  return { perSecond: done / seconds, errors }
}

/** Opens `count` idle connections to port (each echoes one byte first, so it is joined end to end). */
async function openIdle(port, count) {
  const sockets = []
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async () => {
        const socket = net.connect({ host: HOST, port })
        socket.on('error', () => {})
        await once(socket, 'connect')
        socket.write('.')
        await once(socket, 'data')
        return socket
      }),
    )
    sockets.push(...batch)
  }
  return sockets
}

async function settle() {
  await new Promise((resolve) => setTimeout(resolve, 500))
}

// ------------------------------------------------------------------ main

const loadBefore = os.loadavg()
const sink = await startSink()
const source = await startSource()
const echo = await startEcho()
const web = await startHttp()
/** A tunnel server and a device exposing the local services, in processes of their own. */
async function startSetup(mode) {
  const server = await forkFixture('tunnel-server.mjs', {
    tls: mode === 'wss',
    listeningIps: [HOST],
    controlPort: 0,
    httpPort: 0,
    domain: 'bench.test',
    publicHost: HOST,
    // Taken ports are skipped by the server.
    allowPorts: mode === 'ws' ? '41000-41099' : '41100-41199',
    // The idle test holds IDLE connections through one device.
    tokens: [TOKEN],
    maxConnectionsPerDevice: IDLE + 100,
  })
  const device = await forkFixture('tunnel-device.mjs', {
    url: server.ready.url,
    token: TOKEN,
    ports: [portOf(sink), portOf(echo.server), portOf(web), portOf(source)],
    http: portOf(web),
    maxConnections: IDLE + 100,
  })
  const publicOf = (local) => device.ready.ports.find((p) => p.local === local).public
  return {
    server,
    device,
    sinkPort: publicOf(portOf(sink)),
    sourcePort: publicOf(portOf(source)),
    echoPort: publicOf(portOf(echo.server)),
    httpPort: server.ready.httpPort,
    async stop() {
      await device.stop()
      await server.stop()
    },
  }
}

const setups = {}
if (ONLY.includes('stream') || ONLY.includes('http')) for (const mode of MODES) setups[mode] = await startSetup(mode)

const result = { bench: 'tunnel', mib: MIB, reps: REPS }
try {
  if (ONLY.includes('stream')) {
    for (const direction of ['up', 'down']) {
      const measure = direction === 'up' ? stream : streamDown
      const direct = direction === 'up' ? portOf(sink) : portOf(source)
      const samples = Object.fromEntries(['direct', ...MODES].map((k) => [k, []]))
      const cpu = Object.fromEntries(MODES.map((k) => [k, { server: [], serverSystem: [], device: [], deviceSystem: [], client: [] }]))
      const directCpu = []
      await measure(direct, []) // warm-up
      for (let rep = 0; rep < REPS; rep++) {
        const plain = await measure(direct, [])
        samples.direct.push(plain.mibs)
        directCpu.push(plain.cpu.own)
        for (const mode of MODES) {
          const { server, device, sinkPort, sourcePort } = setups[mode]
          const run = await measure(direction === 'up' ? sinkPort : sourcePort, [server, device])
          samples[mode].push(run.mibs)
          cpu[mode].server.push(run.cpu.processes[0].total)
          cpu[mode].serverSystem.push(run.cpu.processes[0].system)
          cpu[mode].device.push(run.cpu.processes[1].total)
          cpu[mode].deviceSystem.push(run.cpu.processes[1].system)
          cpu[mode].client.push(run.cpu.own)
        }
      }
      const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v))]))
      const paired = (mode) => round(median(samples[mode].map((x, i) => x / samples.direct[i])), 3)
      result[direction === 'up' ? 'stream' : 'streamDown'] = {
        unit: 'MiB/s',
        direction: direction === 'up' ? 'public client → device service' : 'device service → public client',
        results,
        ratios: Object.fromEntries(MODES.flatMap((mode) => [[mode, round(results[mode] / results.direct, 3)], [`paired${mode[0].toUpperCase()}${mode.slice(1)}`, paired(mode)]])),
        // CPU time (ms, user + system) per MiB: of this process (client and service, both
        // ends of the direct stream), and of the server and device processes (with the
        // share spent in the kernel).
        cpuMsPerMiB: {
          direct: round(median(directCpu), 2),
          ...Object.fromEntries(
            Object.entries(cpu).map(([mode, v]) => [
              mode,
              { client: round(median(v.client), 2), server: round(median(v.server), 2), device: round(median(v.device), 2), serverSystemShare: round(median(v.serverSystem), 2), deviceSystemShare: round(median(v.deviceSystem), 2) },
            ]),
          ),
        },
        samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => round(x))])),
      }
    }
  }

  if (ONLY.includes('http')) {
    const samples = Object.fromEntries(['direct', ...MODES].map((k) => [k, []]))
    const errors = Object.fromEntries(['direct', ...MODES].map((k) => [k, 0]))
    for (let rep = 0; rep < HTTP_REPS; rep++) {
      const direct = await requests(portOf(web), `127.0.0.1:${portOf(web)}`)
      samples.direct.push(direct.perSecond)
      errors.direct += direct.errors
      for (const mode of MODES) {
        const { httpPort } = setups[mode]
        const run = await requests(httpPort, `bench.bench.test:${httpPort}`)
        samples[mode].push(run.perSecond)
        errors[mode] += run.errors
      }
    }
    const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.round(median(v))]))
    result.http = {
      unit: 'requests/s',
      concurrency: CONCURRENCY,
      seconds: SECONDS,
      reps: HTTP_REPS,
      results,
      ratios: Object.fromEntries(MODES.map((mode) => [mode, round(results[mode] / results.direct, 3)])),
      errors,
      samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => Math.round(x))])),
    }
  }

  if (ONLY.includes('idle')) {
    result.idle = { connections: IDLE }
    for (const mode of MODES) {
      // Fresh processes: RSS after the other measurements would say more about them.
      const setup = await startSetup(mode)
      setups[`idle-${mode}`] = setup
      const { server, device, echoPort } = setup
      const [s0] = await Promise.all([server.request({ gc: true }), device.request({ gc: true })])
      await settle()
      const before = { server: rssKiB(server.child.pid), device: rssKiB(device.child.pid) }
      const start = performance.now()
      const sockets = await openIdle(echoPort, IDLE)
      const openMs = performance.now() - start
      const [s, d0] = await Promise.all([server.request({ gc: true }), device.request({ gc: true })])
      await settle()
      const after = { server: rssKiB(server.child.pid), device: rssKiB(device.child.pid) }
      if (s.stats.activeConnections < IDLE) throw new Error(`only ${s.stats.activeConnections} of ${IDLE} connections are joined`)
      for (const socket of sockets) socket.destroy()
      result.idle[mode] = {
        openPerSecond: Math.round(IDLE / (openMs / 1000)),
        serverRssMiB: round(after.server / 1024),
        serverIdleRssMiB: round(before.server / 1024),
        serverKiBPerConnection: round((after.server - before.server) / IDLE),
        serverHeapKiBPerConnection: round((s.memory.heapUsed - s0.memory.heapUsed) / 1024 / IDLE),
        deviceRssMiB: round(after.device / 1024),
        deviceIdleRssMiB: round(before.device / 1024),
        deviceKiBPerConnection: round((after.device - before.device) / IDLE),
      }
      void d0
      await setup.stop()
      delete setups[`idle-${mode}`]
    }
  }
} finally {
  for (const setup of Object.values(setups)) await setup.stop()
  sink.close()
  source.close()
  for (const socket of echo.sockets) socket.destroy()
  echo.server.close()
  web.closeAllConnections()
  web.close()
}
result.machine = {
  cpu: os.cpus()[0]?.model,
  cpus: os.cpus().length,
  node: process.version,
  loadavgBefore: loadBefore.map((x) => round(x)),
  loadavgAfter: os.loadavg().map((x) => round(x)),
  nodeFlags: NODE_FLAGS,
}
console.log(JSON.stringify(result))
