import { describe, expect, it } from 'vitest'
import { TOKEN_PREFIX } from '../../src/token/format.js'
import { presignToken } from '../../src/token/presign.js'

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8')
// upstream's known-answer vector (pkg/token/token_test.go TestGetWithSTS), recomputed independently
const VECTOR = {
  accessKeyId: b64('QVNJQVIyVEc0NFY2QVMzWlpFN0M='),
  secretAccessKey: b64('NEtENWNudEdjVm1MV1JkRjV3dk5SdXpOTDVReG1wNk9LVlk2RnovUQ=='),
  now: new Date(1682640000 * 1000),
  url:
    'https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256' +
    '&X-Amz-Credential=ASIAR2TG44V6AS3ZZE7C%2F20230428%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20230428T000000Z' +
    '&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id' +
    '&X-Amz-Signature=e211dba77aba9dc44b0b6be38b8eaad092599c5157f6314444c5b9d85747f5ce',
}

const decode = (token: string) => Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString()

describe('presignToken', () => {
  it('reproduces the upstream known-answer vector byte for byte', async () => {
    const { token, expiresAt } = await presignToken({
      clusterId: 'test-cluster',
      region: 'us-west-2',
      credentials: { accessKeyId: VECTOR.accessKeyId, secretAccessKey: VECTOR.secretAccessKey },
      now: VECTOR.now,
    })
    expect(decode(token)).toBe(VECTOR.url)
    expect(token).toBe(TOKEN_PREFIX + Buffer.from(VECTOR.url).toString('base64url'))
    expect(expiresAt.toISOString()).toBe('2023-04-28T00:14:00.000Z')
  })

  it('signs a different signature for another cluster', async () => {
    const { token } = await presignToken({
      clusterId: 'other-cluster',
      region: 'us-west-2',
      credentials: { accessKeyId: VECTOR.accessKeyId, secretAccessKey: VECTOR.secretAccessKey },
      now: VECTOR.now,
    })
    expect(decode(token)).not.toBe(VECTOR.url)
    expect(decode(token).replace(/Signature=.*/, '')).toBe(VECTOR.url.replace(/Signature=.*/, ''))
  })

  it('puts the session token between X-Amz-Expires and X-Amz-SignedHeaders, canonically encoded', async () => {
    const { token } = await presignToken({
      clusterId: 'c',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE12', secretAccessKey: 'x', sessionToken: 'a+b/c=' },
      now: VECTOR.now,
    })
    const url = decode(token)
    expect(url).toMatch(
      /^https:\/\/sts\.eu-west-1\.amazonaws\.com\/\?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLEEXAMPLE12%2F20230428%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date=20230428T000000Z&X-Amz-Expires=60&X-Amz-Security-Token=a%2Bb%2Fc%3D&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=[0-9a-f]{64}$/,
    )
  })

  it('signs aws-global for sts.amazonaws.com with scope us-east-1', async () => {
    const { token } = await presignToken({
      clusterId: 'c',
      region: 'aws-global',
      credentials: { accessKeyId: 'AKIAEXAMPLEEXAMPLE12', secretAccessKey: 'x' },
      now: VECTOR.now,
    })
    expect(decode(token)).toContain('https://sts.amazonaws.com/?')
    expect(decode(token)).toContain('%2F20230428%2Fus-east-1%2Fsts%2F')
  })

  it('never claims a lifetime beyond the signing credentials', async () => {
    const credsExpire = new Date(VECTOR.now.getTime() + 5 * 60 * 1000)
    const { expiresAt } = await presignToken({
      clusterId: 'c',
      region: 'us-west-2',
      credentials: {
        accessKeyId: 'ASIAEXAMPLEEXAMPLE12',
        secretAccessKey: 'x',
        sessionToken: 't',
        expiration: credsExpire,
      },
      now: VECTOR.now,
    })
    expect(expiresAt).toEqual(credsExpire)
  })
})
