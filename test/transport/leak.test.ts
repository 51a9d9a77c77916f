import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { statSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { PeerSocket } from '../../src/transport/peer-socket.js'
import { openSecureConnection } from '../../src/transport/secure-connection.js'
import { assertNoNewResources, snapshotActiveResources } from '../../src/testing/leak-check.js'
import { connectedPair, makeKeyPair, receiveAll, sendRandom, socketPair } from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const scenario = fileURLToPath(new URL('./fixtures/leak-scenario.mjs', import.meta.url))

/** The child scenario runs the compiled code: make sure dist/ exists and is not older than src/. */
function assertFreshBuild(): void {
  const built = join(root, 'dist/transport/index.js')
  let builtAt: number
  try {
    builtAt = statSync(built).mtimeMs
  } catch {
    throw new Error(`${built} is missing: run \`npm run build\` first (npm test does it in pretest)`)
  }
  const sources = [...readdirSync(join(root, 'src/transport')).map((f) => `src/transport/${f}`), 'src/errors.ts']
  for (const file of sources) {
    if (statSync(join(root, file)).mtimeMs > builtAt) {
      throw new Error(`dist/ is older than ${file}: run \`npm run build\` first`)
    }
  }
}

/** Run the scenario in a child node; resolves with whether it exited by itself within `ms`. */
function runScenario(args: string[], ms: number) {
  return new Promise<{ exitedBySelf: boolean; code: number | null; stdout: string; stderr: string; elapsed: number }>(
    (resolve, reject) => {
      const start = Date.now()
      const child = spawn(process.execPath, [scenario, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      let killed = false
      const timer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, ms)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      child.once('close', (code) => {
        clearTimeout(timer)
        resolve({ exitedBySelf: !killed, code, stdout, stderr, elapsed: Date.now() - start })
      })
    },
  )
}

describe('resource leaks', () => {
  it('leaves no Node handles or timers behind after connections and sockets close', async () => {
    const before = snapshotActiveResources()
    const { a, b, close } = await socketPair()
    const [ca, cb] = await connectedPair(a, b)
    const [sent, got] = await Promise.all([sendRandom(ca, 1024 * 1024), receiveAll(cb)])
    expect(got.sha256).toBe(sent)
    // A failed attempt starts (and must stop) a handshake timer.
    await expect(
      openSecureConnection({
        socket: a,
        remote: { host: '127.0.0.1', port: b.port },
        localStreamId: a.allocateStreamId(),
        remoteStreamId: 5,
        isInitiator: true,
        keyPair: makeKeyPair(),
        expectedRemotePublicKey: makeKeyPair().publicKey,
        handshakeTimeout: 100,
      }),
    ).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' })
    // An attempt still in its handshake when the socket closes must release its timer too.
    const pending = openSecureConnection({
      socket: a,
      remote: { host: '127.0.0.1', port: b.port },
      localStreamId: a.allocateStreamId(),
      remoteStreamId: 6,
      isInitiator: true,
      keyPair: makeKeyPair(),
      expectedRemotePublicKey: makeKeyPair().publicKey,
    }).catch((e: unknown) => e)
    await close()
    expect(await pending).toMatchObject({ code: 'ERR_SOCKET_CLOSED' })
    await assertNoNewResources(before)
    expect(a.streamCount + b.streamCount).toBe(0)
  })

  it('assertNoNewResources reports what is left open', async () => {
    const before = snapshotActiveResources()
    const timer = setInterval(() => {}, 1000)
    try {
      await expect(assertNoNewResources(before, { timeout: 50 })).rejects.toThrow(/Timeout/)
      await assertNoNewResources(before, { timeout: 50, ignore: ['Timeout'] })
    } finally {
      clearInterval(timer)
    }
    await assertNoNewResources(before)
  })

  it('a child process running the full scenario exits by itself (native handles released)', async () => {
    assertFreshBuild()
    const run = await runScenario([], 10_000)
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain('scenario complete')
    expect(run.exitedBySelf).toBe(true)
    expect(run.code).toBe(0)
    expect(run.elapsed).toBeLessThan(5_000)
  })

  it('negative control: the same scenario with one socket left open does not exit', async () => {
    assertFreshBuild()
    const run = await runScenario(['--leak'], 2_000)
    expect(run.stdout).toContain('scenario complete')
    expect(run.exitedBySelf).toBe(false)
  })
})
