/**
 * ICE credentials (RFC 8445 §5.3, RFC 8839 §5.4): the username fragment and password each
 * agent signals to the other, used as STUN short-term credentials for checks.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { IceSignalInvalidError, InvalidArgumentError } from '../errors.js'

/** An agent's ICE credentials. */
export interface IceCredentials {
  /** Username fragment: 4–255 ice-chars (ALPHA / DIGIT / `+` / `/`). */
  ufrag: string
  /** Password: 22–256 ice-chars. */
  pwd: string
}

/** ice-char (RFC 8839 §5.1): ALPHA / DIGIT / "+" / "/". */
const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Whether `text` is 1 or more ice-chars only. */
export function isIceCharString(text: unknown): text is string {
  return typeof text === 'string' && /^[A-Za-z0-9+/]+$/.test(text)
}

/** Shortest and longest ufrag accepted. RFC 8839 allows 256; 255 keeps `ufrag:ufrag` within STUN's 512-byte USERNAME. */
export const UFRAG_LENGTH = Object.freeze({ min: 4, max: 255 })
/** Shortest and longest password accepted (RFC 8839 §5.4). */
export const PWD_LENGTH = Object.freeze({ min: 22, max: 256 })

function randomIceChars(length: number): string {
  const bytes = randomBytes(length)
  let out = ''
  for (const b of bytes) out += ICE_CHARS[b & 63]
  return out
}

/**
 * Fresh random credentials: an 8-character ufrag (48 bits, RFC 8445 §5.3 asks for ≥ 24)
 * and a 24-character password (144 bits, ≥ 128).
 */
export function generateIceCredentials(): IceCredentials {
  return { ufrag: randomIceChars(8), pwd: randomIceChars(24) }
}

/**
 * Checks credentials received from the remote and returns a clean copy.
 *
 * @throws IceSignalInvalidError if `value` is not `{ ufrag, pwd }` with valid ice-char strings.
 */
export function parseIceCredentials(value: unknown): IceCredentials {
  if (value === null || typeof value !== 'object') throw new IceSignalInvalidError('ICE credentials must be an object { ufrag, pwd }')
  const { ufrag, pwd } = value as { ufrag?: unknown; pwd?: unknown }
  checkPart(ufrag, 'ufrag', UFRAG_LENGTH, IceSignalInvalidError)
  checkPart(pwd, 'pwd', PWD_LENGTH, IceSignalInvalidError)
  return { ufrag: ufrag as string, pwd: pwd as string }
}

/**
 * Like {@link parseIceCredentials} for credentials given by the program (our own).
 *
 * @throws InvalidArgumentError if they are invalid.
 */
export function checkIceCredentials(value: unknown, what = 'credentials'): IceCredentials {
  if (value === null || typeof value !== 'object') throw new InvalidArgumentError(`${what} must be an object { ufrag, pwd }`)
  const { ufrag, pwd } = value as { ufrag?: unknown; pwd?: unknown }
  checkPart(ufrag, `${what}.ufrag`, UFRAG_LENGTH, InvalidArgumentError)
  checkPart(pwd, `${what}.pwd`, PWD_LENGTH, InvalidArgumentError)
  return { ufrag: ufrag as string, pwd: pwd as string }
}

function checkPart(
  text: unknown,
  name: string,
  length: { min: number; max: number },
  ErrorClass: new (message: string) => Error,
): void {
  if (typeof text !== 'string') throw new ErrorClass(`ICE ${name} must be a string`)
  if (text.length < length.min || text.length > length.max) {
    throw new ErrorClass(`ICE ${name} must be ${length.min}–${length.max} characters, got ${text.length}`)
  }
  if (!isIceCharString(text)) throw new ErrorClass(`ICE ${name} may only contain A–Z, a–z, 0–9, + and /`)
}
