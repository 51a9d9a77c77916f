/**
 * Candidates as text, in the `candidate:` attribute syntax of RFC 8839 §5.1 — what goes
 * into the Beacon's `offer` / `answer` / `candidate` signals:
 *
 * ```
 * candidate:1a2b3c4d5e 1 udp 2130706431 192.0.2.10 50000 typ host
 * candidate:9f8e7d6c5b 1 udp 1694498815 198.51.100.7 61000 typ srflx raddr 192.0.2.10 rport 50000
 * ```
 *
 * Parsing is total: for any input it returns a candidate or throws
 * {@link IceSignalInvalidError}, nothing else. peerlink only uses UDP candidates whose
 * address is an IP literal; other transports and FQDN (mDNS `.local`) addresses are
 * refused with that error.
 *
 * @module
 */
import { IceSignalInvalidError, InvalidArgumentError } from '../errors.js'
import { CANDIDATE_TYPES, type CandidateType, type IceCandidate } from './candidate.js'
import { canonicalHost } from './canonical-address.js'
import { isIceCharString } from './ice-credentials.js'

/** The trickle ICE end-of-candidates marker (RFC 8840 §8.2). */
export const END_OF_CANDIDATES = 'end-of-candidates'

/** Longest candidate line accepted by {@link parseCandidate}, in characters. */
export const MAX_CANDIDATE_LINE = 1024

/**
 * Formats a candidate as an RFC 8839 `candidate:` attribute value (without `a=`).
 *
 * @throws InvalidArgumentError if the candidate cannot be represented.
 */
export function formatCandidate(candidate: IceCandidate): string {
  if (candidate === null || typeof candidate !== 'object') throw new InvalidArgumentError('formatCandidate needs a candidate')
  const { foundation, component, priority, address, port, type } = candidate
  if (!isIceCharString(foundation) || foundation.length > 32) throw new InvalidArgumentError(`Invalid foundation ${JSON.stringify(foundation)}`)
  if (!Number.isInteger(component) || component < 1 || component > 256) throw new InvalidArgumentError(`Invalid component ${String(component)}`)
  if (!Number.isInteger(priority) || priority < 0 || priority > 0xffffffff) throw new InvalidArgumentError(`Invalid priority ${String(priority)}`)
  const host = canonicalHost(address)
  if (host === undefined) throw new InvalidArgumentError(`Invalid candidate address ${JSON.stringify(address)}`)
  checkPort(port, InvalidArgumentError)
  if (!CANDIDATE_TYPES.includes(type)) throw new InvalidArgumentError(`Invalid candidate type ${JSON.stringify(type)}`)
  let line = `candidate:${foundation} ${component} udp ${priority} ${host} ${port} typ ${type}`
  if (candidate.relatedAddress !== undefined) {
    const related = canonicalHost(candidate.relatedAddress)
    if (related === undefined) throw new InvalidArgumentError(`Invalid related address ${JSON.stringify(candidate.relatedAddress)}`)
    line += ` raddr ${related}`
  }
  if (candidate.relatedPort !== undefined) {
    if (!Number.isInteger(candidate.relatedPort) || candidate.relatedPort < 0 || candidate.relatedPort > 65535) {
      throw new InvalidArgumentError(`Invalid related port ${String(candidate.relatedPort)}`)
    }
    line += ` rport ${candidate.relatedPort}`
  }
  return line
}

/** Whether a signalled line is the trickle end-of-candidates marker (`a=` prefix allowed). */
export function isEndOfCandidates(line: unknown): boolean {
  return typeof line === 'string' && line.trim().replace(/^a=/, '') === END_OF_CANDIDATES
}

/**
 * Parses an RFC 8839 `candidate:` attribute (with or without `a=` and `candidate:`).
 * Unknown extension attributes (`generation 0`, `ufrag x`, …) are skipped.
 *
 * @throws IceSignalInvalidError for anything that is not a valid UDP candidate with an IP address.
 */
export function parseCandidate(line: unknown): IceCandidate {
  if (typeof line !== 'string') throw new IceSignalInvalidError('A candidate must be a string')
  if (line.length > MAX_CANDIDATE_LINE) throw new IceSignalInvalidError(`Candidate line longer than ${MAX_CANDIDATE_LINE} characters`)
  let text = line.trim()
  if (text.startsWith('a=')) text = text.slice(2)
  if (text.startsWith('candidate:')) text = text.slice('candidate:'.length)
  const fields = text.split(' ')
  if (fields.length < 8) throw new IceSignalInvalidError(`Candidate has ${fields.length} fields, needs at least 8`)
  const [foundation, componentText, transport, priorityText, addressText, portText, typ, typeText] = fields as [
    string, string, string, string, string, string, string, string,
  ]
  if (!isIceCharString(foundation) || foundation.length > 32) throw new IceSignalInvalidError('Invalid candidate foundation')
  const component = parseDecimal(componentText, 3, 'component')
  if (component < 1 || component > 256) throw new IceSignalInvalidError(`Invalid candidate component ${component}`)
  if (transport.toLowerCase() !== 'udp') throw new IceSignalInvalidError(`Unsupported candidate transport ${JSON.stringify(transport.slice(0, 16))}`)
  const priority = parseDecimal(priorityText, 10, 'priority')
  if (priority > 0xffffffff) throw new IceSignalInvalidError('Candidate priority exceeds 2^32-1')
  const address = canonicalHost(addressText)
  if (address === undefined || addressText.includes('%') || addressText.includes('[')) {
    throw new IceSignalInvalidError('Candidate address is not an IP literal (FQDN and mDNS candidates are not supported)')
  }
  const port = parseDecimal(portText, 5, 'port')
  checkPort(port, IceSignalInvalidError)
  if (typ !== 'typ') throw new IceSignalInvalidError('Candidate lacks "typ"')
  if (!(CANDIDATE_TYPES as readonly string[]).includes(typeText)) {
    throw new IceSignalInvalidError(`Unknown candidate type ${JSON.stringify(typeText.slice(0, 16))}`)
  }
  const candidate: IceCandidate = {
    foundation,
    component,
    transport: 'udp',
    priority,
    address,
    port,
    type: typeText as CandidateType,
  }
  let i = 8
  if (fields[i] === 'raddr') {
    const related = canonicalHost(fields[i + 1] ?? '')
    if (related === undefined) throw new IceSignalInvalidError('Invalid candidate raddr')
    candidate.relatedAddress = related
    i += 2
  }
  if (fields[i] === 'rport') {
    const relatedPort = parseDecimal(fields[i + 1] ?? '', 5, 'rport')
    if (relatedPort > 65535) throw new IceSignalInvalidError('Invalid candidate rport')
    candidate.relatedPort = relatedPort
    i += 2
  }
  // RFC 8839 §5.1: *(SP extension-att-name SP extension-att-value)
  const rest = fields.length - i
  if (rest % 2 !== 0) throw new IceSignalInvalidError('Candidate extension attribute without a value')
  for (; i < fields.length; i += 2) {
    if (!/^[\x21-\x7e]+$/.test(fields[i] as string) || !/^[\x21-\x7e]+$/.test(fields[i + 1] as string)) {
      throw new IceSignalInvalidError('Malformed candidate extension attribute')
    }
  }
  return candidate
}

function parseDecimal(text: string, maxDigits: number, name: string): number {
  if (!/^[0-9]+$/.test(text) || text.length > maxDigits) throw new IceSignalInvalidError(`Invalid candidate ${name}`)
  return Number(text)
}

function checkPort(port: number, ErrorClass: new (message: string) => Error): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ErrorClass(`Invalid candidate port ${String(port)}`)
}
