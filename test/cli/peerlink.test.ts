import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { commands } from '../../src/cli/commands/index.js'
import { main } from '../../src/cli/peerlink.js'
import { loadIdentity } from '../../src/identity/index.js'
import { captureIo } from './helpers.js'

const posix = process.platform !== 'win32'
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-cli-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function run(argv: string[], env: Record<string, string | undefined> = {}) {
  const captured = captureIo(dir, env)
  const code = await main(argv, captured.io)
  return { code, stdout: captured.stdout(), stderr: captured.stderr() }
}

/** Parses stderr as JSON lines. */
const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text
    .trim()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('peerlink help and usage errors', () => {
  for (const argv of [[], ['--help'], ['-h'], ['help']]) {
    it(`${JSON.stringify(argv)} prints usage listing the commands and common options, exit 0`, async () => {
      const { code, stdout, stderr } = await run(argv)
      expect(code).toBe(0)
      expect(stderr).toBe('')
      expect(stdout).toMatch(/^Usage: peerlink COMMAND/)
      for (const command of commands) expect(stdout).toContain(`  ${command.name} `)
      expect(stdout).toMatch(/^ {2}id +print this peer's PeerId/m)
      for (const option of ['--key FILE', '--config FILE', '--json', '-h, --help', '$PEERLINK_KEY', '~/.peerlink/peer.key']) {
        expect(stdout).toContain(option)
      }
    })
  }

  for (const argv of [['id', '--help'], ['help', 'id'], ['--help', 'id'], ['id', '-h']]) {
    it(`${JSON.stringify(argv)} prints the id command's help`, async () => {
      const { code, stdout } = await run(argv)
      expect(code).toBe(0)
      expect(stdout).toMatch(/^Usage: peerlink id \[--key FILE\] \[--json\]/)
      expect(stdout).toContain('Common options:')
    })
  }

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    const { code, stdout } = await run(['--version'])
    expect(code).toBe(0)
    expect(stdout).toBe(`${pkg.version}\n`)
  })

  const usageErrors: Array<[string[], RegExp, string]> = [
    [['frob'], /unknown command "frob"/, 'peerlink --help'],
    [['--bogus'], /unknown option --bogus/, 'peerlink --help'],
    [['id', '--bogus'], /unknown option --bogus/, 'peerlink id --help'],
    [['--bogus', 'id'], /unknown option --bogus/, 'peerlink id --help'],
    [['id', 'extra'], /unexpected argument "extra"/, 'peerlink id --help'],
    [['id', '--key'], /--key <value>' argument missing/, 'peerlink id --help'],
    [['id', '--json=yes'], /--json' does not take an argument/, 'peerlink id --help'],
    [['--key', 'x.key'], /no command given/, 'peerlink --help'],
    [['help', 'frob'], /unknown command "frob"/, 'peerlink --help'],
  ]
  for (const [argv, message, hint] of usageErrors) {
    it(`${JSON.stringify(argv)} is a usage error: message and hint on stderr, exit 2`, async () => {
      const { code, stdout, stderr } = await run(argv)
      expect(code).toBe(2)
      expect(stdout).toBe('')
      expect(stderr).toMatch(message)
      expect(stderr).toMatch(/^peerlink: /)
      expect(stderr).toContain(`Run '${hint}' for usage.`)
    })
  }

  it('with --json, a usage error is one JSON line on stderr', async () => {
    const { code, stderr } = await run(['--json', 'frob'])
    expect(code).toBe(2)
    expect(jsonLines(stderr)).toEqual([{ event: 'error', code: 'ERR_CLI_USAGE', message: 'unknown command "frob"' }])
  })
})

describe('peerlink id', () => {
  it('creates ~/.peerlink/peer.key by default, says so on stderr, and prints the same PeerId next time', async () => {
    const first = await run(['id'])
    expect(first.code).toBe(0)
    const peerId = first.stdout.trim()
    expect(peerId).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/)
    expect(first.stdout).toBe(`${peerId}\n`)
    const keyFile = join(dir, '.peerlink', 'peer.key')
    expect(first.stderr).toContain(`created a new identity in ${keyFile}`)
    expect((await loadIdentity(keyFile)).peerId).toBe(peerId)
    if (posix) {
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
      expect((await stat(join(dir, '.peerlink'))).mode & 0o777).toBe(0o700)
    }
    const second = await run(['id'])
    expect(second).toEqual({ code: 0, stdout: `${peerId}\n`, stderr: '' })
  })

  it('--json prints {peerId, keyFile, created} on stdout', async () => {
    const first = await run(['id', '--json', '--key', 'my.key'])
    expect(first.code).toBe(0)
    const result = JSON.parse(first.stdout) as Record<string, unknown>
    expect(Object.keys(result).sort()).toEqual(['created', 'keyFile', 'peerId'])
    expect(result.keyFile).toBe(join(dir, 'my.key'))
    expect(result.created).toBe(true)
    expect(result.peerId).toMatch(/^12D3KooW/)
    expect(jsonLines(first.stderr)).toEqual([{ event: 'key-created', keyFile: join(dir, 'my.key'), peerId: result.peerId }])
    const second = await run(['--json', 'id', '--key', join(dir, 'my.key')])
    expect(JSON.parse(second.stdout)).toEqual({ ...result, created: false })
    expect(second.stderr).toBe('')
  })

  it('takes the key file from --key, then --config, then $PEERLINK_KEY, then the default', async () => {
    await writeFile(join(dir, 'peerlink.toml'), 'key = "from-config.key"\n')
    const env = { PEERLINK_KEY: join(dir, 'from-env.key') }
    const keyFileOf = async (argv: string[], e: Record<string, string> = env) => JSON.parse((await run([...argv, '--json'], e)).stdout).keyFile
    expect(await keyFileOf(['id', '--key', 'from-flag.key', '--config', 'peerlink.toml'])).toBe(join(dir, 'from-flag.key'))
    expect(await keyFileOf(['id', '--config', 'peerlink.toml'])).toBe(join(dir, 'from-config.key'))
    expect(await keyFileOf(['id'])).toBe(join(dir, 'from-env.key'))
    expect(await keyFileOf(['id'], {})).toBe(join(dir, '.peerlink', 'peer.key'))
    expect(await keyFileOf(['id', '--key', '~/tilde.key'])).toBe(join(dir, 'tilde.key'))
  })

  it.skipIf(!posix)('refuses a key file readable by others with the chmod fix, exit 1', async () => {
    const keyFile = join(dir, 'open.key')
    expect((await run(['id', '--key', keyFile])).code).toBe(0)
    await chmod(keyFile, 0o644)
    const { code, stdout, stderr } = await run(['id', '--key', keyFile])
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toBe(
      `peerlink: Key file ${keyFile} has mode 644, readable by others. Fix it with: chmod 600 "${keyFile}" (ERR_KEY_FILE_PERMISSIONS)\n`,
    )
    const json = await run(['id', '--key', keyFile, '--json'])
    expect(json.code).toBe(1)
    expect(jsonLines(json.stderr)).toEqual([
      { event: 'error', code: 'ERR_KEY_FILE_PERMISSIONS', message: expect.stringContaining(`chmod 600 "${keyFile}"`) },
    ])
  })

  it('reports a corrupt key file and leaves it alone', async () => {
    const keyFile = join(dir, 'bad.key')
    await writeFile(keyFile, 'not a key', { mode: 0o600 })
    const { code, stderr } = await run(['id', '--key', keyFile])
    expect(code).toBe(1)
    expect(stderr).toMatch(/^peerlink: Key file .*bad\.key: not a peerlink key file .*\(ERR_KEY_FILE_INVALID\)\n$/)
    expect(await readFile(keyFile, 'utf8')).toBe('not a key')
  })

  it('reports an invalid --config file with ERR_CONFIG_INVALID', async () => {
    await writeFile(join(dir, 'bad.toml'), 'beacons = ["stun:x.org"]\n')
    const { code, stderr } = await run(['id', '--config', 'bad.toml'])
    expect(code).toBe(1)
    expect(stderr).toMatch(/beacons\[0\].*\(ERR_CONFIG_INVALID\)\n$/)
    const missing = await run(['id', '--config', 'missing.toml', '--json'])
    expect(missing.code).toBe(1)
    expect(jsonLines(missing.stderr)[0]).toMatchObject({ event: 'error', code: 'ERR_CONFIG_INVALID' })
  })

  it('reports a key path it cannot create with ERR_KEY_FILE_ACCESS', async () => {
    await mkdir(join(dir, 'sub'))
    await writeFile(join(dir, 'sub', 'file'), '')
    const { code, stderr } = await run(['id', '--key', 'sub/file/peer.key'])
    expect(code).toBe(1)
    expect(stderr).toMatch(/\(ERR_KEY_FILE_ACCESS\)\n$/)
  })
})
