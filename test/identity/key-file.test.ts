import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  AbortError,
  InvalidArgumentError,
  KeyFileAccessError,
  KeyFileInvalidError,
  KeyFilePermissionsError,
} from '../../src/errors.js'
import {
  createIdentity,
  decodeKeyFile,
  encodeKeyFile,
  identityFromSeed,
  loadIdentity,
  loadOrCreateIdentity,
  loadOrCreateIdentityFile,
  peerIdFromPublicKey,
  saveIdentity,
} from '../../src/identity/index.js'

const posix = process.platform !== 'win32'
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peerlink-keyfile-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777

describe('loadOrCreateIdentity', () => {
  it('creates a 0600 key file in new 0700 directories, then loads the same identity', async () => {
    const file = join(dir, 'a', 'b', 'peer.key')
    const first = await loadOrCreateIdentityFile(file)
    expect(first.created).toBe(true)
    expect(first.path).toBe(file)
    expect(first.identity.peerId).toMatch(/^12D3KooW/)
    expect(first.identity.peerId).toBe(peerIdFromPublicKey(first.identity.keyPair.publicKey))
    if (posix) {
      expect(await mode(file)).toBe(0o600)
      expect(await mode(join(dir, 'a'))).toBe(0o700)
      expect(await mode(join(dir, 'a', 'b'))).toBe(0o700)
    }
    const second = await loadOrCreateIdentityFile(file)
    expect(second.created).toBe(false)
    expect(second.identity.peerId).toBe(first.identity.peerId)
    expect(Buffer.compare(second.identity.keyPair.secretKey, first.identity.keyPair.secretKey)).toBe(0)
    expect((await loadOrCreateIdentity(file)).peerId).toBe(first.identity.peerId)
    expect((await loadIdentity(file)).peerId).toBe(first.identity.peerId)
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['peer.key'])
  })

  it('writes the documented JSON format with the seed in base64url', async () => {
    const file = join(dir, 'peer.key')
    const identity = await loadOrCreateIdentity(file)
    const document = JSON.parse(await readFile(file, 'utf8'))
    expect(Object.keys(document).sort()).toEqual(['peerId', 'secretKey', 'type', 'version'])
    expect(document.type).toBe('peerlink-ed25519')
    expect(document.version).toBe(1)
    expect(document.peerId).toBe(identity.peerId)
    expect(document.secretKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(document.secretKey, 'base64url').equals(Buffer.from(identity.keyPair.secretKey.subarray(0, 32)))).toBe(true)
  })

  it('creates exactly one key when many callers race for the same new file', async () => {
    const file = join(dir, 'race', 'peer.key')
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentityFile(file)))
    expect(new Set(results.map((r) => r.identity.peerId)).size).toBe(1)
    expect(results.filter((r) => r.created)).toHaveLength(1)
    expect((await loadIdentity(file)).peerId).toBe(results[0]!.identity.peerId)
    expect(await readdir(join(dir, 'race'))).toEqual(['peer.key']) // no temporary files left behind
  })

  it('creates nothing when the signal is already aborted', async () => {
    const file = join(dir, 'peer.key')
    const controller = new AbortController()
    controller.abort()
    await expect(loadOrCreateIdentity(file, { signal: controller.signal })).rejects.toThrow(AbortError)
    expect(await readdir(dir)).toEqual([])
  })

  it('rejects an empty path at once', async () => {
    await expect(loadOrCreateIdentity('')).rejects.toThrow(InvalidArgumentError)
  })
})

describe.skipIf(!posix)('key file permissions', () => {
  for (const unsafe of [0o644, 0o640, 0o604, 0o620, 0o602, 0o666]) {
    it(`refuses a key file with mode ${unsafe.toString(8)} and names the chmod fix`, async () => {
      const file = join(dir, 'peer.key')
      await loadOrCreateIdentity(file)
      await chmod(file, unsafe)
      const error = await loadOrCreateIdentity(file).catch((err: unknown) => err)
      expect(error).toBeInstanceOf(KeyFilePermissionsError)
      expect((error as KeyFilePermissionsError).code).toBe('ERR_KEY_FILE_PERMISSIONS')
      expect((error as Error).message).toContain(`chmod 600 "${file}"`)
      await expect(loadIdentity(file)).rejects.toThrow(KeyFilePermissionsError)
      expect(await mode(file)).toBe(unsafe) // left alone
    })
  }

  for (const safe of [0o600, 0o400, 0o700]) {
    it(`accepts a key file with mode ${safe.toString(8)}`, async () => {
      const file = join(dir, 'peer.key')
      const created = await loadOrCreateIdentity(file)
      await chmod(file, safe)
      expect((await loadIdentity(file)).peerId).toBe(created.peerId)
    })
  }

  it('makes the new file 0600 whatever the umask', async () => {
    const previous = process.umask(0o000)
    try {
      const file = join(dir, 'open', 'peer.key')
      await loadOrCreateIdentity(file)
      expect(await mode(file)).toBe(0o600)
      expect(await mode(join(dir, 'open'))).toBe(0o700)
    } finally {
      process.umask(previous)
    }
  })

  it.skipIf(isRoot)('reports an unwritable directory as KeyFileAccessError', async () => {
    const locked = join(dir, 'locked')
    await mkdir(locked, { mode: 0o500 })
    await expect(loadOrCreateIdentity(join(locked, 'peer.key'))).rejects.toThrow(KeyFileAccessError)
  })

  it('reports a parent path that is a file as KeyFileAccessError', async () => {
    await writeFile(join(dir, 'plain'), 'x')
    const error = await loadOrCreateIdentity(join(dir, 'plain', 'peer.key')).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(KeyFileAccessError)
    expect((error as Error).message).toContain(join(dir, 'plain', 'peer.key'))
  })

  it('does not hang on a FIFO planted at the key path', async () => {
    const file = join(dir, 'peer.key')
    execFileSync('mkfifo', ['-m', '600', file])
    await expect(loadOrCreateIdentity(file)).rejects.toThrow(KeyFileInvalidError)
  })
})

