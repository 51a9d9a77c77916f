/**
 * Counters of a running TURN server, for logs and Prometheus export.
 *
 * @module
 */

/**
 * Counters since the server started; `allocations` and `connections` are current values
 * (gauges), everything else only grows.
 */
export interface TurnServerStats {
  /** Allocations in force now. */
  allocations: number
  /** Allocations created since start. */
  allocationsCreated: number
  /** TCP and TLS client connections open now. */
  connections: number
  /** Relayed packets from clients to peers (Send indications and ChannelData). */
  packetsToPeers: number
  /** Bytes of relayed application data from clients to peers. */
  bytesToPeers: number
  /** Relayed packets from peers to clients (Data indications and ChannelData). */
  packetsFromPeers: number
  /** Bytes of relayed application data from peers to clients. */
  bytesFromPeers: number
  /**
   * Data packets dropped: no allocation, permission or channel, over `maxBps`, or a
   * stream client not reading.
   */
  droppedPackets: number
  /** Binding requests answered with success. */
  bindingResponses: number
  /** Error responses sent (all codes). */
  errorResponses: number
  /** 401 Unauthorized responses sent (challenges and failures). */
  unauthorized: number
  /** Requests whose credentials were wrong: unknown user, bad password, expired REST username, wrong realm. */
  authFailures: number
  /** 438 Stale Nonce responses sent. */
  staleNonces: number
  /** 403 Forbidden responses (peer address refused by policy). */
  forbidden: number
  /** 486 Allocation Quota Reached responses. */
  quotaRejections: number
  /** 508 Insufficient Capacity responses (port range exhausted, permission cap). */
  capacityRejections: number
  /** Requests dropped by a per-IP rate limit (401 answers, Binding). */
  rateLimited: number
  /** Datagrams or stream frames that were neither STUN nor ChannelData, or did not decode. */
  malformed: number
}

/** A zeroed {@link TurnServerStats}. */
export function createTurnServerStats(): TurnServerStats {
  return {
    allocations: 0,
    allocationsCreated: 0,
    connections: 0,
    packetsToPeers: 0,
    bytesToPeers: 0,
    packetsFromPeers: 0,
    bytesFromPeers: 0,
    droppedPackets: 0,
    bindingResponses: 0,
    errorResponses: 0,
    unauthorized: 0,
    authFailures: 0,
    staleNonces: 0,
    forbidden: 0,
    quotaRejections: 0,
    capacityRejections: 0,
    rateLimited: 0,
    malformed: 0,
  }
}
