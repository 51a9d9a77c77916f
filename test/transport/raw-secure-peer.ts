/**
 * A test-only "raw peer" that speaks the secure connection's wire protocol itself
 * (docs/protocol.md, "Secure connection"), independently of src/transport: built only
 * from udx-native, noise-handshake, noise-curve-ed and node:crypto's AES-256-GCM, so
 * that interop tests check the wire format rather than the implementation against itself.
 *
 * - Every message is a frame: a 3-byte little-endian length, then that many bytes.
 * - Frames 1–3: Noise XX (Ed25519 DH), prologue `peerlink/secure-connection/v1`, empty
 *   payloads. The initiator sends 1 and 3, the responder 2. With messages 1 and 2
 *   exchanged out of band (`prepared`), the stream carries only frame 3.
 * - Then records: AES-256-GCM ciphertext ‖ 16-byte tag under the sender's key (Noise
 *   `tx`), nonce = 4 zero bytes ‖ 64-bit big-endian counter, counters 0, 1, 2, … per
 *   direction. The responder's first record is empty (its confirmation). After every
 *   2^20 records a direction's key is replaced by Noise's REKEY of it.
 *
 * The peer writes application data as soon as its own handshake completes (`eager`),
 * records everything it receives, and misbehaves on request.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto'
import UDX from 'udx-native'
import NoiseState from 'noise-handshake'
import curve from 'noise-curve-ed'

/** The prologue every peerlink secure connection mixes into its Noise hash. */
export const RAW_PROLOGUE = Buffer.from('peerlink/secure-connection/v1')
/** Bytes of the AES-GCM tag at the end of every record. */
export const RAW_TAG_BYTES = 16

/** An Ed25519 key pair in sodium format (secretKey = seed ‖ publicKey). */
export interface RawKeyPair {
  publicKey: Buffer
  secretKey: Buffer
}

/** A fresh Ed25519 key pair, from noise-curve-ed (sodium). */
export function rawKeyPair(): RawKeyPair {
  return (curve as unknown as { generateKeyPair(): RawKeyPair }).generateKeyPair()
}

/** The 3-byte little-endian length prefix of a `length`-byte frame. */
export function frameHeader(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > 0xffffff) throw new RangeError(`bad frame length ${length}`)
  return Buffer.from([length & 0xff, (length >>> 8) & 0xff, length >>> 16])
}

/** `body` with its length prefix. */
export function frame(body: Uint8Array): Buffer {
  return Buffer.concat([frameHeader(body.length), body])
}

/** The 12-byte record nonce: 4 zero bytes, then `counter` as a 64-bit big-endian number. */
export function rawNonce(counter: number): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64BE(BigInt(counter), 4)
  return nonce
}

/** AES-256-GCM: ciphertext ‖ tag of `plain` under `key` with the nonce of `counter`. */
export function rawSeal(key: Uint8Array, counter: number, plain: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, rawNonce(counter))
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()])
}

/** The plaintext of a sealed record, or null when it is too short or fails authentication. */
export function rawOpen(key: Uint8Array, counter: number, sealed: Uint8Array): Buffer | null {
  if (sealed.length < RAW_TAG_BYTES) return null
  const end = sealed.length - RAW_TAG_BYTES
  const decipher = createDecipheriv('aes-256-gcm', key, rawNonce(counter))
  decipher.setAuthTag(sealed.subarray(end))
  const plain = decipher.update(sealed.subarray(0, end))
  try {
    decipher.final()
  } catch {
    return null
  }
  return plain
}

/**
 * Noise REKEY(k) with AES-GCM (Noise §11.3, §12.4): the first 32 bytes of the encryption of
 * 32 zero bytes under `key` with the nonce 2^64 − 1.
 */
export function rawRekey(key: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12)
  nonce.writeBigUInt64BE(2n ** 64n - 1n, 4)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  return cipher.update(Buffer.alloc(32)).subarray(0, 32)
}

