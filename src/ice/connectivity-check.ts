/**
 * Connectivity checks as STUN messages (RFC 8445 §7): the Binding request a check sends,
 * and the answering side's validation, role-conflict decision and responses. Pure
 * functions; the agent does the I/O.
 *
 * @module
 */
import type { StunAttribute } from '../stun/attribute.js'
import { shortTermKey, verifyMessageIntegrity } from '../stun/integrity.js'
import { createStunRequest, encodeStunMessage, getAttribute, type DecodedStunMessage, type StunMessage } from '../stun/message.js'
import { canonicalHost, ipFamily, type IceAddress } from './canonical-address.js'
import type { IceCredentials } from './ice-credentials.js'
import type { IceRole } from './ice-role.js'

/** What a check request carries besides the credentials. */
export interface CheckRequestParams {
  /** Our credentials (the right half of USERNAME). */
  local: IceCredentials
  /** The peer's credentials (the left half of USERNAME; its pwd keys MESSAGE-INTEGRITY). */
  remote: IceCredentials
  /** PRIORITY: the priority a peer-reflexive candidate of ours would have (RFC 8445 §7.1.1). */
  priority: number
  /** Our role: ICE-CONTROLLING or ICE-CONTROLLED. */
  role: IceRole
  /** Our tie-breaker, carried in that attribute. */
  tieBreaker: bigint
  /**
   * Add USE-CANDIDATE (the controlling agent nominates, RFC 8445 §7.1.2).
   * @default false
   */
  useCandidate?: boolean
}

/**
 * A check's Binding request (RFC 8445 §7.1): USERNAME `remoteUfrag:localUfrag`, PRIORITY,
 * ICE-CONTROLLING or ICE-CONTROLLED with the tie-breaker, USE-CANDIDATE when nominating.
 * MESSAGE-INTEGRITY (keyed with {@link checkIntegrityKey} of the remote password) and
 * FINGERPRINT are added when it is encoded.
 */
export function createCheckRequest(params: CheckRequestParams): StunMessage {
  const attributes: StunAttribute[] = [
    // RFC 8445 §7.2.2: USERNAME is "RFRAG:LFRAG".
    { type: 'username', value: `${params.remote.ufrag}:${params.local.ufrag}` },
    { type: 'priority', value: params.priority },
    params.role === 'controlling'
      ? { type: 'ice-controlling', value: params.tieBreaker }
      : { type: 'ice-controlled', value: params.tieBreaker },
  ]
  if (params.useCandidate === true) attributes.push({ type: 'use-candidate' })
  return createStunRequest('binding', attributes)
}

/** The MESSAGE-INTEGRITY key of checks sent to a peer: its password (short-term credential, RFC 8445 §7.2.2). */
export function checkIntegrityKey(credentials: IceCredentials): Uint8Array {
  return shortTermKey(credentials.pwd)
}

/** A valid incoming check request (see {@link inspectCheckRequest}). */
export interface IncomingCheck {
  kind: 'check'
  /** The decoded request. */
  request: DecodedStunMessage
  /** The peer's ufrag (right half of USERNAME). */
  remoteUfrag: string
  /** PRIORITY: the priority of the peer-reflexive candidate the source would be. */
  priority: number
  /** USE-CANDIDATE was present. */
  useCandidate: boolean
  /** The peer's claimed role, if it sent ICE-CONTROLLING / ICE-CONTROLLED. */
  remoteRole: IceRole | undefined
  /** The peer's tie-breaker. */
  remoteTieBreaker: bigint | undefined
}

/** An incoming request answered with an error (see {@link inspectCheckRequest}). */
export interface RejectedCheck {
  kind: 'reject'
  /** The encoded error response to send back to the source. */
  response: Uint8Array
  /** 400, 401 or 420. */
  code: number
}

/** A message that is not a check for us and gets no answer. */
export interface IgnoredMessage {
  kind: 'ignore'
  /** Why, for diagnostics. */
  reason: string
}

