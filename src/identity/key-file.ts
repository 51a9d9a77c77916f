/**
 * Key files: an identity stored on disk, readable by its owner only.
 *
 * ## Format
 *
 * A key file is a small UTF-8 JSON document (a trailing newline is fine, unknown
 * extra fields are ignored so later versions can add some):
 *
 * ```json
 * {
 *   "type": "peerlink-ed25519",
 *   "version": 1,
 *   "peerId": "12D3KooW…",
 *   "secretKey": "<base64url, no padding, of the 32-byte Ed25519 seed>"
 * }
 * ```
 *
 * `secretKey` holds the seed (RFC 8032's "private key"), 43 base64url characters; the
 * 64-byte sodium secret key and the public key are derived from it. `peerId` is there
 * for people (`cat peer.key` tells whose key it is) and as a check: a file whose
 * `peerId` does not match its seed is refused.
 *
 * ## Safety
 *
 * - A new file is written to a temporary file (mode 0600) in the same directory,
 *   flushed, then published with `link(2)`, which fails if the target exists: two
 *   processes creating the same key file at once never clobber each other, and the
 *   loser loads the winner's key. Readers never see a half-written file. (Where the
 *   file system has no hard links, an existence check plus `rename(2)` is used.)
 * - Missing parent directories are created with mode 0700.
 * - On POSIX systems a file that group or others may read or write is refused with
 *   {@link KeyFilePermissionsError}, whose message gives the `chmod 600 FILE` fix.
 * - Error messages never quote the file's contents.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { access, link, mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import {
  InvalidArgumentError,
  KeyFileAccessError,
  KeyFileInvalidError,
  KeyFilePermissionsError,
  PeerlinkError,
  throwIfAborted,
} from '../errors.js'
import { type Identity, createIdentity, identityFromSeed } from './identity.js'
import { SEED_BYTES, seedFromSecretKey } from './key-pair.js'

/**
 * The `type` field of every peerlink key file.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises'
 * import { KEY_FILE_TYPE } from 'peerlink'
 *
 * const { type } = JSON.parse(await readFile('./peer.key', 'utf8'))
 * console.log(type === KEY_FILE_TYPE)   // true for a peerlink key file: 'peerlink-ed25519'
 * ```
 */
export const KEY_FILE_TYPE = 'peerlink-ed25519'
/**
 * The key file format version this code writes and reads.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises'
 * import { KEY_FILE_VERSION } from 'peerlink'
 *
 * const { version } = JSON.parse(await readFile('./peer.key', 'utf8'))
 * if (version !== KEY_FILE_VERSION) console.warn(`key file version ${version}, this peerlink reads ${KEY_FILE_VERSION}`)
 * ```
 */
export const KEY_FILE_VERSION = 1

/** Largest key file accepted (a valid one is about 150 bytes). */
const MAX_KEY_FILE_BYTES = 4096
const SEED_PATTERN = /^[A-Za-z0-9_-]{43}$/
const IS_WINDOWS = process.platform === 'win32'
/** Group/other read and write bits. */
const UNSAFE_MODE_BITS = 0o066

/** Options of the key file functions. */
export interface KeyFileOptions {
  /**
   * Cancels the operation between file-system steps; it then rejects with `AbortError`.
   * @default undefined (not cancellable)
   */
  signal?: AbortSignal
}

/** What {@link loadOrCreateIdentityFile} found or made. */
export interface KeyFileResult {
  /** The identity stored in the file. */
  readonly identity: Identity
  /** The absolute path of the key file. */
  readonly path: string
  /** True when this call created the file. */
  readonly created: boolean
}

/**
 * Loads the identity stored at `path`, creating a new identity and its key file
 * (mode 0600, parent directories 0700) when the file does not exist.
 *
 * @throws {@link KeyFilePermissionsError} when the file is readable or writable by group/others (POSIX).
 * @throws {@link KeyFileInvalidError} when the file is not a valid peerlink key file.
 * @throws {@link KeyFileAccessError} when the file cannot be read or created.
 *
 * @example
 * ```ts
 * import { loadOrCreateIdentity } from 'peerlink'
 *
 * const identity = await loadOrCreateIdentity('./peer.key')
 * console.log(identity.peerId) // 12D3KooW…
 * ```
 */
export async function loadOrCreateIdentity(path: string, options: KeyFileOptions = {}): Promise<Identity> {
  return (await loadOrCreateIdentityFile(path, options)).identity
}

