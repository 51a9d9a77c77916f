/**
 * Minimal type declarations for `@hyperswarm/secret-stream` (an untyped CommonJS package),
 * covering only what peerlink uses. Source of truth: `node_modules/@hyperswarm/secret-stream/index.js`
 * (v6.9). It runs a Noise XX handshake with Ed25519 static keys over a raw stream, then
 * libsodium secretstream encryption; it is a streamx Duplex.
 *
 * These types are internal: peerlink's public API never exposes secret-stream objects.
 */
declare module '@hyperswarm/secret-stream' {
  import { EventEmitter } from 'node:events'

  namespace NoiseSecretStream {
    /** Sodium-format Ed25519 key pair: `secretKey` is seed (32) ‖ public key (32). */
    interface KeyPair {
      publicKey: Buffer
      secretKey: Buffer
    }

    interface NoiseSecretStreamOptions {
      keyPair?: KeyPair
      /** Only used by patterns that pre-share the responder key (not XX). */
      remotePublicKey?: Buffer
      pattern?: string
      keepAlive?: number
      autoStart?: boolean
      enableSend?: boolean
    }
  }

  /** The encrypted stream; emits `'handshake'` right after the Noise handshake completes. */
  class NoiseSecretStream extends EventEmitter {
    constructor(isInitiator: boolean, rawStream: unknown, opts?: NoiseSecretStream.NoiseSecretStreamOptions)
    static keyPair(seed?: Buffer): NoiseSecretStream.KeyPair
    readonly isInitiator: boolean
    readonly rawStream: unknown
    readonly publicKey: Buffer | null
    readonly remotePublicKey: Buffer | null
    readonly handshakeHash: Buffer | null
    readonly connected: boolean
    readonly destroyed: boolean
    readonly destroying: boolean
    readonly opened: Promise<boolean>
    rawBytesWritten: number
    rawBytesRead: number
    setTimeout(ms: number): void
    setKeepAlive(ms: number): void
    write(data: Uint8Array): boolean
    end(data?: Uint8Array): this
    pause(): this
    resume(): this
    destroy(err?: Error | null): void
    flush(): Promise<boolean>
  }

  export = NoiseSecretStream
}