/**
 * Validates an incoming Binding request against our credentials (RFC 8445 §7.3, RFC 8489
 * §9.1.3): FINGERPRINT required; missing USERNAME, MESSAGE-INTEGRITY or PRIORITY → 400; a
 * USERNAME whose left half is not our ufrag or a MESSAGE-INTEGRITY that does not verify
 * with our password → 401 (both without integrity); unknown comprehension-required
 * attributes → 420 with UNKNOWN-ATTRIBUTES.
 */
export function inspectCheckRequest(request: DecodedStunMessage, local: IceCredentials): IncomingCheck | RejectedCheck | IgnoredMessage {
  if (request.method !== 'binding' || request.class !== 'request') return { kind: 'ignore', reason: 'not a Binding request' }
  // RFC 8445 §7.1: ICE requests carry FINGERPRINT; one without it is not ICE.
  if (request.fingerprintOffset === undefined) return { kind: 'ignore', reason: 'no FINGERPRINT' }
  const username = getAttribute(request, 'username')?.value
  const priority = getAttribute(request, 'priority')?.value
  if (username === undefined || request.integrityOffset === undefined) {
    return reject(request, 400, 'Bad Request')
  }
  const colon = username.indexOf(':')
  if (colon < 0 || username.slice(0, colon) !== local.ufrag) return reject(request, 401, 'Unauthenticated')
  if (!verifyMessageIntegrity(request, shortTermKey(local.pwd))) return reject(request, 401, 'Unauthenticated')
  if (request.unknownRequired.length > 0) {
    return reject(request, 420, 'Unknown Attribute', local, [{ type: 'unknown-attributes', value: request.unknownRequired }])
  }
  // RFC 8445 §7.1.1: PRIORITY is mandatory in checks.
  if (priority === undefined) return reject(request, 400, 'Bad Request', local)
  const controlling = getAttribute(request, 'ice-controlling')?.value
  const controlled = getAttribute(request, 'ice-controlled')?.value
  return {
    kind: 'check',
    request,
    remoteUfrag: username.slice(colon + 1),
    priority,
    useCandidate: getAttribute(request, 'use-candidate') !== undefined,
    remoteRole: controlling !== undefined ? 'controlling' : controlled !== undefined ? 'controlled' : undefined,
    remoteTieBreaker: controlling ?? controlled,
  }
}

/** What the answering agent does about the roles (RFC 8445 §7.3.1.1). */
export type RoleConflictDecision = 'none' | 'switch-role' | 'reject-487'

/**
 * RFC 8445 §7.3.1.1: both sides controlling — the larger tie-breaker keeps the role (we
 * answer 487 if ours is larger or equal, else we switch); both controlled — the larger
 * tie-breaker takes the controlling role (we switch if ours is larger or equal, else 487).
 */
export function resolveRoleConflict(localRole: IceRole, localTieBreaker: bigint, check: Pick<IncomingCheck, 'remoteRole' | 'remoteTieBreaker'>): RoleConflictDecision {
  if (check.remoteRole !== localRole || check.remoteTieBreaker === undefined) return 'none'
  if (localRole === 'controlling') return localTieBreaker >= check.remoteTieBreaker ? 'reject-487' : 'switch-role'
  return localTieBreaker >= check.remoteTieBreaker ? 'switch-role' : 'reject-487'
}

/**
 * The success response to a check (RFC 8445 §7.3.1.2, RFC 8489 §7.3.1): XOR-MAPPED-ADDRESS
 * of the request's source, MESSAGE-INTEGRITY with our password, FINGERPRINT.
 */
export function createCheckSuccess(request: StunMessage, source: IceAddress, local: IceCredentials): Uint8Array {
  const host = canonicalHost(source.address) ?? source.address
  return encodeStunMessage(
    {
      method: 'binding',
      class: 'success',
      transactionId: request.transactionId,
      attributes: [{ type: 'xor-mapped-address', value: { family: ipFamily(host) ?? 'IPv4', host, port: source.port } }],
    },
    { integrity: shortTermKey(local.pwd), fingerprint: true },
  )
}

