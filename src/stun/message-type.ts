/**
 * STUN message type: a 12-bit method and a 2-bit class interleaved in the first
 * 16 bits of the header (RFC 8489 §5).
 *
 * @module
 */

/**
 * STUN methods known to peerlink: Binding (RFC 8489), the TURN methods (RFC 8656) and
 * the TURN-TCP methods (RFC 6062).
 */
export type StunMethod =
  | 'binding'
  | 'allocate'
  | 'refresh'
  | 'send'
  | 'data'
  | 'create-permission'
  | 'channel-bind'
  | 'connect'
  | 'connection-bind'
  | 'connection-attempt'

/** STUN message classes (RFC 8489 §5). */
export type StunClass = 'request' | 'indication' | 'success' | 'error'

/**
 * Method code of each {@link StunMethod} (IANA "STUN Methods" registry).
 *
 * @example
 * ```ts
 * import { STUN_METHOD_CODES } from 'peerlink'
 *
 * console.log(STUN_METHOD_CODES.binding)              // 0x001
 * console.log(STUN_METHOD_CODES['channel-bind'])      // 0x009 (TURN, RFC 8656)
 * ```
 */
export const STUN_METHOD_CODES: Readonly<Record<StunMethod, number>> = {
  binding: 0x001,
  allocate: 0x003,
  refresh: 0x004,
  send: 0x006,
  data: 0x007,
  'create-permission': 0x008,
  'channel-bind': 0x009,
  connect: 0x00a,
  'connection-bind': 0x00b,
  'connection-attempt': 0x00c,
}

const METHOD_BY_CODE = new Map<number, StunMethod>(
  (Object.entries(STUN_METHOD_CODES) as [StunMethod, number][]).map(([name, code]) => [code, name]),
)

const CLASS_BITS: Readonly<Record<StunClass, number>> = {
  request: 0b00,
  indication: 0b01,
  success: 0b10,
  error: 0b11,
}

const CLASS_BY_BITS: readonly StunClass[] = ['request', 'indication', 'success', 'error']

/** A decoded message type. */
export interface StunMessageType {
  /** The method. */
  method: StunMethod
  /** The class. */
  class: StunClass
}

/**
 * Encodes a method and class into the 14-bit STUN message type.
 *
 * RFC 8489 §5: the class bits C1 C0 sit at bit positions 8 and 4; the method bits fill
 * the rest (M0–M3 at 0–3, M4–M6 at 5–7, M7–M11 at 9–13).
 *
 * @example
 * ```ts
 * import { encodeMessageType } from 'peerlink'
 *
 * encodeMessageType('binding', 'request')    // 0x0001
 * encodeMessageType('binding', 'success')    // 0x0101
 * encodeMessageType('allocate', 'error')     // 0x0113
 * ```
 */
export function encodeMessageType(method: StunMethod, cls: StunClass): number {
  const m = STUN_METHOD_CODES[method]
  const c = CLASS_BITS[cls]
  return (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
}

/**
 * Extracts the 12-bit method code from a 16-bit message type field.
 *
 * @example
 * ```ts
 * import { methodCodeOf } from 'peerlink'
 *
 * methodCodeOf(0x0003)   // 3: Allocate request
 * methodCodeOf(0x0113)   // 3: Allocate error response (the class bits are dropped)
 * ```
 */
export function methodCodeOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2)
}

/**
 * Extracts the class from a 16-bit message type field.
 *
 * @example
 * ```ts
 * import { classOf } from 'peerlink'
 *
 * classOf(0x0001)   // 'request'
 * classOf(0x0101)   // 'success'
 * classOf(0x0111)   // 'error'
 * ```
 */
export function classOf(type: number): StunClass {
  return CLASS_BY_BITS[((type >> 4) & 0b01) | ((type >> 7) & 0b10)] as StunClass
}

/**
 * Decodes a 16-bit message type field, or returns `undefined` when the top two bits
 * are set or the method is not one peerlink knows.
 *
 * @example
 * ```ts
 * import { decodeMessageType } from 'peerlink'
 *
 * decodeMessageType(0x0101)   // { method: 'binding', class: 'success' }
 * decodeMessageType(0x0ff1)   // undefined: a method peerlink does not know
 * ```
 */
export function decodeMessageType(type: number): StunMessageType | undefined {
  if ((type & 0xc000) !== 0) return undefined
  const method = METHOD_BY_CODE.get(methodCodeOf(type))
  if (method === undefined) return undefined
  return { method, class: classOf(type) }
}
