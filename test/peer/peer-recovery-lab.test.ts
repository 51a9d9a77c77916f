// Path recovery through real kernel NATs (the NAT lab, issue 7): two endpoint-independent
// NATs connect directly with a TURN server configured; mid-transfer, UDP between the two
// sites' public addresses is blocked on one NAT box (nftables) — the TURN server stays
// reachable — and the connection must move to the relay without a reset (`path`,
// reason `consent-lost`) and finish the transfer intact; when the rule goes, it must move
// back to the direct pair (`path`, reason `upgrade`). Peers: the recovery-agent fixture
// (from dist/: `npm run build`, or PEERLINK_DIST).
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { NatLab } from '../../src/testing/index.js'
import { createNatLab } from '../../src/testing/index.js'
import { describeLab, forkLabBeacon, forkLabTurn, PeerAgent } from '../testing/lab-helpers.js'

const SITES = {
  'eim-1': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim1'] },
  'eim-2': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hosts: ['eim2'] },
} as const
const USER = { username: 'lab', credential: 'lab-password' }
const BYTES = 30 * 1024 * 1024
const RATE = 2 * 1024 * 1024
const BLOCK_TABLE = 'peerlink_recovery_block'

interface Endpoint {
  address: string
  port: number
  type: string
}
interface PathEvent {
  event: 'path'
  name: string
  change: { path: string; previous: string; reason: string; local: Endpoint; remote: Endpoint }
  info: { path: string }
  at: number
}
type AgentEvent = { event: string; name: string; at?: number; bytes?: number; hash?: string } & Partial<Omit<PathEvent, 'event' | 'name' | 'at'>>

/** The recovery-agent fixture in one lab host. */
type Agent = PeerAgent<AgentEvent>

describeLab('Path recovery and upgrade in the NAT lab', () => {
  let lab: NatLab
  let turn: unknown[]
  let dialer: Agent
  let listener: Agent
  let blocked = false

  const block = async (): Promise<void> => {
    const other = lab.address('eim-2')
    const ruleset = [
      `table inet ${BLOCK_TABLE} {`,
      '  chain forward {',
      '    type filter hook forward priority -10; policy accept;',
      `    ip daddr ${other} meta l4proto udp drop`,
      `    ip saddr ${other} meta l4proto udp drop`,
      '  }',
      '}',
    ].join('\n')
    await lab.exec('eim-1', 'nft', ['-f', '-'], { input: ruleset })
    blocked = true
  }
  const unblock = async (): Promise<void> => {
    if (!blocked) return
    blocked = false
    await lab.exec('eim-1', 'nft', ['delete', 'table', 'inet', BLOCK_TABLE])
  }

  beforeAll(async () => {
    lab = await createNatLab({ servers: { beacon: {}, turn: {} }, sites: SITES })
    const beacon = await forkLabBeacon(lab)
    turn = [await forkLabTurn(lab, USER)]
    const start = (host: string): Promise<Agent> =>
      PeerAgent.fork<AgentEvent>(lab, host, new URL('./fixtures/recovery-agent.mjs', import.meta.url), {
        args: [beacon],
        describeEvents: (events) => events.filter((e) => e.event !== 'progress'),
      })
    ;[dialer, listener] = await Promise.all([start('eim1'), start('eim2')])
  }, 60_000)

  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return
    for (const agent of [dialer, listener]) console.log(`[recovery-lab] ${agent?.node} events:`, JSON.stringify(agent?.events.filter((e) => e.event !== 'progress')))
  })

  afterAll(async () => {
    if (lab !== undefined) await unblock().catch(() => {})
    await lab?.close()
  })

  it('a transfer survives blocking the direct path (moves to TURN, intact) and moves back when it reopens', async () => {
    const { peerId: target } = await listener.call<{ peerId: string }>('start', { name: 'l', turn })
    await listener.call('listen', { name: 'l' })
    await dialer.call('start', { name: 'd', turn })
    const { info } = await dialer.call<{ info: { path: string } }>('connect', { name: 'd', target, timeout: 15_000 })
    expect(info.path).toBe('direct')

    const transfer = dialer.call<{ sent: string; ms: number }>('send', { name: 'd', bytes: BYTES, rate: RATE }, 90_000)
    transfer.catch(() => {})
    await listener.event((e) => e.event === 'progress' && (e.bytes ?? 0) >= 3 * 1024 * 1024, 20_000)

    // Break the direct path (the TURN server stays reachable).
    await block()
    const brokeAt = Date.now()
    const failover = (await dialer.event((e) => e.event === 'path' && e.change?.reason === 'consent-lost', 20_000)) as PathEvent
    expect(failover.change).toMatchObject({ path: 'turn', previous: 'direct' })
    expect(failover.info.path).toBe('turn')
    const followed = (await listener.event((e) => e.event === 'path' && e.change?.reason === 'consent-lost', 10_000)) as PathEvent
    expect(followed.change.path).toBe('turn')
    // Data flows again: the receiver's count grows after the move.
    const resumed = await listener.event((e) => e.event === 'progress' && (e.at ?? 0) > failover.at, 20_000)
    console.log(
      `[recovery-lab] direct → turn: path event ${failover.at - brokeAt} ms after the block (listener followed at ${followed.at - brokeAt} ms), data flowing again by ${(resumed.at ?? 0) - brokeAt} ms`,
    )

    // Reopen the direct path: the connection goes back to it.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await unblock()
    const reopenedAt = Date.now()
    const upgrade = (await dialer.event((e) => e.event === 'path' && e.change?.reason === 'upgrade', 20_000)) as PathEvent
    expect(upgrade.change).toMatchObject({ path: 'direct', previous: 'turn' })
    const upgraded = (await listener.event((e) => e.event === 'path' && e.change?.reason === 'upgrade', 10_000)) as PathEvent
    expect(upgraded.change.path).toBe('direct')
    // Data keeps flowing on the direct path.
    const after = await listener.event((e) => e.event === 'progress' && (e.at ?? 0) > upgraded.at, 20_000)
    console.log(`[recovery-lab] turn → direct: path event ${upgrade.at - reopenedAt} ms after the rule was deleted, data after it at ${(after.at ?? 0) - reopenedAt} ms`)

    // The transfer completes intact, without a reset.
    const { sent, ms } = await transfer
    const received = await listener.event((e) => e.event === 'received', 30_000)
    expect(received).toMatchObject({ hash: sent, bytes: BYTES })
    console.log(`[recovery-lab] ${BYTES / 1024 / 1024} MB paced at ${RATE / 1024 / 1024} MB/s delivered intact in ${Math.round(ms)} ms`)
    expect(dialer.events.some((e) => e.event === 'conn-error')).toBe(false)
    expect(listener.events.some((e) => e.event === 'conn-error')).toBe(false)
    await dialer.call('close', { name: 'd' })
    await listener.call('close', { name: 'l' })
  }, 120_000)
})
