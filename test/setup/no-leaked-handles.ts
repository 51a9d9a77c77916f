// Every test file fails if it leaves Node handles behind (sockets, timers, child
// processes, servers): the resources active after its last test must be those that were
// active before its first. udx-native's native handles are invisible here; the transport
// leak test checks those by running a scenario in a child process that must exit by itself.
// The TURN server's native sockets (native/udp_relay.c) are counted by the addon itself.
import { afterAll, beforeAll, expect } from 'vitest'
import { nativeUdpRelay } from '../../src/server/turn/native-udp-relay.js'
import { type ResourceSnapshot, assertNoNewResources, snapshotActiveResources } from '../../src/testing/leak-check.js'

let before: ResourceSnapshot
let nativeSocketsBefore = 0

beforeAll(() => {
  before = snapshotActiveResources()
  nativeSocketsBefore = nativeUdpRelay?.openSockets() ?? 0
})

afterAll(async () => {
  await assertNoNewResources(before, { timeout: 3_000 })
  expect(nativeUdpRelay?.openSockets() ?? 0, 'native TURN sockets left open').toBe(nativeSocketsBefore)
})
