// Builds peerlink's optional native parts with node-gyp (native/binding.gyp): the TURN
// server's data path (native/udp_relay.c) and the record cipher of secure connections
// (native/record_cipher.c, AES-256-GCM on Node's own OpenSSL). Run by `npm install` /
// `npm ci` (the package's "install" script). It never fails the install: without a C
// compiler, Python or Node's headers, the TURN server relays in JavaScript instead (same
// behaviour, about 1.5x the CPU per relayed packet) and records are sealed with
// node:crypto (same bytes, about half the throughput), and this prints one line saying so.
//
//   PEERLINK_SKIP_NATIVE=1   skip the build
//   PEERLINK_NATIVE_REQUIRED=1  fail when the build fails (CI uses it)
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const native = join(root, 'native')
const say = (line) => process.stderr.write(`peerlink: ${line}\n`)

if (process.env.PEERLINK_SKIP_NATIVE === '1') {
  say('native TURN data path and record cipher skipped (PEERLINK_SKIP_NATIVE=1); the TURN server relays in JavaScript and records use node:crypto')
  process.exit(0)
}

/** node-gyp: the one npm gives lifecycle scripts, else the one bundled with npm next to this node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ]
  return candidates.find((file) => file !== undefined && existsSync(file))
}

/**
 * The headers of the running Node.js: npm's `nodedir` setting when set, else the
 * installation's own include/node (present in most distributions' packages and in the
 * official tarballs), so that node-gyp need not download them.
 */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  const prefix = join(dirname(process.execPath), '..')
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined
}

const gyp = nodeGyp()
const nodedir = nodeDir()
let detail = 'node-gyp not found'
if (gyp !== undefined) {
  // Keep going after a failed target (make -k): one part that cannot build (say, Node's
  // OpenSSL headers missing for the cipher) must not cost the other.
  const args = [gyp, 'rebuild', '--release', ...(nodedir === undefined ? [] : [`--nodedir=${nodedir}`])]
  const result = spawnSync(process.execPath, args, { cwd: native, encoding: 'utf8', env: { ...process.env, MAKEFLAGS: `${process.env.MAKEFLAGS ?? ''} -k`.trim() } })
  detail = `${(result.stderr || '').trim().split('\n').filter((l) => /error/i.test(l)).slice(-3).join(' | ') || `exit ${result.status}`}`
}
const parts = [
  { file: 'peerlink_udp_relay.node', name: 'native TURN data path', without: 'the TURN server relays in JavaScript' },
  { file: 'peerlink_record_cipher.node', name: 'native record cipher', without: 'records are sealed with node:crypto' },
]
const missing = parts.filter((part) => !existsSync(join(native, 'build', 'Release', part.file)))
if (missing.length === 0) {
  say('native TURN data path and record cipher built (native/build/Release/peerlink_udp_relay.node, peerlink_record_cipher.node)')
} else {
  for (const part of missing) say(`${part.name} not built (${detail}); ${part.without}.`)
  say('Install python3, make and a C compiler (and Node.js headers), then run `npm rebuild peerlink` to build them.')
  if (process.env.PEERLINK_NATIVE_REQUIRED === '1') process.exit(1)
}
