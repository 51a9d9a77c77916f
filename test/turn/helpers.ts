import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { expect } from 'vitest'
import type { TransportAddress } from '../../src/stun/address.js'
import { createDgramEndpoint, type DatagramEndpoint } from '../../src/stun/datagram-endpoint.js'
import type { TurnClient } from '../../src/turn/index.js'

/** A node:dgram socket bound to 127.0.0.1:0. */
export async function udpSocket(): Promise<Socket> {
  const socket = createSocket('udp4')
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()))
  return socket
}

export async function closeSocket(socket: Socket): Promise<void> {
  await new Promise<void>((r) => socket.close(() => r()))
}

/** A dgram endpoint that records the first byte of every datagram sent and received. */
export function recordingEndpoint(socket: Socket): { endpoint: DatagramEndpoint; sent: number[]; received: number[] } {
  const inner = createDgramEndpoint(socket)
  const sent: number[] = []
  const received: number[] = []
  socket.on('message', (msg: Buffer) => received.push(msg[0] as number))
  return {
    sent,
    received,
    endpoint: {
      send(data, port, host) {
        sent.push(data[0] as number)
        inner.send(data, port, host)
      },
      onMessage: (listener) => inner.onMessage(listener),
      localAddress: () => inner.localAddress?.(),
    },
  }
}

/** Resolves with the next datagram `socket` receives; rejects after `ms`. */
export function nextMessage(socket: Socket, ms = 3000): Promise<{ data: Buffer; from: RemoteInfo }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      reject(new Error('no datagram in time'))
    }, ms)
    function onMessage(data: Buffer, from: RemoteInfo): void {
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve({ data, from })
    }
    socket.on('message', onMessage)
  })
}

/** Resolves with the next `'data'` event of `client`; rejects after `ms`. */
export function nextData(client: TurnClient, ms = 3000): Promise<{ data: Uint8Array; peer: TransportAddress }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error('no relayed data in time'))
    }, ms)
    const off = client.onData((data, peer) => {
      clearTimeout(timer)
      off()
      resolve({ data, peer })
    })
  })
}

/** Sends `payload` from the client to the peer through the relay and a reply back; asserts both arrive intact. */
export async function exchange(client: TurnClient, peer: Socket, payload: Uint8Array): Promise<void> {
  const relayed = client.relayedAddress as TransportAddress
  const peerAddress = { host: '127.0.0.1', port: peer.address().port }
  const atPeer = nextMessage(peer)
  client.send(payload, peerAddress)
  const { data, from } = await atPeer
  expect(new Uint8Array(data)).toEqual(payload)
  expect({ host: from.address, port: from.port }).toEqual({ host: relayed.host, port: relayed.port })

  const reply = new Uint8Array(payload).reverse().map((b) => b ^ 0x5a)
  const atClient = nextData(client)
  peer.send(reply, relayed.port, relayed.host)
  const back = await atClient
  expect(back.data).toEqual(reply)
  expect(back.peer).toEqual({ family: 'IPv4', ...peerAddress })
}

/** Bytes 0, 1, 2, … of length `n` (odd lengths exercise ChannelData padding). */
export function bytes(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)
}
