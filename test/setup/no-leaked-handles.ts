// Every test file fails if it leaves Node handles behind (sockets, timers, child
// processes, servers): the resources active after its last test must be those that were
// active before its first. udx-native's native handles are invisible here; the transport
// leak test checks those by running a scenario in a child process that must exit by itself.
import { afterAll, beforeAll } from 'vitest'
import { type ResourceSnapshot, assertNoNewResources, snapshotActiveResources } from '../../src/testing/leak-check.js'

let before: ResourceSnapshot

beforeAll(() => {
  before = snapshotActiveResources()
})

afterAll(async () => {
  await assertNoNewResources(before, { timeout: 3_000 })
})
