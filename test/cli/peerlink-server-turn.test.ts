import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { TURN_SECRET_FILE, prepareTurn } from '../../src/cli/peerlink-server-turn.js'
import { parseServerConfig } from '../../src/server/config.js'
import { openDataDir } from '../../src/server/data-dir.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'
import { resolveTurnServerOptions } from '../../src/server/turn/turn-server-options.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-turn-cli-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const base = { loopback: false, host: undefined, turnPort: undefined, turnsPort: undefined }

describe('prepareTurn: TURN server options from config, command line and data directory', () => {
  it('--loopback: 127.0.0.1, loopback peers allowed, the data dir certificate, a generated REST secret kept in a 0600 file', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const config = parseServerConfig('[turn]\nexternal-ip = "198.51.100.7"\n', join(dir, 'x.toml'))
    const prepared = await prepareTurn({ ...base, loopback: true, config, dataDir })
    expect(prepared.options).toMatchObject({
      listeningIps: ['127.0.0.1'],
      relayIps: ['127.0.0.1'],
      allowLoopbackPeers: true,
      useAuthSecret: true,
      tls: { cert: dataDir.cert, key: dataDir.key },
    })
    expect(prepared.options.externalIp).toBeUndefined()
    expect(prepared.fallBackToFreePort).toBe(true)
    const file = join(dataDir.dir, TURN_SECRET_FILE)
    expect(prepared.secretFile).toBe(file)
    expect(prepared.options.staticAuthSecrets).toEqual([prepared.generatedSecret])
    expect((await readFile(file, 'utf8')).trim()).toBe(prepared.generatedSecret)
    if (process.platform !== 'win32') expect((await stat(file)).mode & 0o777).toBe(0o600)
    const resolved = resolveTurnServerOptions(prepared.options)
    expect(resolved.tlsPorts).toEqual([5349])
    // The same secret on the next start.
    expect((await prepareTurn({ ...base, loopback: true, config, dataDir })).generatedSecret).toBe(prepared.generatedSecret)
  })

  it('configured credentials, certificate files and ports win; explicit ports are never replaced', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const own = createSelfSignedCertificate({ commonName: 'own' })
    await writeFile(join(dir, 'own.pem'), own.cert)
    await writeFile(join(dir, 'own.key'), own.key, { mode: 0o600 })
    const config = parseServerConfig(
      '[turn]\nuser = ["alice:pw"]\ncert = "own.pem"\npkey = "own.key"\nlistening-port = 0\n',
      join(dir, 'server.toml'),
    )
    const prepared = await prepareTurn({ ...base, loopback: true, turnsPort: 0, config, dataDir })
    expect(prepared.generatedSecret).toBeUndefined()
    expect(prepared.options.staticAuthSecrets).toEqual([])
    expect(prepared.options.users).toEqual(['alice:pw'])
    expect(prepared.options.tls).toEqual({ cert: own.cert, key: own.key })
    expect(prepared.options.listeningPort).toBe(0)
    expect(prepared.options.tlsListeningPort).toBe(0)
    expect(prepared.fallBackToFreePort).toBe(false)
  })

  it('no-tls means no certificate is read; --host replaces listening-ip', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const config = parseServerConfig('[turn]\nno-tls = true\nstatic-auth-secret = "s3cret-value"\n', undefined)
    const prepared = await prepareTurn({ ...base, host: '::1', config, dataDir })
    expect(prepared.options.tls).toBeUndefined()
    expect(prepared.options.listeningIps).toEqual(['::1'])
    expect(prepared.options.allowLoopbackPeers).toBe(false)
    expect(prepared.generatedSecret).toBeUndefined()
    expect(prepared.fallBackToFreePort).toBe(false)
  })

  it.skipIf(process.platform === 'win32')('refuses a pkey readable by others', async () => {
    const dataDir = await openDataDir(join(dir, 'data'))
    const own = createSelfSignedCertificate()
    await writeFile(join(dir, 'c.pem'), own.cert)
    await writeFile(join(dir, 'k.pem'), own.key, { mode: 0o644 })
    const config = parseServerConfig('[turn]\ncert = "c.pem"\npkey = "k.pem"\n', join(dir, 'server.toml'))
    await expect(prepareTurn({ ...base, config, dataDir })).rejects.toMatchObject({ code: 'ERR_KEY_FILE_PERMISSIONS' })
  })
})
