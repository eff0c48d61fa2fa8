// Unit tests of the server's small stateful parts, with an injected clock.
import { describe, expect, it } from 'vitest'
import { IdentityCache } from '../../src/server/identity-cache.js'
import { CallerRateLimiter } from '../../src/server/rate-limit.js'
import { identityOf } from '../support/identities.js'

const id = identityOf('arn:aws:iam::111122223333:user/alice')

describe('CallerRateLimiter', () => {
  it('allows the burst, then the rate, per caller', () => {
    let t = 0
    const rl = new CallerRateLimiter({ perSecond: 2, burst: 3, now: () => t })
    expect([1, 2, 3, 4].map(() => rl.take('a'))).toEqual([true, true, true, false])
    expect(rl.take('b')).toBe(true)
    t += 500
    expect([rl.take('a'), rl.take('a')]).toEqual([true, false])
  })

  it('does not drain when the clock steps back, and 0 disables it', () => {
    let t = 10_000
    const rl = new CallerRateLimiter({ perSecond: 1, burst: 2, now: () => t })
    rl.take('a')
    t = 0
    expect(rl.take('a')).toBe(true)
    const off = new CallerRateLimiter({ perSecond: 0, burst: 1, now: () => 0 })
    expect(Array.from({ length: 100 }, () => off.take('a')).every(Boolean)).toBe(true)
  })

  it('forgets the least recently seen callers beyond its bound', () => {
    const rl = new CallerRateLimiter({ perSecond: 0.0001, burst: 1, now: () => 0, maxCallers: 2 })
    expect([rl.take('a'), rl.take('b'), rl.take('c')]).toEqual([true, true, true])
    expect(rl.take('a')).toBe(true) // 'a' was forgotten: a fresh bucket
    expect(rl.take('c')).toBe(false)
  })
})

describe('IdentityCache', () => {
  it('expires entries at the token expiry or the TTL, whichever is first', async () => {
    let t = 0
    const cache = new IdentityCache({ maxEntries: 10, ttlMs: 1000, now: () => t })
    await cache.getOrLoad('k', async () => ({ identity: id, validUntil: 500 }))
    t = 499
    expect(cache.get('k')).toBe(id)
    t = 500
    expect(cache.get('k')).toBeUndefined()
    await cache.getOrLoad('k2', async () => ({ identity: id, validUntil: 10_000 }))
    t = 1500
    expect(cache.get('k2')).toBeUndefined()
  })

  it('is a bounded LRU and shares one load between concurrent callers; failures are not cached', async () => {
    const cache = new IdentityCache({ maxEntries: 2, ttlMs: 60_000, now: () => 0 })
    let loads = 0
    const load = async () => {
      loads++
      await new Promise((r) => setTimeout(r, 10))
      return { identity: id, validUntil: 60_000 }
    }
    const results = await Promise.all([
      cache.getOrLoad('a', load),
      cache.getOrLoad('a', load),
      cache.getOrLoad('a', load),
    ])
    expect(loads).toBe(1)
    expect(results.map((r) => r.source).sort()).toEqual(['miss', 'shared', 'shared'])
    await cache.getOrLoad('b', load)
    cache.get('a') // a is now the most recently used
    await cache.getOrLoad('c', load)
    expect(cache.size).toBe(2)
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toBe(id)
    await expect(cache.getOrLoad('d', async () => Promise.reject(new Error('sts down')))).rejects.toThrow('sts down')
    await cache.getOrLoad('d', load)
    expect(cache.get('d')).toBe(id)
  })
})

describe('what a cached identity keeps alive', () => {
  it('not the token it was read from: under 1,000 bytes each (identity and confirmed credential), with a 600-character session token', async () => {
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const { presignToken } = await import('../../src/token/presign.js')
    const { parsePresignedToken } = await import('../../src/token/parse.js')
    const { processCallerIdentityResponse } = await import('../../src/sts/get-caller-identity.js')
    const { credentialOf, StsVerdicts } = await import('../../src/server/sts-verdicts.js')
    const { tokenKey } = await import('../../src/server/authenticator.js')
    const now = new Date()
    const n = 2000
    const cache = new IdentityCache({ maxEntries: n, ttlMs: 900_000, now: Date.now })
    let verdicts: InstanceType<typeof StsVerdicts> | undefined = new StsVerdicts({ now: Date.now })
    for (let i = 0; i < n; i++) {
      const { token } = await presignToken({
        clusterId: 'c',
        region: 'us-west-2',
        credentials: {
          accessKeyId: `ASIA${String(i).padStart(16, '0')}`,
          secretAccessKey: 's',
          sessionToken: 'Q'.repeat(600),
        },
        now,
      })
      const req = parsePresignedToken(token, { partition: 'aws', now })
      const body = JSON.stringify({
        GetCallerIdentityResponse: {
          GetCallerIdentityResult: {
            Arn: `arn:aws:iam::123456789012:user/u${i}`,
            UserId: `AIDA${i}`,
            Account: '123456789012',
          },
        },
      })
      const identity = processCallerIdentityResponse({ status: 200, contentType: 'application/json', body }, req)
      await cache.getOrLoad(tokenKey(token), async () => ({ identity, validUntil: Date.now() + 900_000 }))
      verdicts.confirm(credentialOf(req), 'c')
    }
    expect(verdicts.confirmedCount).toBe(n)
    gc()
    gc()
    const full = process.memoryUsage().heapUsed
    cache.clear()
    verdicts = undefined // and the confirmed credentials
    gc()
    gc()
    const bytesEach = (full - process.memoryUsage().heapUsed) / n
    // a view of the token's URL would keep about 1,300 bytes more each
    expect(bytesEach).toBeLessThan(1_000)
  })
})