/**
 * Like {@link loadOrCreateIdentity}, but also tells whether the file was created and
 * where it is.
 *
 * @example
 * ```ts
 * import { loadOrCreateIdentityFile } from 'peerlink'
 *
 * const { identity, path, created } = await loadOrCreateIdentityFile('./peer.key')
 * if (created) console.log(`new identity ${identity.peerId} saved to ${path}`)
 * ```
 */
export async function loadOrCreateIdentityFile(path: string, options: KeyFileOptions = {}): Promise<KeyFileResult> {
  const file = checkPath(path)
  throwIfAborted(options.signal)
  const existing = await readKeyFile(file)
  if (existing !== undefined) return { identity: existing, path: file, created: false }
  throwIfAborted(options.signal)
  const identity = createIdentity()
  if (await publishKeyFile(file, encodeKeyFile(identity))) return { identity, path: file, created: true }
  // Another process created the file between our read and our publish: use its key.
  throwIfAborted(options.signal)
  const winner = await readKeyFile(file)
  if (winner === undefined) throw new KeyFileAccessError(file, 'something exists at this path but cannot be opened (a dangling symbolic link?)')
  return { identity: winner, path: file, created: false }
}

/**
 * Loads the identity stored at `path`; never creates anything.
 *
 * @throws {@link KeyFileAccessError} when the file does not exist or cannot be read.
 * @throws {@link KeyFilePermissionsError} when the file is readable or writable by group/others (POSIX).
 * @throws {@link KeyFileInvalidError} when the file is not a valid peerlink key file.
 *
 * @example
 * ```ts
 * import { loadIdentity } from 'peerlink'
 *
 * // Unlike loadOrCreateIdentity, a missing file is an error (KeyFileAccessError).
 * const identity = await loadIdentity('/etc/myapp/peer.key', { signal: AbortSignal.timeout(5_000) })
 * ```
 */
export async function loadIdentity(path: string, options: KeyFileOptions = {}): Promise<Identity> {
  const file = checkPath(path)
  throwIfAborted(options.signal)
  const identity = await readKeyFile(file)
  if (identity === undefined) {
    throw new KeyFileAccessError(file, 'no such file (create one with `peerlink id --key FILE`)')
  }
  return identity
}

/**
 * Writes `identity` to a new key file at `path` (mode 0600, parent directories 0700).
 * Never overwrites: fails when the file already exists.
 *
 * @throws {@link KeyFileAccessError} when the file exists or cannot be created.
 *
 * @example
 * ```ts
 * import { createIdentity, saveIdentity } from 'peerlink'
 *
 * const identity = createIdentity()
 * await saveIdentity('./keys/peer.key', identity)   // mode 0600; rejects if the file exists
 * ```
 */
export async function saveIdentity(path: string, identity: Identity, options: KeyFileOptions = {}): Promise<void> {
  const file = checkPath(path)
  const content = encodeKeyFile(identity)
  throwIfAborted(options.signal)
  if (!(await publishKeyFile(file, content))) {
    throw new KeyFileAccessError(file, 'the file already exists; peerlink never overwrites a key file')
  }
}

/**
 * Returns the key file text (format above) of `identity`.
 *
 * @example
 * ```ts
 * import { createIdentity, decodeKeyFile, encodeKeyFile } from 'peerlink'
 *
 * const text = encodeKeyFile(createIdentity())   // '{ "type": "peerlink-ed25519", … }\n'
 * const identity = decodeKeyFile(text)           // the same identity back
 * ```
 */
export function encodeKeyFile(identity: Identity): string {
  const seed = seedFromSecretKey(identity.keyPair.secretKey)
  const document = {
    type: KEY_FILE_TYPE,
    version: KEY_FILE_VERSION,
    peerId: identity.peerId,
    secretKey: Buffer.from(seed).toString('base64url'),
  }
  return `${JSON.stringify(document, null, 2)}\n`
}

/**
 * Parses key file text (format above) and checks that its PeerId matches its key.
 *
 * @param path - the file name to put in error messages.
 * @throws {@link KeyFileInvalidError} when `text` is not a valid key file.
 *
 * @example
 * ```ts
 * import { decodeKeyFile } from 'peerlink'
 *
 * // e.g. a key file handed over in an environment variable instead of a file
 * const identity = decodeKeyFile(process.env.PEER_KEY ?? '', '$PEER_KEY')
 * ```
 */
