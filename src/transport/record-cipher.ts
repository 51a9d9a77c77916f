/**
 * The AEAD of the secure connection's records: AES-256-GCM with a 96-bit nonce made of
 * four zero bytes and a 64-bit big-endian message counter (the nonce rule of Noise's
 * `AESGCM` cipher functions, Noise §12.4). One key per direction, each used with
 * counters 0, 1, 2, … exactly once.
 *
 * Why AES-256-GCM and not secret-stream's XChaCha20-Poly1305: with AES-NI and
 * carry-less multiplication, which every x86-64 and ARMv8 server has, AES-GCM encrypts
 * several times faster, and the cipher is most of the CPU a connection spends per byte
 * above udx itself (docs/benchmarks.md, `connect`).
 *
 * Two backends run the same OpenSSL code: the optional native addon
 * (`native/record_cipher.c`, built by `npm install` when a C compiler is present) keeps
 * one key schedule per direction and encrypts straight from the caller's buffers into
 * its output, while `node:crypto` creates a cipher object and output buffers per record,
 * which costs about half the throughput on 64 KiB records. {@link createRecordCipher}
 * uses the native one when it is built and not disabled with `PEERLINK_NATIVE_CIPHER=0`
 * ({@link recordCipherBackend} says which); both produce the same bytes.
 *
 * @module
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { InvalidArgumentError } from '../errors.js'
import { loadNativeAddon } from '../native-addon.js'

/** Bytes of the authentication tag after every record's ciphertext. */
export const RECORD_TAG_BYTES = 16
/** Bytes of a record key. */
export const RECORD_KEY_BYTES = 32
/** Counters beyond this are refused (2^53 − 1: far beyond any connection's life). */
export const MAX_RECORD_COUNTER = Number.MAX_SAFE_INTEGER

/** Seals or opens the records of one direction. */
export interface RecordCipher {
  /**
   * Encrypts the concatenation of `parts` with nonce `counter` and writes the ciphertext
   * and then the 16-byte tag into `out` from `offset` (`out` needs the parts' total
   * length + 16 bytes there). A part may lie in `out` exactly where its ciphertext goes
   * (in place) but must not otherwise overlap it (the native backend throws a `RangeError`).
   */
  seal(counter: number, parts: readonly Uint8Array[], out: Uint8Array, offset: number): void
  /**
   * Decrypts `ciphertext` (its last 16 bytes are the tag) with nonce `counter` into
   * `out` (from 0; `ciphertext.length − 16` bytes). Returns false, and leaves `out`
   * unspecified, when the tag does not verify. `out` may be `ciphertext` itself (in
   * place) but must not otherwise overlap it.
   */
  open(counter: number, ciphertext: Uint8Array, out: Uint8Array): boolean
  /** Zeroes the key; the cipher may not be used afterwards. */
  destroy(): void
}

/** The 12-byte nonce of `counter`: 4 zero bytes, then the counter as a 64-bit big-endian number. */
export function recordNonce(counter: number, nonce: Buffer = Buffer.alloc(12)): Buffer {
  checkCounter(counter)
  nonce.writeUInt32BE(0, 0)
  nonce.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4)
  nonce.writeUInt32BE(counter >>> 0, 8)
  return nonce
}

function checkCounter(counter: number): void {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new InvalidArgumentError(`record counter must be a safe non-negative integer, got ${String(counter)}`)
}

