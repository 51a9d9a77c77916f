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
