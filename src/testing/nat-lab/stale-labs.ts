/**
 * Ownership markers of NAT labs and the removal of what crashed runs left behind.
 *
 * Every lab writes `/run/peerlink-lab/<id>.json` (its owner's pid and that process's
 * start time) BEFORE creating any namespace and deletes it AFTER removing them all. A
 * namespace `pl-<id>-…` is stale when its marker is missing or names a process that is
 * gone (a pid reused by another process has another start time).
 *
 * @module
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { AbortError, InvalidArgumentError } from '../../errors.js'
import { runLabCommand } from './lab-commands.js'
import { NAMESPACE_PATTERN } from './lab-plan.js'
import type { createNatLab } from './nat-lab.js'

/** Directory of the ownership markers (`/run` is cleared at boot, as namespaces are). */
export const MARKER_DIR = '/run/peerlink-lab'
const NETNS_DIR = '/run/netns'

interface Marker {
  version: 1
  id: string
  pid: number
  /** Field 22 of /proc/PID/stat (clock ticks since boot), '' if unknown. */
  startTime: string
}

function markerPath(id: string): string {
  return `${MARKER_DIR}/${id}.json`
}

/** Start time of process `pid` (field 22 of /proc/PID/stat), or undefined if it does not exist. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Writes the marker of lab `id`, owned by this process. */
export function writeMarker(id: string): void {
  mkdirSync(MARKER_DIR, { recursive: true, mode: 0o755 })
  const marker: Marker = { version: 1, id, pid: process.pid, startTime: processStartTime(process.pid) ?? '' }
  writeFileSync(markerPath(id), `${JSON.stringify(marker)}\n`, { mode: 0o644 })
}

/** Deletes the marker of lab `id` (no error if missing). */
export function removeMarker(id: string): void {
  rmSync(markerPath(id), { force: true })
}

/** True if lab `id` has a marker whose owner is still running. */
function ownerAlive(id: string): boolean {
  let marker: Marker
  try {
    marker = JSON.parse(readFileSync(markerPath(id), 'utf8')) as Marker
  } catch {
    return false
  }
  if (!Number.isInteger(marker.pid) || marker.pid <= 0) return false
  const start = processStartTime(marker.pid)
  if (start === undefined) return false
  return marker.startTime === '' || marker.startTime === start
}

/** Names of every lab namespace on this machine (all labs, all owners). */
export function listLabNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR).filter((name) => NAMESPACE_PATTERN.test(name))
  } catch {
    return []
  }
}

/** Pids of the processes (other than this one) whose network namespace is one of `namespaces`. */
function pidsInNamespaces(namespaces: readonly string[]): number[] {
  const inodes = new Set<string>()
  for (const ns of namespaces) {
    try {
      inodes.add(`net:[${statSync(`${NETNS_DIR}/${ns}`).ino}]`)
    } catch {
      // already gone
    }
  }
  if (inodes.size === 0) return []
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid === process.pid) continue
    try {
      if (inodes.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(pid)
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return pids
}

/** SIGKILLs every process still inside `namespaces` (children of children included) and waits, up to `timeout` ms, for them to go. */
export async function killNamespaceProcesses(namespaces: readonly string[], timeout = 2_000): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    const pids = pidsInNamespaces(namespaces)
    if (pids.length === 0 || Date.now() > deadline) return
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
    await sleep(20)
  }
}

/** Synchronous {@link killNamespaceProcesses} for `process.on('exit')`: one round, no waiting. */
export function killNamespaceProcessesSync(namespaces: readonly string[]): void {
  for (const pid of pidsInNamespaces(namespaces)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

/** Deletes network namespaces (their veths, bridges and nftables tables go with them). Missing ones are ignored. */
export async function deleteNamespaces(namespaces: readonly string[], timeout: number): Promise<void> {
  if (namespaces.length === 0) return
  const input = namespaces.map((ns) => `netns delete ${ns}\n`).join('')
  try {
    await runLabCommand('ip', ['-force', '-batch', '-'], { input, timeout })
  } catch (err) {
    // -force carries on past a failed line; fail only if something is really left.
    const left = new Set(listLabNamespaces())
    if (namespaces.some((ns) => left.has(ns))) throw err
  }
}

/** Synchronous {@link deleteNamespaces} for `process.on('exit')`; errors are swallowed. */
export function deleteNamespacesSync(namespaces: readonly string[]): void {
  if (namespaces.length === 0) return
  try {
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: namespaces.map((ns) => `netns delete ${ns}\n`).join(''),
      stdio: ['pipe', 'ignore', 'ignore'],
      timeout: 10_000,
    })
  } catch {
    // nothing more can be done while exiting; sweepStaleLabs() catches it later
  }
}

/** Options of {@link sweepStaleLabs}. */
export interface SweepStaleLabsOptions {
  /**
   * Milliseconds the removal may take per command.
   * @default 10_000
   */
  timeout?: number
  /**
   * Cancels the sweep (rejects with `AbortError`; what was removed stays removed).
   * @default undefined
   */
  signal?: AbortSignal
}

/** What {@link sweepStaleLabs} removed. */
export interface SweepStaleLabsResult {
  /** Namespaces deleted. */
  namespaces: string[]
  /** Ids of labs whose marker was deleted. */
  labs: string[]
}

/**
 * Removes what NAT labs of crashed runs left behind: every `pl-<id>-…` namespace whose
 * lab has no marker in `/run/peerlink-lab/` or whose marker's owner process is gone,
 * the processes still running inside those namespaces, and the stale markers. Labs of
 * live processes (other test workers) are never touched. {@link createNatLab} calls it
 * first unless told not to.
 *
 * @example
 * ```ts
 * import { sweepStaleLabs } from 'peerlink/testing'
 * const { namespaces } = await sweepStaleLabs()
 * if (namespaces.length > 0) console.warn('removed leftovers', namespaces)
 * ```
 */
export async function sweepStaleLabs(options: SweepStaleLabsOptions = {}): Promise<SweepStaleLabsResult> {
  const timeout = options.timeout ?? 10_000
  if (!Number.isInteger(timeout) || timeout <= 0) throw new InvalidArgumentError('sweepStaleLabs: timeout must be a positive integer')
  const check = (): void => {
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
  }
  check()
  // Namespaces first, markers second: a lab writes its marker before its first
  // namespace, so any namespace seen here whose marker is missing afterwards is stale.
  const namespaces = listLabNamespaces()
  const ids = new Set(namespaces.map((ns) => (NAMESPACE_PATTERN.exec(ns) as RegExpExecArray)[1] as string))
  let markerIds: string[] = []
  try {
    markerIds = readdirSync(MARKER_DIR)
      .map((f) => /^([0-9a-f]{6})\.json$/.exec(f)?.[1])
      .filter((id): id is string => id !== undefined)
  } catch {
    // no marker directory: no markers
  }
  for (const id of markerIds) ids.add(id)
  const staleIds = [...ids].filter((id) => !ownerAlive(id))
  const stale = new Set(staleIds)
  const staleNamespaces = namespaces.filter((ns) => stale.has((NAMESPACE_PATTERN.exec(ns) as RegExpExecArray)[1] as string))
  check()
  await killNamespaceProcesses(staleNamespaces)
  check()
  await deleteNamespaces(staleNamespaces, timeout)
  for (const id of staleIds) removeMarker(id)
  return { namespaces: staleNamespaces, labs: staleIds }
}
