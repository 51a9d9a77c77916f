/**
 * The ICE agent settings of a peer's connection attempts ({@link PEER_ICE_DEFAULTS}).
 *
 * @module
 */
import type { IceAgentOptions } from '../ice/ice-agent-options.js'

/**
 * The ICE agent settings a peer uses unless `PeerOptions.ice` overrides them, tuned for
 * fast connects between two peers with a handful of candidates (bench/connect,
 * docs/benchmarks.md):
 * - `ta: 5` — RFC 8445 §14.2's lower bound instead of 50 ms: the first check usually
 *   goes to a host candidate of the peer's LAN that cannot answer, and the pair that
 *   works should not wait behind it;
 * - `nominationDelay: 20` — the cap on waiting for better pairs still unchecked (pairs
 *   whose checks stay unanswered longer than the valid one's round trip are not waited
 *   for at all, see `ControllingNomination`);
 * - `checkRetransmit: { rto: 100, rc: 7, rm: 16 }` — a lost check is retried after 100 ms
 *   rather than 500 ms (RFC 8445 §14.3 says SHOULD ≥ 500 ms for media sessions pacing
 *   many pairs); a pair still fails after 7.9 s without an answer;
 * - `relayDelay: 300` — a pair through a TURN relay is nominated only when no direct
 *   pair has succeeded within 300 ms (at once when UDP is known to be blocked);
 * - `selectOnNomination: true` — the listening (controlled) side selects the nominated
 *   pair at once, so it listens on the path before the first handshake packet arrives
 *   (else udx retransmits that packet only after a second).
 */
export const PEER_ICE_DEFAULTS: Readonly<Partial<IceAgentOptions>> = Object.freeze({
  ta: 5,
  relayDelay: 300,
  nominationDelay: 20,
  checkRetransmit: Object.freeze({ rto: 100, rc: 7, rm: 16 }),
  selectOnNomination: true,
})