/** {@link RecordCipher} on `node:crypto` (OpenSSL): a cipher object per record. */
class NodeRecordCipher implements RecordCipher {
  readonly #key: Buffer
  readonly #nonce = Buffer.alloc(12)

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key)
  }

  seal(counter: number, parts: readonly Uint8Array[], out: Uint8Array, offset: number): void {
    const cipher = createCipheriv('aes-256-gcm', this.#key, recordNonce(counter, this.#nonce))
    for (const part of parts) {
      const encrypted = cipher.update(part)
      out.set(encrypted, offset)
      offset += encrypted.length
    }
    const rest = cipher.final()
    out.set(rest, offset)
    out.set(cipher.getAuthTag(), offset + rest.length)
  }

  open(counter: number, ciphertext: Uint8Array, out: Uint8Array): boolean {
    if (ciphertext.length < RECORD_TAG_BYTES) return false
    const end = ciphertext.length - RECORD_TAG_BYTES
    const decipher = createDecipheriv('aes-256-gcm', this.#key, recordNonce(counter, this.#nonce))
    decipher.setAuthTag(ciphertext.subarray(end))
    const plain = decipher.update(ciphertext.subarray(0, end))
    try {
      decipher.final()
    } catch {
      return false
    }
    out.set(plain, 0)
    return true
  }

  destroy(): void {
    this.#key.fill(0)
  }
}

/**
 * An opaque handle of the native addon: one `EVP_CIPHER_CTX` keyed for one direction.
 *
 * @internal
 */
export type NativeCipherHandle = object & { readonly __nativeRecordCipher: unique symbol }

/**
 * The functions of `peerlink_record_cipher.node` (`native/record_cipher.c`). Counters
 * come as two u32 halves (high, low) of the 64-bit counter. Bad arguments throw a
 * `TypeError` (code `ERR_INVALID_ARG_TYPE`) or `RangeError` (`ERR_OUT_OF_RANGE`) before
 * anything is written (for seals of up to 32 parts); a freed handle throws an `Error`
 * with code `ERR_RECORD_CIPHER_FREED`.
 *
 * @internal
 */
export interface NativeRecordCipherAddon {
  /** A context for `key` (32 bytes) that only seals (`encrypt`) or only opens. Freed at garbage collection at the latest. */
  create(key: Uint8Array, encrypt: boolean): NativeCipherHandle
  /** Frees the context (the key schedule is cleansed) now; idempotent. */
  free(handle: NativeCipherHandle): void
  /**
   * Encrypts the parts into `out` at `offset`, then writes the tag after them. A part
   * may be in place (exactly where its ciphertext goes) but must not otherwise overlap
   * its ciphertext (`RangeError`).
   */
  seal(handle: NativeCipherHandle, counterHigh: number, counterLow: number, parts: readonly Uint8Array[] | Uint8Array, out: Uint8Array, offset: number): void
  /**
   * Decrypts `ciphertext` (tag last) into `out` from 0 (in place allowed, other overlap
   * refused); false, with the plaintext bytes of `out` zeroed, when the tag does not
   * verify; false when `ciphertext` is shorter than the tag.
   */
  open(handle: NativeCipherHandle, counterHigh: number, counterLow: number, ciphertext: Uint8Array, out: Uint8Array): boolean
}

/** Which implementation {@link createRecordCipher} uses. */
export type RecordCipherBackend = 'native' | 'node:crypto'

/**
 * The native addon, or undefined when it is not built or disabled.
 *
 * @internal
 */
export const nativeRecordCipherAddon: NativeRecordCipherAddon | undefined = loadNativeAddon<NativeRecordCipherAddon>('peerlink_record_cipher', 'PEERLINK_NATIVE_CIPHER')

/**
 * The backend of {@link createRecordCipher} in this process: `'native'` when
 * `native/record_cipher.c` was built (at `npm install`) and `PEERLINK_NATIVE_CIPHER=0`
 * is not set, else `'node:crypto'`. Both give byte-identical records; the native one
 * about twice the throughput.
 */
export const recordCipherBackend: RecordCipherBackend = nativeRecordCipherAddon === undefined ? 'node:crypto' : 'native'

/**
 * {@link RecordCipher} on the native addon: one OpenSSL context per direction, keyed
 * once; records go from the caller's parts straight into `out`. After
 * {@link RecordCipher.destroy} every call throws (`ERR_RECORD_CIPHER_FREED`). A part may
 * be encrypted in place but must not otherwise overlap its ciphertext in `out` (nor the
 * plaintext of `open` its ciphertext): that throws a `RangeError`.
 */
class NativeRecordCipher implements RecordCipher {
  readonly #addon: NativeRecordCipherAddon
  readonly #sealer: NativeCipherHandle
  readonly #opener: NativeCipherHandle

  constructor(addon: NativeRecordCipherAddon, key: Uint8Array) {
    this.#addon = addon
    // Both contexts now (two key schedules, microseconds) so that no copy of the key stays in JavaScript.
    this.#sealer = addon.create(key, true)
    this.#opener = addon.create(key, false)
  }

  seal(counter: number, parts: readonly Uint8Array[], out: Uint8Array, offset: number): void {
    checkCounter(counter)
    this.#addon.seal(this.#sealer, Math.floor(counter / 0x1_0000_0000), counter >>> 0, parts, out, offset)
  }

  open(counter: number, ciphertext: Uint8Array, out: Uint8Array): boolean {
    if (ciphertext.length < RECORD_TAG_BYTES) return false
    checkCounter(counter)
    return this.#addon.open(this.#opener, Math.floor(counter / 0x1_0000_0000), counter >>> 0, ciphertext, out)
  }

  destroy(): void {
    this.#addon.free(this.#sealer)
    this.#addon.free(this.#opener)
  }
}

/**
 * A {@link RecordCipher} for `key` (32 bytes), on {@link recordCipherBackend}.
 *
 * @example
 * ```ts
 * const key = randomBytes(32)
 * const message = Buffer.from('hello')
 * const sealed = Buffer.alloc(message.length + RECORD_TAG_BYTES)
 * createRecordCipher(key).seal(0, [message], sealed, 0)
 * const opened = Buffer.alloc(message.length)
 * createRecordCipher(key).open(0, sealed, opened) // true
 * ```
 */
export function createRecordCipher(key: Uint8Array): RecordCipher {
  return createRecordCipherWith(recordCipherBackend, key)
}

/**
 * A {@link RecordCipher} for `key` on the given backend, for tests and benchmarks that
 * compare the two; throws when `'native'` is asked for and not loaded.
 *
 * @internal
 */
export function createRecordCipherWith(backend: RecordCipherBackend, key: Uint8Array): RecordCipher {
  if (!(key instanceof Uint8Array) || key.length !== RECORD_KEY_BYTES) throw new InvalidArgumentError(`a record key must be ${RECORD_KEY_BYTES} bytes`)
  if (backend === 'node:crypto') return new NodeRecordCipher(key)
  if (nativeRecordCipherAddon === undefined) throw new InvalidArgumentError('the native record cipher (native/record_cipher.c) is not loaded')
  return new NativeRecordCipher(nativeRecordCipherAddon, key)
}
