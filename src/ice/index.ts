/**
 * The ICE agent (RFC 8445, trickle RFC 8838, consent freshness RFC 7675) and its parts:
 * candidates, priorities, pairs, the checklist, checks, nomination and consent.
 *
 * @module
 */
export { IceAgent } from './ice-agent.js'
export type {
  IceAgentEvents,
  IceAgentOptions,
  IceAgentState,
  IceConnectOptions,
  IceGatherOptions,
  IceSelection,
} from './ice-agent-options.js'
export { CANDIDATE_TYPES, candidateFoundation, createLocalCandidate, describeCandidate, toSignalledCandidate } from './candidate.js'
export type { CandidateType, CreateLocalCandidateOptions, IceCandidate, LocalCandidate } from './candidate.js'
export {
  ICE_COMPONENT_ID,
  MAX_LOCAL_PREFERENCE,
  TYPE_PREFERENCES,
  candidatePriority,
  hostLocalPreferences,
} from './candidate-priority.js'
export { CandidatePair, comparePairs, pairPriority } from './candidate-pair.js'
export type { CandidatePairState, PairStateListener } from './candidate-pair.js'
export { END_OF_CANDIDATES, MAX_CANDIDATE_LINE, formatCandidate, isEndOfCandidates, parseCandidate } from './candidate-codec.js'
export {
  PWD_LENGTH,
  UFRAG_LENGTH,
  checkIceCredentials,
  generateIceCredentials,
  isIceCharString,
  parseIceCredentials,
} from './ice-credentials.js'
export type { IceCredentials } from './ice-credentials.js'
export { CandidateGatherer } from './candidate-gatherer.js'
export type {
  CandidateGathererEvents,
  CandidateGathererOptions,
  NetworkInterfaceMap,
  StunServerOutcome,
} from './candidate-gatherer.js'
export { Checklist } from './checklist.js'
export type { ChecklistOptions } from './checklist.js'
export {
  answerCheckRequest,
  checkIntegrityKey,
  createCheckError,
  createCheckRequest,
  createCheckSuccess,
  inspectCheckRequest,
  interpretCheckResponse,
  resolveRoleConflict,
} from './connectivity-check.js'
export type {
  CheckAnswer,
  CheckRequestParams,
  CheckResponseOutcome,
  IgnoredMessage,
  IncomingCheck,
  RejectedCheck,
  RoleConflictDecision,
} from './connectivity-check.js'
export { ControlledNomination, ControllingNomination, createNomination, isRelayPair } from './nomination.js'
export { RelayRoutes } from './relay-routes.js'
export type { IceRelay, RelayDatagramHandler } from './relay-routes.js'
export { waitForSelection } from './selection-waiter.js'
export type { SelectionWaiter } from './selection-waiter.js'
export type { ControllingNominationOptions, NominationContext, NominationStrategy } from './nomination.js'
export { ConsentFreshness } from './consent-freshness.js'
export type { ConsentFreshnessOptions } from './consent-freshness.js'
export { CheckPacer } from './check-pacer.js'
export { oppositeRole, randomTieBreaker } from './ice-role.js'
export type { IceRole } from './ice-role.js'
export {
  addressKey,
  canonicalHost,
  ipFamily,
  isLinkLocalAddress,
  isLoopbackAddress,
  isUnspecifiedAddress,
} from './canonical-address.js'
export type { IceAddress, IpFamily } from './canonical-address.js'
