import { execFile } from 'node:child_process'
import { X509Certificate, createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  certificateHash,
  checkCertificatePin,
  connectTlsPinned,
  parseCertificateHash,
  pinnedCertificateCheck,
  verifyCertificatePin,
} from '../../src/cert-pin.js'
import { CertificatePinMismatchError } from '../../src/errors.js'
import { readDer, readDerChildren } from '../../src/server/der.js'
import { certificateMatchesKey, createSelfSignedCertificate } from '../../src/server/tls.js'

const certificate = createSelfSignedCertificate({
  dnsNames: ['localhost', 'turn.example.com'],
  ipAddresses: ['127.0.0.1', '::1', '2001:db8::5'],
})

describe('createSelfSignedCertificate', () => {
  it('makes a certificate node:crypto parses, self-verifies and matches for its names', () => {
    const x509 = new X509Certificate(certificate.cert)
    expect(x509.verify(x509.publicKey)).toBe(true)
    // keyUsage has no keyCertSign: it cannot issue certificates, not even (as a CA would) itself.
    expect(x509.checkIssued(x509)).toBe(false)
    expect(x509.subject).toBe('CN=peerlink-server')
    expect(x509.issuer).toBe('CN=peerlink-server')
    expect(x509.ca).toBe(false)
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']) // Node reports extKeyUsage here
    expect(x509.checkHost('turn.example.com')).toBe('turn.example.com')
    expect(x509.checkHost('localhost')).toBe('localhost')
    expect(x509.checkHost('other.example.com')).toBeUndefined()
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(x509.checkIP('2001:db8::5')).toBe('2001:db8::5')
    expect(x509.checkIP('10.0.0.1')).toBeUndefined()
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(x509.raw.equals(certificate.der)).toBe(true)
    expect(certificateMatchesKey(certificate.cert, certificate.key)).toBe(true)
  })

  it('is valid from an hour ago for ten years', () => {
    const x509 = new X509Certificate(certificate.cert)
    const from = new Date(x509.validFrom).getTime()
    const to = new Date(x509.validTo).getTime()
    expect(Date.now() - from).toBeGreaterThan(59 * 60 * 1000)
    expect(Date.now() - from).toBeLessThan(61 * 60 * 1000)
    expect(to - from).toBe(3650 * 24 * 60 * 60 * 1000)
    expect(from).toBe(certificate.notBefore.getTime())
    expect(to).toBe(certificate.notAfter.getTime())
  })

  it('has a positive random 16-byte serial and a fresh key each time', () => {
    const other = createSelfSignedCertificate()
    const serials = [certificate, other].map((c) => new X509Certificate(c.cert).serialNumber)
    for (const serial of serials) {
      expect(serial).toMatch(/^[0-9A-F]{32}$/)
      expect(parseInt(serial[0]!, 16) & 0x8).toBe(0)
    }
    expect(serials[0]).not.toBe(serials[1])
    expect(other.hash).not.toBe(certificate.hash)
    expect(certificateMatchesKey(certificate.cert, other.key)).toBe(false)
  })

  it('has the extensions OpenSSL expects of a server certificate', async () => {
    const { stdout } = await runOpenssl(['x509', '-noout', '-text', '-ext', 'basicConstraints,keyUsage,extendedKeyUsage,subjectAltName'], certificate.cert)
    expect(stdout).toMatch(/Basic Constraints: critical\s+CA:FALSE/)
    expect(stdout).toMatch(/Key Usage: critical\s+Digital Signature/)
    expect(stdout).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication/)
    expect(stdout).toMatch(/DNS:localhost, DNS:turn\.example\.com, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:5/)
    const text = (await runOpenssl(['x509', '-noout', '-text'], certificate.cert)).stdout
    expect(text).toMatch(/Version: 3 \(0x2\)/)
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/)
    expect(text).toMatch(/ASN1 OID: prime256v1/)
    // And OpenSSL accepts it as its own trust anchor for the TLS server purpose.
    const dir = await mkdtemp(join(tmpdir(), 'peerlink-tls-'))
    try {
      const file = join(dir, 'cert.pem')
      await writeFile(file, certificate.cert)
      const verify = await runOpenssl(['verify', '-CAfile', file, '-purpose', 'sslserver', file], '')
      expect(verify.stdout.trim()).toBe(`${file}: OK`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('uses the SPKI of the key, and a subjectKeyIdentifier that is SHA-1 of the key bits', async () => {
    const spki = createPublicKey(certificate.key).export({ type: 'spki', format: 'der' })
    const tbs = readDerChildren(readDer(certificate.der).contents)[0]!
    const fields = readDerChildren(tbs.contents)
    expect(fields[6]!.encoded.equals(spki)).toBe(true)
    const keyBits = readDerChildren(readDer(spki).contents)[1]!.contents.subarray(1)
    const ski = createHash('sha1').update(keyBits).digest('hex')
    const { stdout } = await runOpenssl(['x509', '-noout', '-ext', 'subjectKeyIdentifier'], certificate.cert)
    expect(stdout.replace(/[\s:]/g, '').toLowerCase()).toContain(ski)
  })

  it('certifies a given P-256 key, and refuses other keys and bad names', () => {
    const again = createSelfSignedCertificate({ privateKey: certificate.key })
    expect(certificateMatchesKey(again.cert, certificate.key)).toBe(true)
    const ed = generateKeyPairSync('ed25519').privateKey
    expect(() => createSelfSignedCertificate({ privateKey: ed })).toThrow(/P-256/)
    expect(() => createSelfSignedCertificate({ privateKey: 'garbage' })).toThrow(/PEM private key/)
    expect(() => createSelfSignedCertificate({ dnsNames: ['bad name'] })).toThrow(/DNS name/)
    expect(() => createSelfSignedCertificate({ ipAddresses: ['300.1.1.1'] })).toThrow(/IP address/)
    expect(() => createSelfSignedCertificate({ validityDays: 0 })).toThrow(/validityDays/)
    expect(() => createSelfSignedCertificate({ commonName: '' })).toThrow(/commonName/)
  })

  it('encodes validity past 2049 as GeneralizedTime, which node reads back', () => {
    const late = createSelfSignedCertificate({ notBefore: new Date('2045-06-01T00:00:00Z'), validityDays: 3650 })
    expect(new Date(new X509Certificate(late.cert).validTo).toISOString()).toBe('2055-05-30T00:00:00.000Z')
  })
})

describe('certificate hashes (pins)', () => {
  it('is base64url(SHA-256(DER)), the same from PEM or DER', () => {
    const expected = createHash('sha256').update(certificate.der).digest('base64url')
    expect(certificate.hash).toBe(expected)
    expect(certificateHash(certificate.cert)).toBe(expected)
    expect(certificateHash(certificate.der)).toBe(expected)
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(() => certificateHash('not a certificate')).toThrow(/X\.509/)
  })

  it('parses pins strictly', () => {
    expect(parseCertificateHash(certificate.hash).byteLength).toBe(32)
    for (const bad of ['', 'abc', `${certificate.hash}=`, certificate.hash.slice(0, 42) + '+', 'A'.repeat(42) + 'B']) {
      expect(() => parseCertificateHash(bad)).toThrow(/43 base64url/)
    }
    expect(() => pinnedCertificateCheck('nope')).toThrow(/43 base64url/)
  })

  it('checkCertificatePin: undefined on a match, a typed error otherwise', () => {
    expect(checkCertificatePin(certificate.der, certificate.hash)).toBeUndefined()
    const other = createSelfSignedCertificate()
    const mismatch = checkCertificatePin(other.der, certificate.hash)
    expect(mismatch).toBeInstanceOf(CertificatePinMismatchError)
    expect(mismatch).toMatchObject({ code: 'ERR_CERT_PIN_MISMATCH', expected: certificate.hash, actual: other.hash })
    expect(checkCertificatePin(undefined, certificate.hash)?.code).toBe('ERR_CERT_PIN_MISMATCH')
  })
})

describe('serving TLS with the certificate (node:tls, 127.0.0.1)', () => {
  let server: tls.Server
  let port: number

  beforeAll(async () => {
    server = tls.createServer({ cert: certificate.cert, key: certificate.key }, (socket) => {
      socket.end('hello from the pinned server\n')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  async function read(socket: tls.TLSSocket): Promise<string> {
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()))
    await once(socket, 'close')
    return text
  }

  it('a client trusting the certificate (ca) verifies it by name and by pin', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: certificate.cert })
    await once(socket, 'secureConnect')
    expect(socket.authorized).toBe(true)
    expect(socket.getProtocol()).toBe('TLSv1.3')
    expect(() => verifyCertificatePin(socket, certificate.hash)).not.toThrow()
    expect(await read(socket)).toBe('hello from the pinned server\n')

    const pinned = tls.connect({ host: '127.0.0.1', port, ca: certificate.cert, checkServerIdentity: pinnedCertificateCheck(certificate.hash) })
    await once(pinned, 'secureConnect')
    expect(pinned.authorized).toBe(true)
    expect(await read(pinned)).toBe('hello from the pinned server\n')
  })

  it('pinnedCertificateCheck rejects another certificate when the chain verifies', async () => {
    const wrong = createSelfSignedCertificate().hash
    const socket = tls.connect({ host: '127.0.0.1', port, ca: certificate.cert, checkServerIdentity: pinnedCertificateCheck(wrong) })
    const [err] = (await once(socket, 'error')) as [Error]
    expect(err).toBeInstanceOf(CertificatePinMismatchError)
    socket.destroy()
  })

  it('documents why: with rejectUnauthorized false, node never calls checkServerIdentity for a self-signed certificate', async () => {
    let called = false
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      checkServerIdentity: () => {
        called = true
        return new Error('never reached')
      },
    })
    await once(socket, 'secureConnect')
    expect(socket.authorized).toBe(false)
    expect(socket.authorizationError).toMatch(/SELF_SIGNED/)
    expect(called).toBe(false) // so a pin must be checked after the handshake: connectTlsPinned
    await read(socket)
  })

  it('connectTlsPinned accepts the pinned certificate without any CA', async () => {
    const socket = await connectTlsPinned({ host: '127.0.0.1', port, certHash: certificate.hash })
    expect(await read(socket)).toBe('hello from the pinned server\n')
  })

  it('connectTlsPinned refuses a different certificate with ERR_CERT_PIN_MISMATCH', async () => {
    const wrong = createSelfSignedCertificate().hash
    const error = await connectTlsPinned({ host: '127.0.0.1', port, certHash: wrong }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(CertificatePinMismatchError)
    expect(error).toMatchObject({ expected: wrong, actual: certificate.hash })
  })

  it('connectTlsPinned: a bad pin throws at once, refusal and abort reject with codes', async () => {
    await expect(connectTlsPinned({ host: '127.0.0.1', port, certHash: 'short' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    const closed = tls.createServer({ cert: certificate.cert, key: certificate.key })
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const freePort = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    await expect(connectTlsPinned({ host: '127.0.0.1', port: freePort, certHash: certificate.hash })).rejects.toMatchObject({
      code: 'ERR_CONNECT_FAILED',
    })
    const controller = new AbortController()
    const pending = connectTlsPinned({ host: '127.0.0.1', port, certHash: certificate.hash, signal: controller.signal })
    controller.abort()
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })
})

function runOpenssl(args: string[], input: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(Object.assign(error, { stdout, stderr }))
      else resolve({ stdout, stderr })
    })
    child.stdin!.end(input)
  })
}