export interface RawSecurePeerOptions {
  /** Whether this peer is the Noise initiator. */
  isInitiator: boolean
  /** Our side's UDP port on 127.0.0.1. */
  remotePort: number
  /** Our side's udx stream id. */
  remoteId: number
  /** This peer's udx stream id. @default 0x1234567 */
  id?: number
  /** This peer's identity. @default a fresh key pair */
  keyPair?: RawKeyPair
  /**
   * When given, the remote's static key must equal it; otherwise the stream is reset
   * before anything more is written. @default undefined (any key is accepted)
   */
  expectedRemotePublicKey?: Uint8Array
  /** Written as one record the moment our own handshake completes. @default undefined */
  eager?: Uint8Array | string
  /**
   * As responder, send the empty confirmation record when the handshake completes.
   * @default true
   */
  confirm?: boolean
  /**
   * Send `body` as the frame of handshake message `message` (1 or 3 for an initiator,
   * 2 for a responder) instead of the real Noise message; the handshake then stops.
   * With `unframed`, `body` is written as it is (no length prefix is added).
   * @default undefined
   */
  replaceHandshakeMessage?: { message: 1 | 2 | 3; body: Uint8Array; unframed?: boolean }
  /**
   * Each direction's key is replaced by {@link rawRekey} of it after every this many
   * records (the counters go on). @default 2 ** 20 (peerlink's REKEY_INTERVAL)
   */
  rekeyInterval?: number
  /**
   * Called the moment our own handshake completes, after the confirmation and `eager`
   * record (so what it sends travels right behind them). @default undefined
   */
  afterHandshake?: (peer: RawSecurePeer) => void
  /**
   * A Noise state that has already exchanged messages 1 and 2 out of band (an initiator's
   * that has read message 2, a responder's that has sent it; see {@link rawNoiseState}):
   * the stream then carries only message 3 — sent at once by an initiator, awaited by a
   * responder — and the records. `keyPair` must be the one the state was made with.
   * @default undefined (the whole handshake runs on the stream)
   */
  prepared?: NoiseState
}

/** A fresh Noise XX state with peerlink's prologue, for {@link RawSecurePeerOptions.prepared}. */
export function rawNoiseState(isInitiator: boolean, keyPair: RawKeyPair): NoiseState {
  const noise = new NoiseState('XX', isInitiator, keyPair, { curve })
  noise.initialise(RAW_PROLOGUE)
  return noise
}

/** What {@link createRawSecurePeer} returns. */
export interface RawSecurePeer {
  /** This peer's UDP port on 127.0.0.1. */
  readonly port: number
  /** This peer's udx stream id. */
  readonly id: number
  readonly keyPair: RawKeyPair
  readonly stream: UDX.UDXStream
  /** Resolves true when our own handshake completes, false when the stream closes first. */
  readonly ready: Promise<boolean>
  /** Resolves when the remote ends its side cleanly (not inside a frame). */
  readonly ended: Promise<void>
  /** Resolves when the udx stream has closed. */
  readonly closed: Promise<void>
  /** Handshake frames received (copies). */
  readonly handshakeFrames: Buffer[]
  /** Plaintexts of the records received, in order (the empty ones too). */
  readonly records: Buffer[]
  /** Errors of the udx stream and of our own checks, in order. */
  readonly errors: Error[]
  /** The Noise handshake hash, once our handshake completes. */
  handshakeHash(): Buffer | null
  /** The remote's static key, once received. */
  remotePublicKey(): Buffer | null
  /** The application bytes received so far (the records' plaintexts concatenated). */
  received(): Buffer
  /** Codes of the errors seen (for example `ECONNRESET`). */
  errorCodes(): string[]
  /**
   * Writes bytes to the stream as they are (no framing). Writes made in one synchronous
   * run are sent together, as one udx write, at the next microtask.
   */
  writeRaw(bytes: Uint8Array): boolean
  /** Seals `plain` as the next record (see `sendRecord`) and returns its frame without sending it. */
  sealRecord(plain: Uint8Array, options?: { flipBit?: number }): Buffer
  /** Writes one frame with `body`. */
  sendFrame(body: Uint8Array): boolean
  /**
   * Seals `plain` as the next record and sends it; `flipBit` (an index into the bits of
   * ciphertext ‖ tag) corrupts it on the way.
   */
  sendRecord(plain: Uint8Array, options?: { flipBit?: number }): boolean
  /** Sends `data` as records of at most `recordSize` bytes (default 64 KiB). */
  write(data: Uint8Array, recordSize?: number): void
  /** Seals a record of `size` bytes, writes its length and only half of it, then ends the stream. */
  endInsideRecord(size?: number): void
  /** Ends our side of the stream. */
  end(): void
  /** Destroys the stream, closes the socket; resolves when both are gone. Idempotent. */
  close(): Promise<void>
}

