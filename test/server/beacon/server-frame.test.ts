// The Beacon's own WebSocket frames (written to the socket without ws's sender) are
// frames a ws client reads: unmasked, binary, with 7-bit and 16-bit lengths.
import type { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import * as wsModule from 'ws'
import { type ServerMessage, decodeServerMessage, encodeServerMessage } from '../../../src/beacon/beacon-messages.js'
import { createIdentity } from '../../../src/identity/index.js'
import { encodeServerFrame, frameOf, framePayload } from '../../../src/server/beacon/server-frame.js'

/** ws's frame parser (exported by ws, not in its type declarations). */
const Receiver = (wsModule as unknown as { Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable }).Receiver

describe('Beacon server frames', () => {
  it('are unmasked binary frames a client reads back, and their payload is the encoded message', async () => {
    const from = createIdentity().peerId
    const messages: ServerMessage[] = [
      { type: 'pong', id: 7 },
      { type: 'ok', id: 1, observed: [{ family: 'IPv4', host: '127.0.0.1', port: 4264 }] },
      { type: 'signal', from, observed: [{ family: 'IPv6', host: '::1', port: 1 }], kind: 'offer', session: new Uint8Array(16), mid: new Uint8Array(16).fill(1), payload: new Uint8Array(200).fill(9) },
      { type: 'introduction', topic: new Uint8Array(64), peerId: from, observed: [], mid: new Uint8Array(16), payload: new Uint8Array(8192).fill(3) },
      { type: 'pong', id: -1 } as unknown as ServerMessage, // the general encoder's path
    ]
    const frames = messages.map(encodeServerFrame)
    for (const [i, frame] of frames.entries()) {
      expect(frame[0]).toBe(0x82)
      expect(frame[1]! & 0x80).toBe(0) // a server never masks
      expect(Buffer.from(framePayload(frame)).equals(Buffer.from(encodeServerMessage(messages[i]!)))).toBe(true)
      expect(frameOf(framePayload(frame)).equals(frame)).toBe(true)
    }
    expect(frames.map((f) => f[1])).toEqual([frames[0]![1], frames[1]![1], 126, 126, frames[4]![1]])
    const receiver = new Receiver({ isServer: false, maxPayload: 0 })
    const received: Buffer[] = []
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      expect(isBinary).toBe(true)
      received.push(Buffer.from(data))
    })
    await new Promise<void>((resolve, reject) => {
      receiver.on('error', reject)
      receiver.write(Buffer.concat(frames), () => resolve())
    })
    expect(received).toHaveLength(messages.length)
    expect(received.slice(0, 4).map((data) => decodeServerMessage(data).type)).toEqual(['pong', 'ok', 'signal', 'introduction'])
    expect(received.map((r) => r.toString('hex'))).toEqual(messages.map((m) => Buffer.from(encodeServerMessage(m)).toString('hex')))
  })
})
