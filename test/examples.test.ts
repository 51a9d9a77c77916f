// Every example runs (against servers this test starts on loopback). Needs dist/ (`npm test` builds it).
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { StunServer } from '../src/server/stun/stun-server.js'

const root = fileURLToPath(new URL('../', import.meta.url))

it('examples/nat-check.mjs prints the public address and NAT behaviour', async () => {
  const stun = await StunServer.listen({ host: '127.0.0.1', port: 0, alternateHost: '127.0.0.2' })
  const dir = await mkdtemp(join(tmpdir(), 'peerlink-example-'))
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'examples', 'nat-check.mjs')], {
      cwd: root,
      env: { ...process.env, STUN: `127.0.0.1:${stun.primary.port}`, KEY: join(dir, 'peer.key') },
      timeout: 20_000,
    })
    expect(stdout).toMatch(/I am 12D3KooW\w+/)
    expect(stdout).toMatch(/public address: 127\.0\.0\.1:\d+/)
    expect(stdout).toMatch(/NAT mapping: +no-nat/)
    expect(stdout).toMatch(/NAT filtering: +endpoint-independent/)
  } finally {
    await stun.close()
    await rm(dir, { recursive: true, force: true })
  }
})

/** Runs an example with node; resolves with its stdout (rejects on a non-zero exit). */
async function runExample(file: string, env: Record<string, string> = {}, timeout = 30_000): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'examples', file)], { cwd: root, env: { ...process.env, ...env }, timeout })
  return stdout
}

it('examples/connect-by-peerid.mjs connects two peers by PeerId and uses two streams', async () => {
  const stdout = await runExample('connect-by-peerid.mjs')
  expect(stdout).toMatch(/bob: connected to 12D3KooW\w+ \(direct, \d+ ms\)/)
  expect(stdout).toMatch(/alice: connection from 12D3KooW\w+ over direct/)
  expect(stdout).toContain('bob: alice got stream "notes"')
  expect(stdout).toContain('bob: echo "hello alice"')
})

it('examples/expose-web-ui.mjs serves the web UI by name and a raw TCP port through the tunnel', async () => {
  const stdout = await runExample('expose-web-ui.mjs')
  expect(stdout).toMatch(/web UI at http:\/\/my-device\.tunnel\.test:\d+\//)
  expect(stdout).toContain('visitor got: 200 device UI: GET /status for 127.0.0.1')
  expect(stdout).toContain('echo service: ping over raw TCP')
})

it('examples/run-servers.mjs starts the servers, prints what clients need, and stops', async () => {
  const stdout = await runExample('run-servers.mjs', { EXIT_AFTER_MS: '300' })
  expect(stdout).toMatch(/beacon: +127\.0\.0\.1:\d+#[\w-]{43}/)
  expect(stdout).toMatch(/turn: +turn:127\.0\.0\.1:\d+ +user \d+:alice +password \S+/)
  expect(stdout).toMatch(/tunnel: +wss:\/\/127\.0\.0\.1:\d+\/#[\w-]{43} +token \S+/)
  expect(stdout).toMatch(/stopped\n$/)
})

it('examples/nat-lab.mjs connects two peers directly through two kernel NATs', async () => {
  const stdout = await runExample('nat-lab.mjs', {}, 60_000)
  if (stdout.startsWith('the NAT lab cannot run here') && !process.env.CI) return // not root: nothing to show
  expect(stdout).toMatch(/alice \(10\.0\.1\.10, behind 198\.18\.2\.10\) listens as 12D3KooW\w+/)
  expect(stdout).toMatch(/bob \(10\.0\.2\.10, behind 198\.18\.2\.11\) connected in \d+ ms over direct/)
  expect(stdout).toContain('echo: hello through two NATs')
}, 70_000)

it('examples/systemd/redis-fleet.toml is a valid peerlink-server config for a fleet member', async () => {
  const { readFile } = await import('node:fs/promises')
  const { parseServerConfig } = await import('../src/server/config.js')
  const file = join(root, 'examples', 'systemd', 'redis-fleet.toml')
  const config = parseServerConfig(await readFile(file, 'utf8'), file) as unknown as {
    beacon: { redis?: string }
    tunnel: { redis?: string; serverId?: string; publicUrl?: string }
    turn: { staticAuthSecrets: string[] }
  }
  expect(config.beacon.redis).toBe('redis://10.0.0.5:6379')
  expect(config.tunnel).toMatchObject({ redis: 'redis://10.0.0.5:6379', serverId: 'tunnel-1', publicUrl: 'wss://tunnel-1.example.com:8443' })
  expect(config.turn.staticAuthSecrets).toHaveLength(2)
})

it('examples/systemd/peerlink-server.service starts a command peerlink-server accepts', async () => {
  const { readFile } = await import('node:fs/promises')
  const unit = await readFile(join(root, 'examples', 'systemd', 'peerlink-server.service'), 'utf8')
  const exec = /^ExecStart=\/usr\/bin\/env peerlink-server (.+)$/m.exec(unit)?.[1]
  expect(exec).toBeDefined()
  // The same arguments, with --help: a usage error (exit 2) would mean an unknown option.
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bin', 'peerlink-server'), ...exec!.split(' '), '--help'], { cwd: root, timeout: 10_000 })
  expect(stdout).toContain('Usage: peerlink-server')
})

it('examples/rendezvous.mjs makes two peers meet by a shared code', async () => {
  const stdout = await runExample('rendezvous.mjs', {}, 30_000)
  expect(stdout).toMatch(/a: met 12D3KooW\w+ over direct/)
  expect(stdout).toMatch(/b: met 12D3KooW\w+ over direct/)
  expect(stdout).toContain('a: got "hello from b"')
  expect(stdout).toContain('b: got "hello from a"')
})

it('examples/forward-tcp-port.mjs carries three TCP connections over one peer connection, and closes cleanly', async () => {
  const stdout = await runExample('forward-tcp-port.mjs')
  expect(stdout).toMatch(/bob: 127\.0\.0\.1:\d+ now reaches alice's service/)
  expect(stdout).toContain('answers: ONE TWO THREE')
  // Bob's graceful close is not an error on either side.
  expect(stdout).not.toContain('connection ended')
})
