import { describe, expect, it } from 'vitest'
import { VerifiedInterner } from '../../src/server/verified-interner.js'
import type { Identity } from '../../src/sts/get-caller-identity.js'

const identity = (over: Partial<Identity> = {}): Identity => ({
  arn: 'arn:aws:sts::111122223333:assumed-role/Dev/alice',
  canonicalArn: 'arn:aws:iam::111122223333:role/Dev',
  accountId: '111122223333',
  userId: 'AROADEV',
  sessionName: 'alice',
  accessKeyId: 'ASIAALICE00000000001',
  stsEndpoint: 'sts.us-west-2.amazonaws.com',
  ...over,
})

describe('VerifiedInterner', () => {
  it('gives every equal verification (the tokens of one credential) one shared object', () => {
    const interner = new VerifiedInterner(10)
    const first = interner.intern({ identity: identity(), clusterId: 'blue' })
    const again = interner.intern({ identity: identity(), clusterId: 'blue' })
    expect(again).toBe(first)
    expect(interner.size).toBe(1)
  })

  it.each<[string, Partial<Identity>, string]>([
    ['another cluster ID', {}, 'green'],
    ['another session of the same key (not possible from STS, but never merged)', { sessionName: 'bob' }, 'blue'],
    ['another ARN', { arn: 'arn:aws:sts::111122223333:assumed-role/Ops/alice' }, 'blue'],
    ['another principal ID', { userId: 'AROAOTHER' }, 'blue'],
    ['another STS host', { stsEndpoint: 'sts.eu-west-1.amazonaws.com' }, 'blue'],
  ])('never shares across %s', (_what, over, clusterId) => {
    const interner = new VerifiedInterner(10)
    const base = interner.intern({ identity: identity(), clusterId: 'blue' })
    const other = { identity: identity(over), clusterId }
    expect(interner.intern(other)).toBe(other)
    expect(interner.intern(other)).not.toBe(base)
  })

  it('keys by access key ID: distinct credentials are distinct objects; the least recently used is forgotten beyond the bound', () => {
    const interner = new VerifiedInterner(2)
    const a = interner.intern({ identity: identity({ accessKeyId: 'AKIAA' }), clusterId: 'c' })
    const b = interner.intern({ identity: identity({ accessKeyId: 'AKIAB' }), clusterId: 'c' })
    expect(a).not.toBe(b)
    expect(interner.intern({ identity: identity({ accessKeyId: 'AKIAA' }), clusterId: 'c' })).toBe(a) // a used last
    interner.intern({ identity: identity({ accessKeyId: 'AKIAC' }), clusterId: 'c' }) // b forgotten
    expect(interner.size).toBe(2)
    expect(interner.intern({ identity: identity({ accessKeyId: 'AKIAA' }), clusterId: 'c' })).toBe(a)
    const b2 = { identity: identity({ accessKeyId: 'AKIAB' }), clusterId: 'c' }
    expect(interner.intern(b2)).toBe(b2)
  })

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new VerifiedInterner(0)).toThrow(TypeError)
  })
})
