// bench/tools/connect-ab.mjs's peer, one process per build and NAT lab host, driven over
// IPC ({ id, op, ... } → { id, ok, ... }); env DIST is the build's dist/ directory.
//
//   listen { beacon }                 → { peerId }   a listener that writes one byte on each connection
//   dial   { beacon, target }         → { run }      one cold connect (a new peer, registered first)
//   events {}                         → { events }   the listener's attempt events since the last call
//
// Times are epoch milliseconds (performance.timeOrigin + now), comparable across the lab's
// processes: they share the machine's clock.
const { createPeer } = await import(`${process.env.DIST}/peer/index.js`)
const now = () => performance.timeOrigin + performance.now()
const events = []
const closers = []
const ops = {
  async listen({ beacon }) {
    const peer = await createPeer({ beacons: [beacon] })
    closers.push(() => peer.close())
    peer.on('attempt', (e) => events.push({ t: now(), step: e.step }))
    peer.on('connection', (c) => {
      events.push({ t: now(), step: 'connection' })
      c.on('error', () => {})
      c.write(Buffer.from([1]))
      c.on('data', () => {})
    })
    await peer.listen()
    return { peerId: peer.peerId }
  },
  async events() {
    return { events: events.splice(0) }
  },
  async dial({ beacon, target }) {
    const peer = await createPeer({ beacons: [beacon] })
    await peer.listen() // registers at the Beacon: not part of the timed connect()
    const ev = []
    peer.on('attempt', (e) => ev.push({ t: now(), step: e.step }))
    const t0 = now()
    const conn = await peer.connect(target, { timeout: 10_000 })
    await new Promise((resolve) => conn.once('data', resolve))
    const t2 = now()
    conn.on('error', () => {})
    conn.destroy()
    await peer.close()
    await new Promise((resolve) => setTimeout(resolve, 20))
    return { run: { t0, t2, ev } }
  },
}
process.on('message', (m) => {
  ops[m.op](m).then(
    (r) => process.send({ id: m.id, ok: true, ...r }),
    (e) => process.send({ id: m.id, ok: false, message: String(e?.stack ?? e) }),
  )
})
process.on('disconnect', () => Promise.allSettled(closers.map((c) => c())).finally(() => process.exit(0)))
process.send({ ready: true })
