// The README's quick start, word for word: its commands are read from README.md (so the
// test breaks when the README drifts), the servers start as `npm start` starts them (in a
// scratch directory, so the data directory is fresh), and the two terminals' commands run
// with the placeholders filled in from what the previous steps printed. Needs dist/
// (`npm test` builds it).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../', import.meta.url))
let dir: string
const children: ChildProcessWithoutNullStreams[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-quickstart-'))
})
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)))
  await rm(dir, { recursive: true, force: true })
})

/** The shell words of a command line (single quotes only, as the README uses). */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)
}

/** The commands of the README's quick start section, comments removed. */
async function quickStartCommands(): Promise<string[]> {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  const section = /## Quick start[^\n]*\n([\s\S]*?)\n## /.exec(readme)?.[1]
  if (section === undefined) throw new Error('README.md has no "## Quick start" section')
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!)
  return blocks.flatMap((block) =>
    block
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter((line) => line.length > 0 && !line.startsWith('#')),
  )
}

function run(command: string, args: string[], cwd: string): { child: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH, HOME: dir } })
  children.push(child)
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, out: () => out, err: () => err, exited }
}

async function until<T>(get: () => T | undefined, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = get()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

it('README quick start: npm start, then listen and connect in two terminals, data both ways', async () => {
  const commands = await quickStartCommands()
  // Terminal 0: `npm ci && npm start`; npm start is package.json's start script.
  expect(commands[0]).toBe('npm ci && npm start')
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const [node, script, ...serverArgs] = words(pkg.scripts.start)
  expect(node).toBe('node')
  const servers = run(process.execPath, [join(root, script!), ...serverArgs], dir)
  const beaconLine = await until(() => /--beacon (\S+)/.exec(servers.out())?.[1], 'the --beacon line of npm start')

  const listenLine = commands.find((c) => c.startsWith('./bin/peerlink listen'))
  const connectLine = commands.find((c) => c.startsWith('./bin/peerlink connect'))
  expect(listenLine).toBeDefined()
  expect(connectLine).toBeDefined()
  const fill = (line: string, peerId?: string) =>
    words(line).map((word) => (word.includes('<CERT_HASH>') ? beaconLine : peerId !== undefined && word === '12D3KooW…' ? peerId : word))
  const bin = (args: string[]) => [join(root, 'bin', 'peerlink'), ...args.slice(1)] // "./bin/peerlink" from the clone

  // Terminal A.
  const a = run(process.execPath, bin(fill(listenLine!)), dir)
  const peerId = await until(() => /^(12D3KooW\w+)\n/.exec(a.out())?.[1], "A's PeerId")
  // Terminal B, with A's PeerId.
  const b = run(process.execPath, bin(fill(connectLine!, peerId)), dir)
  const fromA = randomBytes(64 * 1024).toString('hex')
  const fromB = randomBytes(64 * 1024).toString('hex')
  a.child.stdin.end(fromA)
  b.child.stdin.end(fromB)
  const [codeA, codeB] = await Promise.all([a.exited, b.exited])
  expect(codeB, b.err()).toBe(0)
  expect(codeA, a.err()).toBe(0)
  expect(b.out()).toBe(fromA)
  expect(a.out()).toBe(`${peerId}\n${fromB}`)
  servers.child.kill('SIGINT')
  expect(await servers.exited).toBe(0)
}, 60_000)
