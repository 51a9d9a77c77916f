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
// TRACE=1: STUN packets sent and received (binding requests, with USE-CANDIDATE, and
// responses) as steps `stun>req`, `stun<res+UC`, … (the first of each per connect).
let trace = () => {}
if (process.env.TRACE === '1') {
  const { PeerSocket } = await import(`${process.env.DIST}/transport/peer-socket.js`)
  const describe = (data) => {
    const type = (data[0] << 8) | data[1]
    const kind = type === 0x0001 ? 'req' : type === 0x0101 ? 'res' : type === 0x0111 ? 'err' : null
    if (kind === null) return null
    let useCandidate = false
    for (let offset = 20; offset + 4 <= data.length; ) {
      const attribute = (data[offset] << 8) | data[offset + 1]
      const length = (data[offset + 2] << 8) | data[offset + 3]
      if (attribute === 0x0025) useCandidate = true
      offset += 4 + Math.ceil(length / 4) * 4
    }
    return kind + (useCandidate ? '+UC' : '')
  }
  const send = PeerSocket.prototype.send
  PeerSocket.prototype.send = function (data, port, host) {
    const what = data.length >= 20 ? describe(data) : null
    // Where to: a private (host candidate) or public (server-reflexive) address.
    if (what !== null) trace(`stun>${what}@${/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(host) ? 'private' : 'public'}`)
    return send.call(this, data, port, host)
  }
  // Signals handed to a Beacon connection and received from one (before they are opened).
  const { BeaconClient } = await import(`${process.env.DIST}/beacon/beacon-client.js`)
  const signal = BeaconClient.prototype.signal
  BeaconClient.prototype.signal = function (to, message, options) {
    trace(`signal>${message.kind}`)
    return signal.call(this, to, message, options)
  }
  const emit = BeaconClient.prototype.emit
  BeaconClient.prototype.emit = function (event, value, ...rest) {
    if (event === 'signal') trace(`signal<${value.kind}`)
    return emit.call(this, event, value, ...rest)
  }
  const onStun = PeerSocket.prototype.onStun
  PeerSocket.prototype.onStun = function (listener) {
    return onStun.call(this, (data, ...rest) => {
      const what = data.length >= 20 ? describe(data) : null
      if (what !== null) trace(`stun<${what}`)
      return listener(data, ...rest)
    })
  }
}
const closers = []
const ops = {
  async listen({ beacon }) {
    const peer = await createPeer({ beacons: [beacon] })
    closers.push(() => peer.close())
    peer.on('attempt', (e) => events.push({ t: now(), step: e.step }))
    trace = (step) => events.push({ t: now(), step })
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
    trace = (step) => ev.push({ t: now(), step })
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
