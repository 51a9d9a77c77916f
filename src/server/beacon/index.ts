/**
 * The Beacon rendezvous server (see `docs/beacon-protocol.md`).
 *
 * @module
 */
export { BeaconServer, type BeaconServerOptions } from './beacon-server.js'
export type { BeaconServerStats, BeaconServerLogger } from './beacon-router.js'
export { MemoryRegistry, type BeaconRegistry, type RegistryEntry, type RegistryRecord } from './registry.js'
export type { BeaconErrorReason } from '../../beacon/beacon-messages.js'
