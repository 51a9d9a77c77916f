import { describe, expect, it } from 'vitest'
import {
  answerCheckRequest,
  checkIntegrityKey,
  createCheckError,
  createCheckRequest,
  createCheckSuccess,
  inspectCheckRequest,
  interpretCheckResponse,
  resolveRoleConflict,
  type IceCredentials,
} from '../../src/ice/index.js'
import { decodeStunMessage, encodeStunMessage, getAttribute } from '../../src/stun/message.js'
import { verifyMessageIntegrity, shortTermKey } from '../../src/stun/integrity.js'

const alice: IceCredentials = { ufrag: 'alic', pwd: 'alicealicealicealicealice' }
const bob: IceCredentials = { ufrag: 'bobb', pwd: 'bobbobbobbobbobbobbobbob' }

/** What Alice sends to Bob, as bytes Bob decodes. */
function aliceCheck(options: { useCandidate?: boolean; key?: Uint8Array; fingerprint?: boolean; role?: 'controlling' | 'controlled' } = {}) {
  const request = createCheckRequest({ local: alice, remote: bob, priority: 1862270975, role: options.role ?? 'controlling', tieBreaker: 42n, useCandidate: options.useCandidate ?? false })
  const bytes = encodeStunMessage(request, { integrity: options.key ?? checkIntegrityKey(bob), fingerprint: options.fingerprint ?? true })
  return { request, decoded: decodeStunMessage(bytes) }
}

