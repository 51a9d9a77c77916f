import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../../src/errors.js'
import { PeerAddressPolicy } from '../../../src/server/turn/peer-address-policy.js'

describe('PeerAddressPolicy', () => {
  const policy = new PeerAddressPolicy()

  it('refuses the issue list and every range of the default deny list', () => {
    for (const address of [
      '127.0.0.1', '127.255.0.9', '0.0.0.0', '0.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1',
      '100.64.0.1', '100.127.255.254', '169.254.169.254', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
      '192.0.0.8', '198.18.0.1',
      '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1', 'fec0::1', '100::1', '2001:db8::1',
      // IPv6 forms that embed a denied IPv4 address
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::ffff:0.0.0.0',
      '::127.0.0.1', '::ffff:0:127.0.0.1', '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::1',
      // 6to4 and Teredo embed IPv4 addresses: refused wholesale
      '2002:7f00:1::1', '2002:808:808::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    ]) {
      expect([address, policy.isAllowed(address)]).toEqual([address, false])
    }
  })

  it('allows public addresses, also in their mapped and NAT64 forms', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.32.0.1', '2a00:1450:4001::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2606:4700::1111']) {
      expect([address, policy.isAllowed(address)]).toEqual([address, true])
    }
  })

  it('refuses text that is not an IP address', () => {
    expect(policy.isAllowed('localhost')).toBe(false)
    expect(policy.isAllowed('')).toBe(false)
  })

  it('lets allowed ranges win over denied ones, in every range form', () => {
    const p = new PeerAddressPolicy({ allowed: ['10.1.0.0/16', '192.168.1.10-192.168.1.20', '169.254.169.254', 'fd00::/8'], denied: ['8.8.8.0/24', '1.1.1.1-1.1.1.3', '2606:4700::1111'] })
    expect(p.isAllowed('10.1.2.3')).toBe(true)
    expect(p.isAllowed('10.2.0.1')).toBe(false)
    expect(p.isAllowed('192.168.1.15')).toBe(true)
    expect(p.isAllowed('192.168.1.21')).toBe(false)
    expect(p.isAllowed('169.254.169.254')).toBe(true)
    expect(p.isAllowed('169.254.169.253')).toBe(false)
    expect(p.isAllowed('fd00::5')).toBe(true)
    expect(p.isAllowed('8.8.8.8')).toBe(false)
    expect(p.isAllowed('1.1.1.2')).toBe(false)
    expect(p.isAllowed('1.1.1.4')).toBe(true)
    expect(p.isAllowed('2606:4700::1111')).toBe(false)
  })

  it('allows loopback (and only loopback) with allowLoopback', () => {
    const p = new PeerAddressPolicy({ allowLoopback: true })
    expect(p.isAllowed('127.0.0.1')).toBe(true)
    expect(p.isAllowed('127.3.2.1')).toBe(true)
    expect(p.isAllowed('::1')).toBe(true)
    expect(p.isAllowed('::ffff:127.0.0.1')).toBe(true)
    expect(p.isAllowed('::')).toBe(false)
    expect(p.isAllowed('0.0.0.0')).toBe(false)
    expect(p.isAllowed('10.0.0.1')).toBe(false)
  })

  it('can start from an empty deny list', () => {
    expect(new PeerAddressPolicy({ defaultDenied: false }).isAllowed('127.0.0.1')).toBe(true)
  })

  it('rejects malformed ranges at once', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', 'nope', '10.0.0.1-::1', '::/129', '1.2.3']) {
      expect(() => new PeerAddressPolicy({ denied: [bad] }), bad).toThrow(InvalidArgumentError)
    }
  })
})