export function decodeKeyFile(text: string, path = '(key file)'): Identity {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    // No `cause`: JSON.parse's message quotes the input, which holds the secret key.
    throw new KeyFileInvalidError(path, 'not a peerlink key file (not valid JSON)')
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new KeyFileInvalidError(path, 'not a peerlink key file (expected a JSON object)')
  }
  const fields = document as Record<string, unknown>
  if (fields.type !== KEY_FILE_TYPE) {
    throw new KeyFileInvalidError(path, `not a peerlink key file ("type" must be "${KEY_FILE_TYPE}")`)
  }
  if (fields.version !== KEY_FILE_VERSION) {
    throw new KeyFileInvalidError(
      path,
      `unsupported key file version ${shortJson(fields.version)} (this peerlink reads version ${KEY_FILE_VERSION})`,
    )
  }
  const secret = fields.secretKey
  const seed = typeof secret === 'string' && SEED_PATTERN.test(secret) ? Buffer.from(secret, 'base64url') : undefined
  if (seed === undefined || seed.byteLength !== SEED_BYTES || seed.toString('base64url') !== secret) {
    throw new KeyFileInvalidError(path, '"secretKey" must be the base64url encoding (43 characters) of a 32-byte seed')
  }
  const identity = identityFromSeed(new Uint8Array(seed))
  seed.fill(0)
  if (typeof fields.peerId !== 'string') throw new KeyFileInvalidError(path, '"peerId" is missing')
  if (fields.peerId !== identity.peerId) {
    throw new KeyFileInvalidError(
      path,
      `"peerId" ${shortJson(fields.peerId)} does not match the key, which is ${identity.peerId} (the file was edited or corrupted)`,
    )
  }
  return identity
}

function checkPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new InvalidArgumentError('key file path must be a non-empty string')
  }
  return resolve(path)
}

/** Reads and validates a key file; `undefined` when it does not exist. */
async function readKeyFile(file: string): Promise<Identity | undefined> {
  // O_NONBLOCK: opening a FIFO planted at the path must not hang (no effect on regular files).
  const flags = fsConstants.O_RDONLY | (IS_WINDOWS ? 0 : fsConstants.O_NONBLOCK)
  let handle
  try {
    handle = await open(file, flags)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw accessError(file, 'cannot open', err)
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) throw new KeyFileInvalidError(file, 'not a regular file')
    // Checked on the open descriptor, so the file cannot be swapped between check and read.
    if (!IS_WINDOWS && (stats.mode & UNSAFE_MODE_BITS) !== 0) throw new KeyFilePermissionsError(file, stats.mode)
    if (stats.size > MAX_KEY_FILE_BYTES) throw new KeyFileInvalidError(file, 'not a peerlink key file (too large)')
    const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.byteLength - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > MAX_KEY_FILE_BYTES) throw new KeyFileInvalidError(file, 'not a peerlink key file (too large)')
    }
    const text = buffer.toString('utf8', 0, length)
    buffer.fill(0)
    return decodeKeyFile(text, file)
  } catch (err) {
    if (err instanceof PeerlinkError) throw err
    throw accessError(file, 'cannot read', err)
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/**
 * Atomically publishes `content` at `file` unless a file already exists there.
 *
 * @returns true when this call created the file, false when one already existed.
 */
async function publishKeyFile(file: string, content: string): Promise<boolean> {
  const dir = dirname(file)
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw accessError(file, `cannot create directory ${dir}`, err)
  }
  const temp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, 'wx', 0o600)
    try {
      // The umask may have removed bits from 0600 but never adds any; make it exact.
      if (!IS_WINDOWS) await handle.chmod(0o600)
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, file) // fails with EEXIST instead of replacing: no clobbering
    } catch (err) {
      const code = errnoCode(err)
      if (code === 'EEXIST') return false
      if (!isNoHardLinks(code)) throw err
      // File systems without hard links (FAT, some network shares): check, then rename.
      // A concurrent creator can slip in between the two; that is the best this can do there.
      if (await exists(file)) return false
      await rename(temp, file)
    }
  } catch (err) {
    throw accessError(file, 'cannot create', err)
  } finally {
    await unlink(temp).catch(() => undefined)
  }
  await syncDirectory(dir)
  return true
}

function isNoHardLinks(code: string | undefined): boolean {
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EMLINK'
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

/** Makes the new directory entry durable (best effort; not possible on every platform). */
async function syncDirectory(dir: string): Promise<void> {
  if (IS_WINDOWS) return
  try {
    const handle = await open(dir, fsConstants.O_RDONLY)
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // Durability of the directory entry is a nicety; the file itself was fsynced.
  }
}

function accessError(file: string, what: string, err: unknown): KeyFileAccessError {
  const code = errnoCode(err)
  const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code ?? (err as Error)?.message ?? String(err)
  return new KeyFileAccessError(file, `${what}: ${reason}`, { cause: err })
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}
