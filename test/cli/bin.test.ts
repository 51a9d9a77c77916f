// Runs the real `bin/peerlink` (which loads the compiled dist/). Needs `npm run build`
// first (`npm test` does it through "pretest").
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin', 'peerlink')
const posix = process.platform !== 'win32'
let dir: string

/** Newest modification time of the files under `path`. */
async function newest(path: string): Promise<number> {
  const info = await stat(path)
  if (!info.isDirectory()) return info.mtimeMs
  const entries = await readdir(path)
  return Math.max(0, ...(await Promise.all(entries.map((entry) => newest(join(path, entry))))))
}

beforeAll(async () => {
  const built = await stat(join(root, 'dist', 'cli', 'peerlink.js')).catch(() => undefined)
  if (built === undefined) throw new Error('dist/cli/peerlink.js is missing: run `npm run build` before these tests')
  for (const source of ['src/cli', 'src/identity', 'src/server-spec.ts', 'src/errors.ts']) {
    if ((await newest(join(root, source))) > built.mtimeMs) {
      throw new Error(`dist/ is older than ${source}: run \`npm run build\` before these tests`)
    }
  }
})
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-bin-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

function peerlink(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, USERPROFILE: dir }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe('bin/peerlink', () => {
  it('--help exits 0 and lists the id command', async () => {
    const { code, stdout, stderr } = await peerlink(['--help'])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage: peerlink COMMAND/)
    expect(stdout).toMatch(/^ {2}id +/m)
  })

  it('id --key FILE creates a 0600 key file and prints the same PeerId every time', async () => {
    const keyFile = join(dir, 'keys', 'peer.key')
    const first = await peerlink(['id', '--key', keyFile])
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}\n$/)
    expect(first.stderr).toContain(`created a new identity in ${keyFile}`)
    if (posix) expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    const second = await peerlink(['id', '--key', keyFile])
    expect(second).toEqual({ code: 0, stdout: first.stdout, stderr: '' })
  })

  it.skipIf(!posix)('refuses a 0644 key file with the chmod hint, exit 1', async () => {
    const keyFile = join(dir, 'peer.key')
    expect((await peerlink(['id', '--key', keyFile])).code).toBe(0)
    await chmod(keyFile, 0o644)
    const { code, stdout, stderr } = await peerlink(['id', '--key', keyFile])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toContain(`chmod 600 "${keyFile}"`)
    expect(stderr).toContain('(ERR_KEY_FILE_PERMISSIONS)')
  })

  it('an unknown option exits 2 with a usage hint', async () => {
    const { code, stdout, stderr } = await peerlink(['id', '--no-such-option'])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toBe("peerlink: unknown option --no-such-option\nRun 'peerlink id --help' for usage.\n")
  })
})