/** A raw peer on its own udx instance, bound to 127.0.0.1 and connected to `remotePort`/`remoteId`. */
export function createRawSecurePeer(options: RawSecurePeerOptions): RawSecurePeer {
  const { isInitiator, remotePort, remoteId, id = 0x1234567, keyPair = rawKeyPair(), confirm = true, rekeyInterval = 2 ** 20 } = options
  const replace = options.replaceHandshakeMessage
  const udx = new UDX()
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  const stream = udx.createStream(id)
  stream.connect(socket, remoteId, remotePort, '127.0.0.1')

  const noise = options.prepared ?? rawNoiseState(isInitiator, keyPair)
  let handshakeStopped = false
  let tx: Buffer | null = null
  let rx: Buffer | null = null
  let hash: Buffer | null = null
  let sendCounter = 0
  let receiveCounter = 0
  const handshakeFrames: Buffer[] = []
  const records: Buffer[] = []
  const errors: Error[] = []

  let markReady: (value: boolean) => void = () => {}
  const ready = new Promise<boolean>((resolve) => (markReady = resolve))
  let markEnded: () => void = () => {}
  const ended = new Promise<void>((resolve) => (markEnded = resolve))
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()))
  void closed.then(() => markReady(false))

  const fail = (message: string): void => {
    errors.push(new Error(message))
    stream.destroy()
  }

  // Writes made in one synchronous run go out as one udx write, so that they share
  // packets (a handshake message and the record behind it arrive in one chunk).
  let outgoing: Buffer[] = []
  const flush = (): void => {
    if (outgoing.length === 0) return
    const bytes = outgoing.length === 1 ? outgoing[0]! : Buffer.concat(outgoing)
    outgoing = []
    if (!stream.destroyed) stream.write(bytes)
  }
  const writeRaw = (bytes: Uint8Array): boolean => {
    if (outgoing.length === 0) queueMicrotask(flush)
    outgoing.push(Buffer.from(bytes))
    return true
  }
  const sendFrame = (body: Uint8Array): boolean => writeRaw(frame(body))

  const sealRecord = (plain: Uint8Array, opts: { flipBit?: number } = {}): Buffer => {
    if (tx === null) throw new Error('the raw peer has no keys yet')
    const counter = sendCounter++
    const sealed = rawSeal(tx, counter, plain)
    if ((counter + 1) % rekeyInterval === 0) tx = rawRekey(tx)
    if (opts.flipBit !== undefined) {
      const bit = opts.flipBit % (sealed.length * 8)
      sealed[bit >>> 3] ^= 1 << (bit & 7)
    }
    return frame(sealed)
  }
  const sendRecord = (plain: Uint8Array, opts: { flipBit?: number } = {}): boolean => writeRaw(sealRecord(plain, opts))
  const end = (): void => {
    flush()
    stream.end()
  }

  /** Sends our next handshake message (or its replacement); true when our handshake is complete. */
  const sendHandshake = (message: 1 | 2 | 3): boolean => {
    if (replace?.message === message) {
      handshakeStopped = true
      if (replace.unframed === true) writeRaw(replace.body)
      else sendFrame(replace.body)
      return false
    }
    sendFrame(noise.send())
    return noise.complete
  }

  const verifyRemote = (): boolean => {
    const expected = options.expectedRemotePublicKey
    if (expected === undefined || (noise.rs !== null && Buffer.from(noise.rs).equals(Buffer.from(expected)))) return true
    fail('the remote proved another key')
    return false
  }

  const complete = (): void => {
    tx = Buffer.from(noise.tx!)
    rx = Buffer.from(noise.rx!)
    hash = Buffer.from(noise.hash!)
    if (!isInitiator && confirm) sendRecord(Buffer.alloc(0))
    if (options.eager !== undefined) sendRecord(typeof options.eager === 'string' ? Buffer.from(options.eager) : options.eager)
    options.afterHandshake?.(peer)
    markReady(true)
  }

  const onFrame = (body: Buffer): boolean => {
    if (rx === null) {
      handshakeFrames.push(Buffer.from(body)) // a copy: noise-handshake zeroes the remote ephemeral key inside it
      if (handshakeStopped) return true
      try {
        noise.recv(body)
      } catch (err) {
        fail(`Noise failed: ${(err as Error).message}`)
        return false
      }
      if (noise.rs !== null && !verifyRemote()) return false
      if (noise.complete) {
        complete() // responder: message 3 read
        return true
      }
      if (sendHandshake(isInitiator ? 3 : 2) && isInitiator) complete()
      return true
    }
    const counter = receiveCounter++
    const plain = rawOpen(rx, counter, body)
    if (plain === null) {
      fail(`record ${counter} failed authentication`)
      return false
    }
    if ((counter + 1) % rekeyInterval === 0) rx = rawRekey(rx)
    records.push(plain)
    return true
  }

  // An independent frame parser: chunks are queued until a whole length prefix, then a whole body, is there.
  const queue: Buffer[] = []
  let queued = 0
  let need: number | null = null
  const take = (n: number): Buffer => {
    const out = Buffer.alloc(n)
    let filled = 0
    while (filled < n) {
      const head = queue[0]!
      const part = Math.min(head.length, n - filled)
      head.copy(out, filled, 0, part)
      filled += part
      if (part === head.length) queue.shift()
      else queue[0] = head.subarray(part)
    }
    queued -= n
    return out
  }
  stream.on('data', (chunk: Buffer) => {
    queue.push(chunk)
    queued += chunk.length
    for (;;) {
      if (need === null) {
        if (queued < 3) return
        need = take(3).readUIntLE(0, 3)
      }
      if (queued < need) return
      const body = take(need)
      need = null
      if (!onFrame(body)) {
        queue.length = 0
        queued = 0
        return
      }
    }
  })
  stream.on('end', () => {
    if (need !== null || queued > 0) fail('the remote ended inside a frame')
    else markEnded()
  })
  stream.on('error', (err: Error) => errors.push(err))

  if (isInitiator && options.prepared === undefined) sendHandshake(1)
  let closing: Promise<void> | undefined

  const peer: RawSecurePeer = {
    port: socket.address()!.port,
    id,
    keyPair,
    stream,
    ready,
    ended,
    closed,
    handshakeFrames,
    records,
    errors,
    handshakeHash: () => hash,
    remotePublicKey: () => (noise.rs === null ? null : Buffer.from(noise.rs)),
    received: () => Buffer.concat(records),
    errorCodes: () => errors.map((e) => String((e as { code?: unknown }).code ?? e.message)),
    writeRaw,
    sendFrame,
    sealRecord,
    sendRecord,
    write(data, recordSize = 64 * 1024) {
      for (let offset = 0; offset < data.length; offset += recordSize) sendRecord(data.subarray(offset, offset + recordSize))
    },
    endInsideRecord(size = 1000) {
      const sealed = tx === null ? Buffer.alloc(size + RAW_TAG_BYTES, 0x5a) : sealRecord(Buffer.alloc(size, 0x5a)).subarray(3)
      writeRaw(frameHeader(sealed.length))
      writeRaw(sealed.subarray(0, sealed.length >>> 1))
      end()
    },
    end,
    close() {
      closing ??= (async () => {
        stream.destroy()
        await closed
        await socket.close()
      })()
      return closing
    },
  }
  // A prepared initiator has read message 2 (and verifies its key now): message 3 goes out at once.
  if (isInitiator && options.prepared !== undefined && verifyRemote() && sendHandshake(3)) complete()
  return peer
}

/** SHA-256 (hex) of `data`. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
