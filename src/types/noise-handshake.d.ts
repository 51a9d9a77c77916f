/**
 * Minimal type declarations for `noise-handshake` and `noise-curve-ed` (untyped CommonJS
 * packages), covering only what peerlink uses. Source of truth:
 * `node_modules/noise-handshake/noise.js` (v4.2) and `node_modules/noise-curve-ed/index.js`.
 * These types are internal: peerlink's public API never exposes these objects.
 */
declare module 'noise-handshake' {
  /** A Noise handshake state (`Noise_<pattern>_<curve>_ChaChaPoly_BLAKE2b`). */
  class NoiseState {
    constructor(pattern: 'XX' | 'IK' | 'NN' | 'XK', initiator: boolean, staticKeyPair: { publicKey: Buffer; secretKey: Buffer }, options: { curve: object })
    /** Mixes in the prologue (and a pre-shared remote static key, for IK/XK). */
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void
    /** Our next handshake message, with an optional payload. Throws on misuse. */
    send(payload?: Uint8Array): Buffer
    /** Reads the remote's next handshake message; returns its payload. Throws on a corrupt message. */
    recv(message: Uint8Array): Buffer
    /** True once the last message is sent or received. */
    readonly complete: boolean
    /** Our sending key (32 bytes) once complete. */
    readonly tx: Uint8Array | null
    /** Our receiving key (32 bytes) once complete. */
    readonly rx: Uint8Array | null
    /** The handshake hash (64 bytes) once complete; identical on both sides. */
    readonly hash: Uint8Array | null
    /** The remote's static public key, once received. */
    readonly rs: Uint8Array | null
  }
  export = NoiseState
}

declare module 'noise-curve-ed' {
  /** Diffie–Hellman on Ed25519 keys (sodium format), as secret-stream uses. */
  const curve: { readonly PKLEN: number; readonly ALG: string }
  export = curve
}
