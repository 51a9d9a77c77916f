/**
 * Self-signed TLS certificates for the reference servers, built without a dependency:
 * an ECDSA P-256 key from `node:crypto` and an X.509 v3 certificate encoded with the
 * small DER encoder in `der.ts`, signed ecdsa-with-SHA256 (RFC 5280, RFC 5758 §3.2).
 *
 * Clients do not validate these certificates against CAs: they pin them by hash
 * (`HOST:PORT#CERT_HASH`, see {@link certificateHash}), so the names and dates in the
 * certificate are informational. The default validity is therefore long (10 years):
 * expiry would only break every pinned client at once on a date nobody remembers, and
 * replacing the certificate changes its hash anyway. Ten years rather than "forever"
 * (RFC 5280's 99991231235959Z) keeps tools that do look at dates from treating it as
 * odd. Operators who want a CA-issued certificate give its files in the config instead.
 *
 * @module
 */
import { X509Certificate, type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { isIP } from 'node:net'
import { InvalidArgumentError } from '../errors.js'
import {
  derBitString,
  derBoolean,
  derExplicit,
  derImplicit,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derTime,
  derUtf8String,
  ipAddressBytes,
  readDer,
  readDerChildren,
} from './der.js'

export { certificateHash, certificateDer, connectTlsPinned, pinnedCertificateCheck, verifyCertificatePin } from '../cert-pin.js'

/** Object identifiers used in the certificate. */
const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2', // RFC 5758 §3.2
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const

/**
 * Default validity of a generated certificate: 10 years (see the module notes).
 *
 * @example
 * ```ts
 * import { DEFAULT_CERTIFICATE_VALIDITY_DAYS, createSelfSignedCertificate } from 'peerlink/server'
 *
 * // A one-year certificate instead of the default ten years (3650 days).
 * const { cert, key, notAfter } = createSelfSignedCertificate({ validityDays: DEFAULT_CERTIFICATE_VALIDITY_DAYS / 10 })
 * ```
 */
export const DEFAULT_CERTIFICATE_VALIDITY_DAYS = 3650

const DAY_MS = 24 * 60 * 60 * 1000
const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/** Options of {@link createSelfSignedCertificate}. */
export interface SelfSignedCertificateOptions {
  /**
   * Subject and issuer common name.
   * @default 'peerlink-server'
   */
  commonName?: string
  /**
   * DNS names for the subjectAltName extension.
   * @default ['localhost']
   */
  dnsNames?: readonly string[]
  /**
   * IP addresses (IPv4 or IPv6) for the subjectAltName extension.
   * @default ['127.0.0.1', '::1']
   */
  ipAddresses?: readonly string[]
  /**
   * Days from `notBefore` to `notAfter`.
   * @default 3650 ({@link DEFAULT_CERTIFICATE_VALIDITY_DAYS})
   */
  validityDays?: number
  /**
   * Start of validity.
   * @default one hour ago (tolerates clients whose clocks are a little behind)
   */
  notBefore?: Date
  /**
   * An existing ECDSA P-256 private key (PEM or `KeyObject`) to certify.
   * @default undefined (a new key is generated)
   */
  privateKey?: KeyObject | string
}

/** A certificate made by {@link createSelfSignedCertificate}. */
export interface SelfSignedCertificate {
  /** The certificate, PEM. */
  readonly cert: string
  /** Its private key, PEM (PKCS #8). Keep it secret: file mode 0600. */
  readonly key: string
  /** The certificate's DER encoding. */
  readonly der: Buffer
  /** base64url(SHA-256(DER)): the pin clients use, content of `certificate_hash.txt`. */
  readonly hash: string
  /** Start of validity. */
  readonly notBefore: Date
  /** End of validity. */
  readonly notAfter: Date
}

/**
 * Creates a self-signed X.509 v3 server certificate: ECDSA P-256, signed
 * ecdsa-with-SHA256, a random positive 128-bit serial number, and the extensions
 * subjectAltName (the DNS names and IPs given), basicConstraints CA:false (critical),
 * keyUsage digitalSignature (critical), extKeyUsage serverAuth and subjectKeyIdentifier.
 *
 * @throws `InvalidArgumentError` for a bad name, address, date, validity or key.
 * @example
 * ```ts
 * import https from 'node:https'
 * import { createSelfSignedCertificate } from 'peerlink/server'
 *
 * const { cert, key, hash } = createSelfSignedCertificate({ dnsNames: ['turn.example.com'] })
 * https.createServer({ cert, key }, handler)   // clients pin `hash`
 * ```
 */
export function createSelfSignedCertificate(options: SelfSignedCertificateOptions = {}): SelfSignedCertificate {
  const commonName = options.commonName ?? 'peerlink-server'
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    throw new InvalidArgumentError('commonName must be a string of 1 to 64 characters (RFC 5280 ub-common-name)')
  }
  const dnsNames = [...(options.dnsNames ?? ['localhost'])]
  for (const name of dnsNames) {
    if (typeof name !== 'string' || !DNS_NAME.test(name)) throw new InvalidArgumentError(`not a DNS name: ${JSON.stringify(name)}`)
  }
  const ipAddresses = [...(options.ipAddresses ?? ['127.0.0.1', '::1'])]
  for (const address of ipAddresses) {
    if (typeof address !== 'string' || isIP(address) === 0) throw new InvalidArgumentError(`not an IP address: ${JSON.stringify(address)}`)
  }
  const validityDays = options.validityDays ?? DEFAULT_CERTIFICATE_VALIDITY_DAYS
  if (!(Number.isFinite(validityDays) && validityDays > 0)) throw new InvalidArgumentError('validityDays must be a positive number')
  const notBefore = new Date(Math.floor((options.notBefore?.getTime() ?? Date.now() - 60 * 60 * 1000) / 1000) * 1000)
  const notAfter = new Date(notBefore.getTime() + Math.round(validityDays * DAY_MS))
  if (!Number.isFinite(notAfter.getTime()) || notAfter.getUTCFullYear() > 9999) throw new InvalidArgumentError('validity ends after the year 9999')

  const privateKey = loadKey(options.privateKey)
  const spki = privateKeyToSpki(privateKey)
  const serial = randomBytes(16)
  serial[0] = (serial[0]! & 0x7f) | 0x40 // positive (RFC 5280 §4.1.2.2), and a full 16 bytes
  const name = derSequence(derSet(derSequence(derOid(OID.commonName), derUtf8String(commonName))))
  const signatureAlgorithm = derSequence(derOid(OID.ecdsaWithSha256)) // parameters absent (RFC 5758 §3.2)

  const generalNames = [
    ...dnsNames.map((dns) => derImplicit(2, Buffer.from(dns, 'latin1'))), // dNSName [2] IA5String
    ...ipAddresses.map((ip) => derImplicit(7, ipAddressBytes(ip))), // iPAddress [7] OCTET STRING
  ]
  // The subjectPublicKey BIT STRING's bytes: SHA-1 of them is the key identifier (RFC 5280 §4.2.1.2 (1)).
  const publicKeyBits = readDerChildren(readDer(spki).contents)[1]!.contents.subarray(1)
  const extensions = [
    extension(OID.basicConstraints, true, derSequence()), // cA FALSE is the default, hence absent (DER)
    extension(OID.keyUsage, true, derNamedBits([0])), // digitalSignature (ECDHE-ECDSA)
    extension(OID.extKeyUsage, false, derSequence(derOid(OID.serverAuth))),
    extension(OID.subjectKeyIdentifier, false, derOctetString(createHash('sha1').update(publicKeyBits).digest())),
  ]
  // RFC 5280 §4.2.1.6: SAN is non-critical because the subject (a CN) is not empty.
  if (generalNames.length > 0) extensions.unshift(extension(OID.subjectAltName, false, derSequence(...generalNames)))

  const tbs = derSequence(
    derExplicit(0, derInteger(2)), // version v3
    derInteger(serial),
    signatureAlgorithm,
    name, // issuer = subject: self-signed
    derSequence(derTime(notBefore), derTime(notAfter)),
    name,
    spki,
    derExplicit(3, derSequence(...extensions)),
  )
  const signature = sign('sha256', tbs, privateKey) // ECDSA-Sig-Value, DER (the default dsaEncoding)
  const der = derSequence(tbs, signatureAlgorithm, derBitString(signature))
  return {
    cert: toPem('CERTIFICATE', der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    der,
    hash: createHash('sha256').update(der).digest('base64url'),
    notBefore,
    notAfter,
  }
}

/**
 * True when `key` (PEM) is the private key of `cert` (PEM).
 *
 * @throws `InvalidArgumentError` when either cannot be parsed.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises'
 * import { certificateMatchesKey } from 'peerlink/server'
 *
 * const cert = await readFile('cert.pem', 'utf8')
 * const key = await readFile('key.pem', 'utf8')
 * if (!certificateMatchesKey(cert, key)) throw new Error('key.pem is not the key of cert.pem')
 * ```
 */
export function certificateMatchesKey(cert: string, key: string): boolean {
  let certificate: X509Certificate
  let privateKey: KeyObject
  try {
    certificate = new X509Certificate(cert)
  } catch (err) {
    throw new InvalidArgumentError('not a PEM certificate', { cause: err })
  }
  try {
    privateKey = createPrivateKey(key)
  } catch {
    // No cause: the parser's message could quote key material.
    throw new InvalidArgumentError('not a PEM private key')
  }
  return certificate.checkPrivateKey(privateKey)
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? derSequence(derOid(oid), derBoolean(true), derOctetString(value)) : derSequence(derOid(oid), derOctetString(value))
}

function loadKey(key: KeyObject | string | undefined): KeyObject {
  if (key === undefined) return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  let object: KeyObject
  try {
    object = typeof key === 'string' ? createPrivateKey(key) : key
  } catch {
    throw new InvalidArgumentError('privateKey is not a PEM private key')
  }
  if (object.type !== 'private' || object.asymmetricKeyType !== 'ec' || object.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new InvalidArgumentError('privateKey must be an ECDSA P-256 private key')
  }
  return object
}

function privateKeyToSpki(privateKey: KeyObject): Buffer {
  // createPublicKey accepts a private KeyObject and derives its public half.
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
}

function toPem(label: string, der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
