/**
 * Minimal typings for the parts of `sodium-universal` (libsodium bindings through
 * `sodium-native`) that peerlink uses. Outputs are written into caller-allocated
 * buffers, as in libsodium's C API; every function throws a `TypeError`/`RangeError`
 * when a buffer has the wrong length.
 *
 * @internal
 */
declare module 'sodium-universal' {
  /** Length of an Ed25519 public key (32). */
  export const crypto_sign_PUBLICKEYBYTES: number
  /** Length of an Ed25519 secret key in sodium format, seed || public key (64). */
  export const crypto_sign_SECRETKEYBYTES: number
  /** Length of an Ed25519 seed (32). */
  export const crypto_sign_SEEDBYTES: number
  /** Length of a detached Ed25519 signature (64). */
  export const crypto_sign_BYTES: number

  /** Fills `pk` (32 bytes) and `sk` (64 bytes) with a fresh random Ed25519 key pair. */
  export function crypto_sign_keypair(pk: Uint8Array, sk: Uint8Array): void
  /** Derives the Ed25519 key pair of a 32-byte `seed` into `pk` and `sk`. */
  export function crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
  /** Writes the 64-byte detached signature of `message` under `sk` into `sig`. */
  export function crypto_sign_detached(sig: Uint8Array, message: Uint8Array, sk: Uint8Array): void
  /** Returns true when `sig` is a valid signature of `message` under `pk`. */
  export function crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean
  /** Fills `buf` with cryptographically secure random bytes. */
  export function randombytes_buf(buf: Uint8Array): void
  /** Overwrites `buf` with zeros in a way the compiler cannot optimise away. */
  export function sodium_memzero(buf: Uint8Array): void
}
