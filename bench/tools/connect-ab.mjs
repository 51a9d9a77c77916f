// Cold-connect A/B between builds, interleaved connect by connect in one NAT lab cell (the
// cell of bench/connect.mjs: two hosts behind port-restricted-cone NATs, a Beacon on the
// public server). Each build gets its own listener and dialer processes; every round does
// one cold connect per build, in random order, so that the machine's other load falls on
// all builds alike — on this project's shared 2-vCPU machines, series run one after the
// other (bench/connect.mjs) differ by more than the changes being compared. Needs root.
//
//   node bench/tools/connect-ab.mjs [--rounds 100] DIST [DIST…]    (DIST: a build's dist/ directory)
//   TRACE=1 node bench/tools/connect-ab.mjs …   also the median time of the first STUN request,
//                                               response, nomination (+UC) sent (>) and received (<)
//
// Prints, per build, the median over the rounds of the time (ms after connect()) each
// step was reached — L: listener, D: dialer; offer/answer when received and verified,
// selected, verified, the listener's connection, total = first verified byte — and of the
// ICE (answer → D:selected) and handshake (D:selected → first byte) segments.
import { fileURLToPath } from 'node:url'
import { createNatLab, natLabSupport } from '../../dist/testing/index.js'

const args = process.argv.slice(2)
const at = args.indexOf('--rounds')
const ROUNDS = at === -1 ? 100 : Number(args.splice(at, 2)[1])
const DISTS = args
if (DISTS.length === 0) throw new Error('usage: node bench/tools/connect-ab.mjs [--rounds N] DIST [DIST…]')
const support = await natLabSupport()
if (!support.available) throw new Error(`the NAT lab cannot run here: ${support.reason}`)
const here = (name) => fileURLToPath(new URL(name, import.meta.url))

const lab = await createNatLab({
  servers: { server: {} },
  sites: {
    'home-a': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['alice'] },
    'home-b': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['bob'] },
  },
})
const next = (child, pick) =>
  new Promise((resolve) => {
    const on = (m) => {
      const v = pick(m)
      if (v === undefined) return
      child.off('message', on)
      resolve(v)
    }
    child.on('message', on)
  })
let nextId = 1
async function call(child, op, args = {}) {
  const id = nextId++
  const reply = next(child, (m) => (m?.id === id ? m : undefined))
  child.send({ id, op, ...args })
  const r = await reply
  if (!r.ok) throw new Error(`${op}: ${r.message}`)
  return r
}
const median = (values) => {
  const s = values.filter((x) => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]
}
try {
  const server = lab.fork('server', here('./connect-ab-beacon.mjs'), [lab.address('server')], { env: { ...process.env, DIST: DISTS[0] } })
  const { beacon } = await next(server, (m) => (m?.beacon ? m : undefined))
  const start = async (host, DIST) => {
    const child = lab.fork(host, here('./connect-ab-peer.mjs'), [], { env: { ...process.env, DIST } })
    await next(child, (m) => (m?.ready ? true : undefined))
    return child
  }
  const builds = []
  for (const DIST of DISTS) {
    const [alice, bob] = await Promise.all([start('alice', DIST), start('bob', DIST)])
    const { peerId } = await call(bob, 'listen', { beacon })
    for (let i = 0; i < 10; i++) await call(alice, 'dial', { beacon, target: peerId }) // unoptimised code first
    await call(bob, 'events')
    builds.push({ DIST, alice, bob, peerId, rows: [] })
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const b of [...builds].sort(() => Math.random() - 0.5)) {
      const { run } = await call(b.alice, 'dial', { beacon, target: b.peerId })
      const { events } = await call(b.bob, 'events')
      const row = { total: run.t2 - run.t0 }
      for (const e of run.ev) row[`D:${e.step}`] ??= e.t - run.t0
      for (const e of events) row[`L:${e.step}`] ??= e.t - run.t0
      b.rows.push(row)
    }
  }
  const keys = ['L:offer', 'D:answer', 'L:selected', 'D:selected', 'L:connection', 'D:verified', 'total']
  if (process.env.TRACE === '1') {
    // Every step seen (STUN packets included), in the order of their medians.
    for (const b of builds) {
      const all = [...new Set(b.rows.flatMap((r) => Object.keys(r)))]
      const medians = all.map((k) => [k, median(b.rows.map((r) => r[k]))]).sort((x, y) => x[1] - y[1])
      console.log(b.DIST, medians.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' | '))
    }
  }
  console.log(['build'.padEnd(28), ...keys.map((k) => k.padStart(13)), 'ICE'.padStart(8), 'handshake'.padStart(10)].join(''))
  for (const b of builds) {
    const cells = keys.map((k) => median(b.rows.map((r) => r[k])).toFixed(2).padStart(13))
    const ice = median(b.rows.map((r) => r['D:selected'] - r['D:answer']))
    const handshake = median(b.rows.map((r) => r.total - r['D:selected']))
    console.log([b.DIST.slice(-28).padEnd(28), ...cells, ice.toFixed(2).padStart(8), handshake.toFixed(2).padStart(10)].join(''))
  }
} finally {
  await lab.close()
}
