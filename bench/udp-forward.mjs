// CPU cost of forwarding one UDP datagram in Node.js: node:dgram against udx-native, in
// the same run. A generator sends 1000-byte datagrams at a steady rate to a forwarder
// process, which sends each on to a sink; the forwarder's own user+system CPU time per
// forwarded datagram is reported (process.cpuUsage), as JSON. This is the floor under
// the TURN server's data path (one receive and one send per relayed packet), and why
// that data path uses udx-native (src/server/turn/udp-socket.ts).
//
//   node bench/udp-forward.mjs [--rate 8000] [--seconds 5] [--size 1000]
import dgram from 'node:dgram'
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const RATE = arg('rate', 8000)
const SECONDS = arg('seconds', 5)
const SIZE = arg('size', 1000)
const HOST = '127.0.0.1'
const lookup = (address, _options, callback) => callback(null, address, 4)

if (process.argv[2] === '--forwarder') {
  // Child: forwards every datagram it receives to the sink port.
  const [kind, sinkPort] = [process.argv[3], Number(process.argv[4])]
  let forwarded = 0
  let close
  if (kind === 'dgram') {
    const socket = dgram.createSocket({ type: 'udp4', lookup })
    socket.on('message', (data) => {
      forwarded++
      socket.send(data, 0, data.length, sinkPort, HOST)
    })
    await new Promise((resolve) => socket.bind(0, HOST, resolve))
    process.send({ port: socket.address().port })
    close = () => new Promise((resolve) => socket.close(resolve))
  } else {
    const UDX = createRequire(import.meta.url)('udx-native')
    const socket = new UDX().createSocket()
    socket.on('message', (data) => {
      forwarded++
      socket.trySend(data, sinkPort, HOST)
    })
    socket.bind(0, HOST)
    process.send({ port: socket.address().port })
    close = () => socket.close()
  }
  process.on('message', async (message) => {
    const usage = process.cpuUsage()
    process.send({ forwarded, user: usage.user, system: usage.system })
    if (message === 'exit') {
      await close()
      process.disconnect()
    }
  })
} else {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  async function measure(kind) {
    const sink = dgram.createSocket('udp4')
    let received = 0
    sink.on('message', () => received++)
    await new Promise((resolve) => sink.bind(0, HOST, resolve))
    const child = fork(fileURLToPath(import.meta.url), ['--forwarder', kind, String(sink.address().port)])
    const ask = (message) =>
      new Promise((resolve) => {
        child.once('message', resolve)
        child.send(message)
      })
    const { port } = await new Promise((resolve) => child.once('message', resolve))
    const source = dgram.createSocket({ type: 'udp4', lookup })
    await new Promise((resolve) => source.bind(0, HOST, resolve))
    const data = Buffer.alloc(SIZE, 7)
    for (let i = 0; i < 2000; i++) source.send(data, port, HOST) // warm-up
    await sleep(500)
    const before = await ask('mark')
    const receivedBefore = received
    const start = Date.now()
    let sent = 0
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.floor(((Date.now() - start) * RATE) / 1000)
        while (sent < due) {
          source.send(data, port, HOST)
          sent++
        }
        if (Date.now() - start >= SECONDS * 1000) {
          clearInterval(timer)
          resolve()
        }
      }, 1)
    })
    await sleep(300)
    const after = await ask('exit')
    await new Promise((resolve) => child.once('exit', resolve))
    await new Promise((resolve) => source.close(resolve))
    await new Promise((resolve) => sink.close(resolve))
    const forwarded = after.forwarded - before.forwarded
    const cpuMicros = after.user - before.user + after.system - before.system
    return {
      socket: kind,
      sent,
      forwarded,
      delivered: received - receivedBefore,
      cpuMicrosPerDatagram: cpuMicros / forwarded,
      userMicrosPerDatagram: (after.user - before.user) / forwarded,
      systemMicrosPerDatagram: (after.system - before.system) / forwarded,
    }
  }
  const loadBefore = os.loadavg()[0]
  const results = []
  for (const kind of ['dgram', 'udx-native', 'dgram', 'udx-native']) results.push(await measure(kind))
  const best = (kind) => Math.min(...results.filter((r) => r.socket === kind).map((r) => r.cpuMicrosPerDatagram))
  console.log(
    JSON.stringify({
      bench: 'udp-forward',
      load: { ratePerSecond: RATE, seconds: SECONDS, bytes: SIZE },
      results,
      ratios: { udxNativeVsDgram: best('udx-native') / best('dgram') },
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore, loadAfter: os.loadavg()[0] },
    }),
  )
}
