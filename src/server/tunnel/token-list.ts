/**
 * The device tokens a tunnel server accepts, compared in constant time: every
 * configured token is hashed once with SHA-256, a presented token is hashed and
 * compared with each of them by `timingSafeEqual`, without stopping at a match, so the
 * time taken reveals neither which token matched nor how much of one did.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'

/** The accepted device tokens (see the module notes). */
export class TokenList {
  readonly #hashes: Buffer[]

  constructor(tokens: readonly string[]) {
    this.#hashes = tokens.map(hashToken)
  }

  /** Number of tokens. */
  get size(): number {
    return this.#hashes.length
  }

  /** True when `token` is one of the list (constant time in the token's content). */
  matches(token: string): boolean {
    const presented = hashToken(token)
    let found = false
    for (const hash of this.#hashes) found = timingSafeEqual(hash, presented) || found
    return found
  }
}

/** SHA-256 of a token's UTF-8 bytes. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}