/** An error response to a check: 487 Role Conflict is signed with our password; 400/401 are not (we could not authenticate). */
export function createCheckError(
  request: StunMessage,
  code: number,
  reason: string,
  local?: IceCredentials,
  extra: StunAttribute[] = [],
): Uint8Array {
  return encodeStunMessage(
    {
      method: 'binding',
      class: 'error',
      transactionId: request.transactionId,
      attributes: [{ type: 'error-code', value: { code, reason } }, ...extra],
    },
    { ...(local === undefined ? {} : { integrity: shortTermKey(local.pwd) }), fingerprint: true },
  )
}

function reject(
  request: DecodedStunMessage,
  code: number,
  reason: string,
  local?: IceCredentials,
  extra: StunAttribute[] = [],
): RejectedCheck {
  return { kind: 'reject', code, response: createCheckError(request, code, reason, local, extra) }
}

/** What to do about an incoming request (see {@link answerCheckRequest}). */
export type CheckAnswer =
  | { kind: 'ignore' }
  | { kind: 'reply'; response: Uint8Array }
  | { kind: 'accept'; response: Uint8Array; check: IncomingCheck; switchRole: boolean }

/**
 * The answering side of a check (RFC 8445 §7.3): validate it ({@link inspectCheckRequest}),
 * settle a role conflict ({@link resolveRoleConflict}: 487, or switch role then accept),
 * and build the success response for the request's source.
 */
export function answerCheckRequest(
  request: DecodedStunMessage,
  source: IceAddress,
  local: IceCredentials,
  role: IceRole,
  tieBreaker: bigint,
): CheckAnswer {
  const result = inspectCheckRequest(request, local)
  if (result.kind === 'ignore') return { kind: 'ignore' }
  if (result.kind === 'reject') return { kind: 'reply', response: result.response }
  const decision = resolveRoleConflict(role, tieBreaker, result)
  if (decision === 'reject-487') return { kind: 'reply', response: createCheckError(request, 487, 'Role Conflict', local) }
  return { kind: 'accept', response: createCheckSuccess(request, source, local), check: result, switchRole: decision === 'switch-role' }
}

/** The outcome of a check's transaction (see {@link interpretCheckResponse}). */
export type CheckResponseOutcome =
  | { kind: 'success'; mapped: IceAddress }
  | { kind: 'role-conflict' }
  | { kind: 'failure'; reason: string }

/**
 * Interprets a check's response (RFC 8445 §7.2.5): success only if it came from the
 * address the request went to (§7.2.5.2.1, symmetric) and carries XOR-MAPPED-ADDRESS;
 * 487 is a role conflict (§7.2.5.1); any other error response fails the pair.
 */
export function interpretCheckResponse(
  response: DecodedStunMessage & { from: { host: string; port: number } },
  sentTo: IceAddress,
): CheckResponseOutcome {
  // RFC 8445 §7.2.5.2.1: the source of the response must be the destination of the
  // request. (The response's destination is the socket the request left from: with one
  // socket it always matches.)
  const fromHost = canonicalHost(response.from.host)
  if (fromHost !== canonicalHost(sentTo.address) || response.from.port !== sentTo.port) {
    return { kind: 'failure', reason: 'asymmetric response' }
  }
  if (response.class === 'error') {
    const code = getAttribute(response, 'error-code')?.value.code ?? 0
    if (code === 487) return { kind: 'role-conflict' }
    return { kind: 'failure', reason: `error ${code}` }
  }
  const mapped = getAttribute(response, 'xor-mapped-address')?.value
  if (mapped === undefined) return { kind: 'failure', reason: 'no XOR-MAPPED-ADDRESS' }
  return { kind: 'success', mapped: { address: canonicalHost(mapped.host) ?? mapped.host, port: mapped.port } }
}