describe('connectivity check messages (RFC 8445 §7)', () => {
  it('carries USERNAME RFRAG:LFRAG, PRIORITY, the role with tie-breaker and USE-CANDIDATE', () => {
    const { decoded } = aliceCheck({ useCandidate: true })
    expect(getAttribute(decoded, 'username')?.value).toBe('bobb:alic')
    expect(getAttribute(decoded, 'priority')?.value).toBe(1862270975)
    expect(getAttribute(decoded, 'ice-controlling')?.value).toBe(42n)
    expect(getAttribute(decoded, 'use-candidate')).toBeDefined()
    expect(verifyMessageIntegrity(decoded, shortTermKey(bob.pwd))).toBe(true)
    expect(decoded.fingerprintOffset).toBeDefined()
    const result = inspectCheckRequest(decoded, bob)
    expect(result).toMatchObject({ kind: 'check', remoteUfrag: 'alic', priority: 1862270975, useCandidate: true, remoteRole: 'controlling', remoteTieBreaker: 42n })
  })

  it('answers a wrong password or ufrag with an unsigned 401', () => {
    const wrongKey = aliceCheck({ key: shortTermKey('not-the-password-at-all') })
    const r1 = inspectCheckRequest(wrongKey.decoded, bob)
    expect(r1).toMatchObject({ kind: 'reject', code: 401 })
    const response = decodeStunMessage((r1 as { response: Uint8Array }).response)
    expect(response.class).toBe('error')
    expect(getAttribute(response, 'error-code')?.value.code).toBe(401)
    expect(response.integrityOffset).toBeUndefined()
    expect(inspectCheckRequest(aliceCheck().decoded, { ...bob, ufrag: 'zzzz' })).toMatchObject({ kind: 'reject', code: 401 })
  })

  it('answers a request without USERNAME or MESSAGE-INTEGRITY with 400, and without PRIORITY with 400', () => {
    const bare = decodeStunMessage(encodeStunMessage({ method: 'binding', class: 'request', transactionId: new Uint8Array(12), attributes: [] }, { fingerprint: true }))
    expect(inspectCheckRequest(bare, bob)).toMatchObject({ kind: 'reject', code: 400 })
    const noPriority = decodeStunMessage(
      encodeStunMessage({ method: 'binding', class: 'request', transactionId: new Uint8Array(12), attributes: [{ type: 'username', value: 'bobb:alic' }] }, { integrity: shortTermKey(bob.pwd), fingerprint: true }),
    )
    expect(inspectCheckRequest(noPriority, bob)).toMatchObject({ kind: 'reject', code: 400 })
  })

  it('answers unknown comprehension-required attributes with 420 listing them', () => {
    const msg = decodeStunMessage(
      encodeStunMessage(
        { method: 'binding', class: 'request', transactionId: new Uint8Array(12), attributes: [{ type: 'username', value: 'bobb:alic' }, { type: 'priority', value: 1 }, { type: 'unknown', code: 0x7777, value: new Uint8Array(4) }] },
        { integrity: shortTermKey(bob.pwd), fingerprint: true },
      ),
    )
    const result = inspectCheckRequest(msg, bob)
    expect(result).toMatchObject({ kind: 'reject', code: 420 })
    expect(getAttribute(decodeStunMessage((result as { response: Uint8Array }).response), 'unknown-attributes')?.value).toEqual([0x7777])
  })

  it('ignores requests without FINGERPRINT and non-requests', () => {
    expect(inspectCheckRequest(aliceCheck({ fingerprint: false }).decoded, bob)).toMatchObject({ kind: 'ignore' })
    const indication = decodeStunMessage(encodeStunMessage({ method: 'binding', class: 'indication', transactionId: new Uint8Array(12), attributes: [] }, { fingerprint: true }))
    expect(inspectCheckRequest(indication, bob)).toMatchObject({ kind: 'ignore' })
  })

  it('resolves role conflicts by tie-breaker (RFC 8445 §7.3.1.1)', () => {
    expect(resolveRoleConflict('controlling', 10n, { remoteRole: 'controlled', remoteTieBreaker: 99n })).toBe('none')
    expect(resolveRoleConflict('controlling', 10n, { remoteRole: 'controlling', remoteTieBreaker: 5n })).toBe('reject-487')
    expect(resolveRoleConflict('controlling', 10n, { remoteRole: 'controlling', remoteTieBreaker: 10n })).toBe('reject-487')
    expect(resolveRoleConflict('controlling', 10n, { remoteRole: 'controlling', remoteTieBreaker: 11n })).toBe('switch-role')
    expect(resolveRoleConflict('controlled', 10n, { remoteRole: 'controlled', remoteTieBreaker: 5n })).toBe('switch-role')
    expect(resolveRoleConflict('controlled', 10n, { remoteRole: 'controlled', remoteTieBreaker: 10n })).toBe('switch-role')
    expect(resolveRoleConflict('controlled', 10n, { remoteRole: 'controlled', remoteTieBreaker: 11n })).toBe('reject-487')
    expect(resolveRoleConflict('controlled', 10n, { remoteRole: undefined, remoteTieBreaker: undefined })).toBe('none')
  })

  it('answers a conflicting check with a signed 487, or switches role and accepts it', () => {
    const source = { address: '198.51.100.7', port: 4444 }
    const { decoded } = aliceCheck() // Alice claims controlling with tie-breaker 42
    const keep = answerCheckRequest(decoded, source, bob, 'controlling', 100n)
    expect(keep.kind).toBe('reply')
    const conflict = decodeStunMessage((keep as { response: Uint8Array }).response)
    expect(getAttribute(conflict, 'error-code')?.value.code).toBe(487)
    expect(verifyMessageIntegrity(conflict, shortTermKey(bob.pwd))).toBe(true)
    const yield_ = answerCheckRequest(decoded, source, bob, 'controlling', 1n)
    expect(yield_).toMatchObject({ kind: 'accept', switchRole: true })
    expect(decodeStunMessage((yield_ as { response: Uint8Array }).response).class).toBe('success')
    expect(answerCheckRequest(decoded, source, bob, 'controlled', 1n)).toMatchObject({ kind: 'accept', switchRole: false })
  })

  it('signs the success response with our password and maps the source address', () => {
    const { request } = aliceCheck()
    const bytes = createCheckSuccess(request, { address: '::ffff:198.51.100.7', port: 4444 }, bob)
    const response = decodeStunMessage(bytes)
    expect(response.class).toBe('success')
    expect(response.transactionId).toEqual(request.transactionId)
    expect(getAttribute(response, 'xor-mapped-address')?.value).toEqual({ family: 'IPv4', host: '198.51.100.7', port: 4444 })
    expect(verifyMessageIntegrity(response, shortTermKey(bob.pwd))).toBe(true)
    expect(response.fingerprintOffset).toBeDefined()
  })

  it('accepts a response only from where the request went (RFC 8445 §7.2.5.2.1)', () => {
    const { request } = aliceCheck()
    const ok = decodeStunMessage(createCheckSuccess(request, { address: '203.0.113.1', port: 1000 }, bob))
    const sentTo = { address: '198.51.100.7', port: 4444 }
    expect(interpretCheckResponse({ ...ok, from: { host: '198.51.100.7', port: 4444 } }, sentTo)).toEqual({ kind: 'success', mapped: { address: '203.0.113.1', port: 1000 } })
    expect(interpretCheckResponse({ ...ok, from: { host: '::ffff:198.51.100.7', port: 4444 } }, sentTo).kind).toBe('success')
    expect(interpretCheckResponse({ ...ok, from: { host: '198.51.100.7', port: 4445 } }, sentTo)).toEqual({ kind: 'failure', reason: 'asymmetric response' })
    expect(interpretCheckResponse({ ...ok, from: { host: '198.51.100.8', port: 4444 } }, sentTo)).toEqual({ kind: 'failure', reason: 'asymmetric response' })
    const conflict = decodeStunMessage(createCheckError(request, 487, 'Role Conflict', bob))
    expect(interpretCheckResponse({ ...conflict, from: { host: '198.51.100.7', port: 4444 } }, sentTo)).toEqual({ kind: 'role-conflict' })
    const unauthorized = decodeStunMessage(createCheckError(request, 401, 'Unauthenticated'))
    expect(interpretCheckResponse({ ...unauthorized, from: { host: '198.51.100.7', port: 4444 } }, sentTo)).toEqual({ kind: 'failure', reason: 'error 401' })
  })
})
