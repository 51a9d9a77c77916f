/**
 * One direction of a secure connection's records: its key, its record counter (the
 * nonce) and its cipher, rekeyed after every {@link rekeyPolicy} interval of records
 * (record-rekey.ts). Each side holds one for sending and one for receiving.
 *
 * @module
 */
import { createRecordCipher, type RecordCipher } from './record-cipher.js'
import { rekey, rekeyPolicy } from './record-rekey.js'

/**
 * @internal (used by `SecureConnection`)
 * @example
 * ```ts
 * const send = new RecordDirection(noise.tx)
 * send.seal([chunk], frame, 3)   // record 0; record 1 next
 * ```
 */
export class RecordDirection {
  #key: Buffer
  #cipher: RecordCipher
  #counter = 0

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key)
    this.#cipher = createRecordCipher(this.#key)
  }

  /** Seals the next record (see {@link RecordCipher.seal}). */
  seal(parts: readonly Uint8Array[], out: Uint8Array, offset: number): void {
    this.#cipher.seal(this.#counter, parts, out, offset)
    this.#advance()
  }

  /** Opens the next record (see {@link RecordCipher.open}); false when it does not authenticate. */
  open(ciphertext: Uint8Array, out: Uint8Array): boolean {
    const opened = this.#cipher.open(this.#counter, ciphertext, out)
    this.#advance()
    return opened
  }

  /** Zeroes the key and releases the cipher. */
  destroy(): void {
    this.#cipher.destroy()
    this.#key.fill(0)
  }

  #advance(): void {
    this.#counter++
    if (this.#counter % rekeyPolicy.interval !== 0) return
    this.#cipher.destroy()
    const next = rekey(this.#key)
    this.#key.fill(0)
    this.#key = next
    this.#cipher = createRecordCipher(next)
  }
}
