// The NAT lab's life cycle on real namespaces: close() leaves nothing behind, a failing
// test's lab is still removed, crashed owners' leftovers are swept (and live labs are
// not), an owner that exits without closing cleans up, missing tools give
// ERR_NAT_LAB_UNAVAILABLE, and aborting a build removes what was built.
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { expect, it } from 'vitest'
import { createNatLab, sweepStaleLabs, type NatLab } from '../../src/testing/index.js'
import { Agent, describeLab, fixture, nextMessage } from './lab-helpers.js'

const MARKERS = '/run/peerlink-lab'

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] as string)
    .filter((name) => name !== '')
}

function hostLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(':')[1]?.trim() ?? '')
    .filter((name) => name !== '')
    .sort()
}

function hostTables(): string {
  return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function waitUntil(condition: () => boolean, timeout: number): Promise<boolean> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 10))
  }
  return true
}

/** Ids of labs whose marker names this process. */
function myMarkers(): string[] {
  let files: string[] = []
  try {
    files = readdirSync(MARKERS)
  } catch {
    return []
  }
  return files.flatMap((f) => {
    try {
      const m = JSON.parse(readFileSync(`${MARKERS}/${f}`, 'utf8')) as { id: string; pid: number }
      return m.pid === process.pid ? [m.id] : []
    } catch {
      return []
    }
  })
}

interface OwnerReport {
  prefix: string
  id: string
  namespaces: string[]
  sleepPid: number
}

function startOwner(mode: string, env?: NodeJS.ProcessEnv): ChildProcess {
  return fork(fixture('lab-owner.mjs'), [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], ...(env === undefined ? {} : { env }) })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

describeLab('NAT lab life cycle', () => {
  it('close() removes every namespace, veth, nftables table and process the lab created, and only touches lab namespaces', async () => {
    const linksBefore = hostLinks()
    const tablesBefore = hostTables()
    const lab = await createNatLab({ servers: { s: {} }, sites: { a: { hosts: ['h1', 'h2'] }, b: { mapping: 'none' } } })
    const created = lab.nodes.map((n) => n.namespace)
    expect(created.every((ns) => ns.startsWith(`${lab.prefix}-`))).toBe(true)
    expect(namespaces()).toEqual(expect.arrayContaining(created))
    expect(existsSync(`${MARKERS}/${lab.id}.json`)).toBe(true)
    // The veths were created directly inside the lab's namespaces.
    expect(hostLinks()).toEqual(linksBefore)
    expect(await lab.exec('a', 'nft', ['list', 'tables'])).toContain('peerlink_lab')

    const agent = await Agent.start(lab, 'h1')
    const shell = lab.spawn('h2', 'sh', ['-c', 'sleep 30 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] })
    const grandchild = await new Promise<number>((resolve) => shell.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim()))))
    expect(alive(grandchild)).toBe(true)

    await lab.close()
    expect(lab.closed).toBe(true)
    expect(namespaces().filter((ns) => ns.startsWith(lab.prefix))).toEqual([])
    expect(hostLinks()).toEqual(linksBefore)
    expect(hostTables()).toBe(tablesBefore)
    expect(existsSync(`${MARKERS}/${lab.id}.json`)).toBe(false)
    expect(agent.child.exitCode !== null || agent.child.signalCode !== null).toBe(true)
    expect(shell.exitCode !== null || shell.signalCode !== null).toBe(true)
    expect(await waitUntil(() => !alive(grandchild), 2_000)).toBe(true)
    await lab.close() // idempotent
    expect(() => lab.spawn('h1', 'true')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('a lab whose test throws is still removed (await using)', async () => {
    let prefix = ''
    const failingTest = async (): Promise<void> => {
      await using lab = await createNatLab({ sites: { a: {} } })
      prefix = lab.prefix
      expect(namespaces().some((ns) => ns.startsWith(prefix))).toBe(true)
      throw new Error('the test failed')
    }
    await expect(failingTest()).rejects.toThrow('the test failed')
    expect(prefix).not.toBe('')
    expect(namespaces().filter((ns) => ns.startsWith(prefix))).toEqual([])
  })

  it('sweepStaleLabs() removes what a crashed owner left (namespaces, processes, marker) and leaves live labs alone', async () => {
    const live: NatLab = await createNatLab({ sites: { x: {} } })
    try {
      const owner = startOwner('crash')
      const report = await nextMessage(owner, (m) => m as OwnerReport, 20_000, 'crash owner')
      expect(alive(report.sleepPid)).toBe(true)
      owner.kill('SIGKILL')
      await exited(owner)
      // A concurrent createNatLab in another test file may sweep first; either way the leftovers must go.
      const leftBehind = namespaces().filter((ns) => report.namespaces.includes(ns))
      const result = await sweepStaleLabs()
      expect(result.namespaces).toEqual(expect.arrayContaining(leftBehind))
      expect(result.namespaces.some((ns) => ns.startsWith(live.prefix))).toBe(false)
      expect(namespaces().filter((ns) => ns.startsWith(report.prefix))).toEqual([])
      expect(existsSync(`${MARKERS}/${report.id}.json`)).toBe(false)
      expect(await waitUntil(() => !alive(report.sleepPid), 2_000)).toBe(true)
      // The live lab is intact.
      expect(namespaces()).toEqual(expect.arrayContaining(live.nodes.map((n) => n.namespace)))
      expect(existsSync(`${MARKERS}/${live.id}.json`)).toBe(true)
    } finally {
      await live.close()
    }
  })

  it('an owner that exits without closing its lab leaves nothing behind (exit hook)', async () => {
    const owner = startOwner('exit')
    const report = await nextMessage(owner, (m) => m as OwnerReport, 20_000, 'exiting owner')
    await exited(owner)
    expect(owner.exitCode).toBe(0)
    expect(namespaces().filter((ns) => ns.startsWith(report.prefix))).toEqual([])
    expect(existsSync(`${MARKERS}/${report.id}.json`)).toBe(false)
    expect(await waitUntil(() => !alive(report.sleepPid), 2_000)).toBe(true)
  })

  it('without ip and nft on the PATH, createNatLab rejects with ERR_NAT_LAB_UNAVAILABLE', async () => {
    const owner = startOwner('unavailable', { PATH: '/nonexistent' })
    const r = await nextMessage(owner, (m) => m as { ok: boolean; code?: string; reason?: string; name?: string }, 10_000, 'owner without tools')
    await exited(owner)
    expect(r).toMatchObject({ ok: false, code: 'ERR_NAT_LAB_UNAVAILABLE', name: 'NatLabUnavailableError' })
    expect(r.reason).toMatch(/\bip\b.*not found/)
  })

  it('an aborted signal rejects with ERR_ABORTED; aborting mid-build removes what was built', async () => {
    await expect(createNatLab({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })

    const before = new Set(myMarkers())
    const controller = new AbortController()
    const building = createNatLab({ servers: { s: { addresses: 2 } }, sites: { a: { hosts: ['h1', 'h2'] }, b: {} }, signal: controller.signal })
    // Abort once the build has created its first namespace.
    let id: string | undefined
    const started = await waitUntil(() => {
      id ??= myMarkers().find((m) => !before.has(m))
      return id !== undefined && readdirSync('/run/netns').some((ns) => ns.startsWith(`pl-${id}-`))
    }, 5_000)
    controller.abort()
    await expect(building).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(started).toBe(true)
    expect(namespaces().filter((ns) => ns.startsWith(`pl-${id}-`))).toEqual([])
    expect(myMarkers().filter((m) => !before.has(m))).toEqual([])
  })
})
