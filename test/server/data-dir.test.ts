import { X509Certificate } from 'node:crypto'
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { certificateHash } from '../../src/cert-pin.js'
import { DATA_DIR_FILES, loadOrCreateSecretFile, openDataDir } from '../../src/server/data-dir.js'
import { createSelfSignedCertificate } from '../../src/server/tls.js'

const posix = process.platform !== 'win32'
let base: string

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'peerlink-data-dir-'))
})
afterEach(async () => {
  await rm(base, { recursive: true, force: true })
})

const mode = async (path: string) => (await stat(path)).mode & 0o777

describe('openDataDir', () => {
  it('first run creates the directory, certificate, key (0600), hash file, logs/ and the config template', async () => {
    const dir = join(base, 'server')
    const opened = await openDataDir(dir, { configTemplate: '# hello\n' })
    expect(opened.dir).toBe(dir)
    expect((await readdir(dir)).sort()).toEqual(['cert.pem', 'certificate_hash.txt', 'key.pem', 'logs', 'peerlink-server.toml'])
    expect([...opened.created].sort()).toEqual(
      [dir, opened.logDir, opened.keyFile, opened.certFile, opened.certificateHashFile, opened.configFile].sort(),
    )
    expect(await readFile(opened.certificateHashFile, 'utf8')).toBe(`${opened.certificateHash}\n`)
    expect(certificateHash(await readFile(opened.certFile, 'utf8'))).toBe(opened.certificateHash)
    expect(await readFile(opened.configFile, 'utf8')).toBe('# hello\n')
    expect(new X509Certificate(opened.cert).subject).toBe('CN=peerlink-server')
    if (posix) {
      expect(await mode(dir)).toBe(0o700)
      expect(await mode(opened.logDir)).toBe(0o700)
      expect(await mode(opened.keyFile)).toBe(0o600)
      expect(await mode(opened.configFile)).toBe(0o600)
      expect(await mode(opened.certFile)).toBe(0o644)
    }
    expect((await readdir(dir)).some((name) => name.endsWith('.tmp'))).toBe(false)
  })

  it('later runs reuse everything and change nothing', async () => {
    const dir = join(base, 'server')
    const first = await openDataDir(dir, { configTemplate: '# v1\n' })
    await writeFile(first.configFile, '# edited by the operator\n')
    const before = await Promise.all([first.certFile, first.keyFile, first.certificateHashFile].map((f) => readFile(f, 'utf8')))
    const second = await openDataDir(dir, { configTemplate: '# v2\n' })
    expect(second.created).toEqual([])
    expect(second.certificateHash).toBe(first.certificateHash)
    expect(second.key).toBe(first.key)
    expect(await readFile(first.configFile, 'utf8')).toBe('# edited by the operator\n')
    const after = await Promise.all([first.certFile, first.keyFile, first.certificateHashFile].map((f) => readFile(f, 'utf8')))
    expect(after).toEqual(before)
  })

  it('a certificate and key copied into a fresh directory restore the same hash', async () => {
    const original = await openDataDir(join(base, 'a'))
    const fresh = join(base, 'b')
    await mkdir(fresh)
    await copyFile(original.certFile, join(fresh, DATA_DIR_FILES.cert))
    await copyFile(original.keyFile, join(fresh, DATA_DIR_FILES.key))
    if (posix) await chmod(join(fresh, DATA_DIR_FILES.key), 0o600)
    const restored = await openDataDir(fresh)
    expect(restored.certificateHash).toBe(original.certificateHash)
    expect(await readFile(restored.certificateHashFile, 'utf8')).toBe(`${original.certificateHash}\n`)
    expect(restored.created).toEqual([restored.logDir, restored.certificateHashFile])
  })

  it('uses an operator-supplied certificate as it is', async () => {
    const own = createSelfSignedCertificate({ commonName: 'fleet', dnsNames: ['turn.example.com'] })
    const dir = join(base, 'own')
    await mkdir(dir)
    await writeFile(join(dir, 'cert.pem'), own.cert)
    await writeFile(join(dir, 'key.pem'), own.key, { mode: 0o600 })
    const opened = await openDataDir(dir)
    expect(opened.certificateHash).toBe(own.hash)
  })

  it.skipIf(!posix)('refuses a key.pem readable by others, with the chmod hint', async () => {
    const dir = join(base, 'server')
    const opened = await openDataDir(dir)
    await chmod(opened.keyFile, 0o644)
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_KEY_FILE_PERMISSIONS', message: expect.stringContaining(`chmod 600 "${opened.keyFile}"`) })
    await chmod(opened.keyFile, 0o640)
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_KEY_FILE_PERMISSIONS' })
  })

  it('refuses half a pair, a foreign key, a stale hash file and garbage, naming the file', async () => {
    const dir = join(base, 'server')
    const opened = await openDataDir(dir)
    const cert = await readFile(opened.certFile, 'utf8')

    await rm(opened.keyFile)
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_DATA_DIR', path: opened.keyFile, message: expect.stringMatching(/missing while cert\.pem exists/) })

    await writeFile(opened.keyFile, createSelfSignedCertificate().key, { mode: 0o600 })
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_DATA_DIR', path: opened.keyFile, message: expect.stringMatching(/not the private key/) })

    await rm(opened.certFile)
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_DATA_DIR', path: opened.certFile })

    const other = createSelfSignedCertificate()
    await writeFile(opened.certFile, other.cert)
    await rm(opened.keyFile)
    await writeFile(opened.keyFile, other.key, { mode: 0o600 })
    await expect(openDataDir(dir)).rejects.toMatchObject({
      code: 'ERR_DATA_DIR',
      path: opened.certificateHashFile,
      message: expect.stringContaining(`hashes to ${other.hash}`),
    })
    // The stale hash file was not touched.
    expect((await readFile(opened.certificateHashFile, 'utf8')).trim()).toBe(opened.certificateHash)

    await writeFile(opened.certFile, 'garbage')
    await expect(openDataDir(dir)).rejects.toMatchObject({ code: 'ERR_DATA_DIR', path: opened.certFile, message: expect.stringMatching(/not a PEM certificate/) })
    await writeFile(opened.certFile, cert)
  })

  it('reports a directory it cannot create', async () => {
    const file = join(base, 'plain-file')
    await writeFile(file, '')
    await expect(openDataDir(join(file, 'sub'))).rejects.toMatchObject({ code: 'ERR_DATA_DIR' })
    await expect(openDataDir('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('honours an aborted signal', async () => {
    await expect(openDataDir(join(base, 'x'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})

describe('loadOrCreateSecretFile', () => {
  it('creates a 0600 random secret once and returns it again', async () => {
    const file = join(base, 'sub', 'turn-secret.txt')
    const secret = await loadOrCreateSecretFile(file)
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await loadOrCreateSecretFile(file)).toBe(secret)
    if (posix) expect(await mode(file)).toBe(0o600)
    if (posix) {
      await chmod(file, 0o604)
      await expect(loadOrCreateSecretFile(file)).rejects.toMatchObject({ code: 'ERR_KEY_FILE_PERMISSIONS' })
    }
  })
})