describe('invalid key files', () => {
  const write = async (content: string): Promise<string> => {
    const file = join(dir, 'peer.key')
    await writeFile(file, content, { mode: 0o600 })
    return file
  }
  const good = identityFromSeed(new Uint8Array(32).fill(1))
  const goodDocument = JSON.parse(encodeKeyFile(good)) as Record<string, unknown>
  const variant = (patch: Record<string, unknown>): string => JSON.stringify({ ...goodDocument, ...patch })

  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /not valid JSON/],
    ['garbage', 'hello world', /not valid JSON/],
    ['JSON array', '[]', /JSON object/],
    ['JSON null', 'null', /JSON object/],
    ['wrong type', variant({ type: 'ssh-ed25519' }), /not a peerlink key file/],
    ['future version', variant({ version: 2 }), /unsupported key file version 2/],
    ['version as string', variant({ version: '1' }), /unsupported key file version/],
    ['short seed', variant({ secretKey: 'AAAA' }), /32-byte seed/],
    ['padded seed', variant({ secretKey: `${goodDocument.secretKey as string}=` }), /32-byte seed/],
    ['base64 (not url) seed', variant({ secretKey: '+'.repeat(43) }), /32-byte seed/],
    ['non-canonical last character', variant({ secretKey: `${(goodDocument.secretKey as string).slice(0, 42)}B` }), /32-byte seed/],
    ['64-byte secret key', variant({ secretKey: Buffer.from(good.keyPair.secretKey).toString('base64url') }), /32-byte seed/],
    ['missing peerId', variant({ peerId: undefined }), /"peerId" is missing/],
    ['mismatched peerId', variant({ peerId: createIdentity().peerId }), /does not match the key/],
    ['too large', `${encodeKeyFile(good)}${' '.repeat(5000)}`, /too large/],
  ]
  for (const [name, content, message] of cases) {
    it(`refuses ${name} with KeyFileInvalidError and never overwrites it`, async () => {
      const file = await write(content)
      const error = await loadOrCreateIdentity(file).catch((err: unknown) => err)
      expect(error).toBeInstanceOf(KeyFileInvalidError)
      expect((error as KeyFileInvalidError).code).toBe('ERR_KEY_FILE_INVALID')
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).toContain(file)
      expect((error as Error).message).not.toContain(goodDocument.secretKey as string)
      expect(await readFile(file, 'utf8')).toBe(content)
    })
  }

  it('accepts unknown extra fields and a missing trailing newline', async () => {
    const file = await write(variant({ comment: 'my laptop' }))
    expect((await loadIdentity(file)).peerId).toBe(good.peerId)
  })

  it('refuses a directory at the key path', async () => {
    const file = join(dir, 'peer.key')
    await mkdir(file, { mode: 0o700 })
    await expect(loadOrCreateIdentity(file)).rejects.toThrow(KeyFileInvalidError)
  })

  it('decodes what it encodes', () => {
    const identity = createIdentity()
    expect(decodeKeyFile(encodeKeyFile(identity)).peerId).toBe(identity.peerId)
  })
})

describe('loadIdentity and saveIdentity', () => {
  it('loadIdentity never creates a file', async () => {
    const file = join(dir, 'missing', 'peer.key')
    const error = await loadIdentity(file).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(KeyFileAccessError)
    expect((error as KeyFileAccessError).code).toBe('ERR_KEY_FILE_ACCESS')
    expect(await readdir(dir)).toEqual([])
  })

  it('saveIdentity writes a loadable 0600 file and never overwrites one', async () => {
    const file = join(dir, 'saved', 'peer.key')
    const identity = createIdentity()
    await saveIdentity(file, identity)
    expect((await loadIdentity(file)).peerId).toBe(identity.peerId)
    if (posix) expect(await mode(file)).toBe(0o600)
    await expect(saveIdentity(file, createIdentity())).rejects.toThrow(/never overwrites/)
    expect((await loadIdentity(file)).peerId).toBe(identity.peerId)
  })
})
