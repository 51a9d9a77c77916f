/**
 * Whether the NAT lab can run on this machine, so that tests can skip (or, in CI, fail)
 * with a clear reason instead of failing obscurely.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { NatLabUnavailableError, PeerlinkError } from '../../errors.js'
import { runLabCommand } from './lab-commands.js'
import { namespaceName } from './lab-plan.js'
import type { createNatLab } from './nat-lab.js'
import { deleteNamespaces, removeMarker, writeMarker } from './stale-labs.js'

/** What {@link natLabSupport} found. */
export interface NatLabSupport {
  /** True if {@link createNatLab} can build labs here. */
  available: boolean
  /** Why not, when `available` is false (e.g. `'not running as root'`). */
  reason: string | undefined
}

let cached: Promise<NatLabSupport> | undefined

async function probe(): Promise<NatLabSupport> {
  const no = (reason: string): NatLabSupport => ({ available: false, reason })
  if (process.platform !== 'linux') return no(`network namespaces need Linux (this is ${process.platform})`)
  if (process.getuid?.() !== 0) return no('not running as root (network namespaces and nftables need it)')
  const timeout = 5_000
  try {
    await runLabCommand('ip', ['-V'], { timeout })
    await runLabCommand('nft', ['--version'], { timeout })
  } catch (err) {
    return no(err instanceof NatLabUnavailableError ? err.reason : String((err as Error).message))
  }
  // Really create a namespace and load a ruleset into it: root in a container may lack
  // CAP_SYS_ADMIN or the nf_tables module.
  const id = randomBytes(3).toString('hex')
  const ns = namespaceName(id, 'probe')
  try {
    writeMarker(id)
  } catch (err) {
    return no(`cannot write the lab's ownership marker: ${(err as Error).message}`)
  }
  try {
    await runLabCommand('ip', ['netns', 'add', ns], { timeout })
    await runLabCommand('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: 'table ip peerlink_probe {\n  chain c {\n    type nat hook postrouting priority srcnat; policy accept;\n    masquerade\n  }\n}\n',
      timeout,
    })
    return { available: true, reason: undefined }
  } catch (err) {
    return no(err instanceof PeerlinkError ? err.message : String(err))
  } finally {
    await deleteNamespaces([ns], timeout).catch(() => {})
    removeMarker(id)
  }
}

/**
 * Checks, once per process, that NAT labs can be built here: Linux, root, `ip` and `nft`
 * installed, a network namespace with an nftables NAT ruleset can be created.
 *
 * @example
 * ```ts
 * import { describe } from 'vitest'
 * import { natLabSupport } from 'peerlink/testing'
 *
 * const support = await natLabSupport()
 * // In CI the lab must run: let createNatLab fail there with ERR_NAT_LAB_UNAVAILABLE.
 * describe.skipIf(!support.available && !process.env.CI)(`behind NATs${support.available ? '' : ` (skipped: ${support.reason})`}`, () => {
 *   // …
 * })
 * ```
 */
export function natLabSupport(): Promise<NatLabSupport> {
  cached ??= probe()
  return cached
}
