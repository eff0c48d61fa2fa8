// Property tests: random mutations of valid tokens, verified end to end with the real transport
// against the fake STS (which really checks SigV4). Whatever the mutation, the verifier either
// refuses the token (TokenInvalid locally, StsRejected by STS) or returns exactly the identity of
// the original token: never another identity, never another kind of error.

import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StsRejected, TokenInvalid } from '../../src/shared/errors.js'
import type { Identity } from '../../src/sts/get-caller-identity.js'
import { createStsTransport } from '../../src/sts/transport.js'
import { parsePresignedToken } from '../../src/token/parse.js'
import { verifyToken } from '../../src/sts/verify.js'
import { type FakeSts, type FakeStsPrincipal, startFakeSts } from '../support/fake-sts.js'
import { ALICE, CLUSTER_ID, NOW, NOW_AMZ, TEMP, fromToken, presignedToken, toToken } from '../support/tokens.js'

const RUNS = { numRuns: 300 }

/** A second known principal, so that credential swaps name a key STS does know. */
const BOB: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTBOB000001',
  secretAccessKey: 'bob/secret+key/ABCDEFGHIJKLMNOPQRSTUVWX',
  arn: 'arn:aws:iam::777788889999:user/bob',
  account: '777788889999',
  userId: 'AIDAKIATESTBOB000001',
}

interface Base {
  readonly name: string
  readonly token: string
  readonly url: string
  readonly identity: Identity
}

type Outcome = { ok: true; identity: Identity } | { ok: false; err: unknown }

const stats = { accepted: 0, tokenInvalid: 0, stsRejected: 0 }

let fake: FakeSts
let transport: ReturnType<typeof createStsTransport>
let bases: Base[]

async function verify(token: string): Promise<Outcome> {
  try {
    const identity = await verifyToken(
      token,
      { clusterId: CLUSTER_ID, partition: 'aws', stsEndpoint: fake.url, timeoutMs: 5_000 },
      { now: () => NOW, sts: transport.send },
    )
    return { ok: true, identity }
  } catch (err) {
    return { ok: false, err }
  }
}

/** The invariant: a refusal of an expected kind, or the original identity, field for field. */
function judge(base: Base, token: string, outcome: Outcome): void {
  if (outcome.ok) {
    stats.accepted++
    const { arn, accountId, userId, accessKeyId } = outcome.identity
    expect({ arn, accountId, userId, accessKeyId }, fromToken(token)).toEqual({
      arn: base.identity.arn,
      accountId: base.identity.accountId,
      userId: base.identity.userId,
      accessKeyId: base.identity.accessKeyId,
    })
    expect(outcome.identity).toEqual(base.identity)
    return
  }
  if (outcome.err instanceof TokenInvalid) stats.tokenInvalid++
  else if (outcome.err instanceof StsRejected) stats.stsRejected++
  else
    throw new Error(`unexpected error for mutated ${base.name} token: ${String(outcome.err)}`, { cause: outcome.err })
}

// ---- mutations --------------------------------------------------------------------------------

const baseIndex = fc.integer({ min: 0, max: 1 })
const latin1 = (s: string) => Buffer.from(s, 'latin1')

function splitQuery(url: string): { head: string; pairs: string[] } {
  const q = url.indexOf('?')
  return { head: url.slice(0, q + 1), pairs: url.slice(q + 1).split('&') }
}

function randomCase(s: string, mask: readonly boolean[]): string {
  return [...s].map((c, i) => (mask[i % Math.max(mask.length, 1)] ? c.toUpperCase() : c.toLowerCase())).join('')
}

const byteFlip = fc
  .record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) })
  .map(({ at, byte }) => (url: string): Uint8Array | string => {
    const bytes = latin1(url)
    bytes[at % bytes.length] = byte
    return bytes
  })

const sameClassSubstitution = fc.record({ at: fc.nat(), pick: fc.nat() }).map(({ at, pick }) => (url: string) => {
  const i = at % url.length
  const c = url[i]!
  const pool = /[0-9]/.test(c)
    ? '0123456789'
    : /[a-f]/.test(c)
      ? 'abcdef'
      : /[a-z]/.test(c)
        ? 'abcdefghijklmnopqrstuvwxyz'
        : /[A-Z]/.test(c)
          ? 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
          : c
  return url.slice(0, i) + pool[pick % pool.length]! + url.slice(i + 1)
})

const insertion = fc
  .record({ at: fc.nat(), s: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 8 }) })
  .map(({ at, s }) => (url: string) => {
    const i = at % (url.length + 1)
    return url.slice(0, i) + s + url.slice(i)
  })

const deletion = fc.record({ at: fc.nat(), n: fc.integer({ min: 1, max: 24 }) }).map(({ at, n }) => (url: string) => {
  const i = at % url.length
  return url.slice(0, i) + url.slice(i + n)
})

const duplication = fc
  .record({
    which: fc.nat(),
    where: fc.nat(),
    mask: fc.array(fc.boolean(), { minLength: 1, maxLength: 24 }),
    value: fc.constantFrom('same', 'other', 'eve'),
  })
  .map(({ which, where, mask, value }) => (url: string) => {
    const { head, pairs } = splitQuery(url)
    const pair = pairs[which % pairs.length]!
    const eq = pair.indexOf('=')
    const other = pairs[(which + 1) % pairs.length]!
    const v = value === 'same' ? pair.slice(eq + 1) : value === 'other' ? other.slice(other.indexOf('=') + 1) : 'eve'
    const copy = `${randomCase(pair.slice(0, eq), mask)}=${v}`
    const out = [...pairs]
    out.splice(where % (pairs.length + 1), 0, copy)
    return head + out.join('&')
  })

const reorder = fc.array(fc.double({ noNaN: true }), { minLength: 16, maxLength: 16 }).map((keys) => (url: string) => {
  const { head, pairs } = splitQuery(url)
  const order = pairs.map((p, i) => ({ p, k: keys[i % keys.length]! + i * 1e-9 })).sort((a, b) => a.k - b.k)
  return head + order.map((o) => o.p).join('&')
})

const percentChange = fc
  .record({ at: fc.nat(), kind: fc.integer({ min: 0, max: 4 }) })
  .map(({ at, kind }) => (url: string) => {
    const q = url.indexOf('?') + 1
    const i = q + (at % (url.length - q))
    const c = url[i]!
    const hex = c.charCodeAt(0).toString(16).padStart(2, '0')
    switch (kind) {
      case 0: // encode a literal character, upper-case hex
        return url.slice(0, i) + `%${hex.toUpperCase()}` + url.slice(i + 1)
      case 1: // encode a literal character, lower-case hex
        return url.slice(0, i) + `%${hex.toLowerCase()}` + url.slice(i + 1)
      default: {
        const esc = url.indexOf('%', i) === -1 ? url.indexOf('%', q) : url.indexOf('%', i)
        if (esc === -1) return url
        const seq = url.slice(esc, esc + 3)
        const literal = String.fromCharCode(parseInt(seq.slice(1), 16))
        if (kind === 2) return url.slice(0, esc) + literal + url.slice(esc + 3) // decode an escape
        if (kind === 3) return url.slice(0, esc) + seq.toLowerCase() + url.slice(esc + 3) // lower-case an escape
        return url.slice(0, esc) + '%25' + url.slice(esc + 1) // double-encode
      }
    }
  })

const credentialSwap = fc
  .constantFrom(ALICE, TEMP, BOB)
  .map((p) => (url: string) => url.replace(/X-Amz-Credential=[A-Z0-9]+%2F/, `X-Amz-Credential=${p.accessKeyId}%2F`))

type UrlMutation = (url: string) => Uint8Array | string
const urlMutation: fc.Arbitrary<UrlMutation> = fc.oneof(
  byteFlip,
  sameClassSubstitution,
  insertion,
  deletion,
  duplication,
  reorder,
  percentChange,
  credentialSwap,
)

/** Changes in the base64url text itself (the decoded bytes are not what is targeted). */
const base64Change = fc
  .record({ at: fc.nat(), kind: fc.integer({ min: 0, max: 6 }), pick: fc.nat() })
  .map(({ at, kind, pick }) => (token: string): string => {
    const prefix = 'k8s-aws-v1.'
    const body = token.slice(prefix.length)
    const i = at % body.length
    const set = (s: string) => prefix + body.slice(0, i) + s + body.slice(i + 1)
    const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    switch (kind) {
      case 0:
        return prefix + body.replaceAll('-', '+').replaceAll('_', '/')
      case 1:
        return `${token}${'='.repeat(1 + (pick % 2))}`
      case 2:
        return prefix + body.slice(0, i) + [' ', '\n', '\r\n', '\t'][pick % 4]! + body.slice(i)
      case 3: {
        const c = body[i]!
        return set(c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())
      }
      case 4:
        return set(B64URL[pick % 64]!)
      case 5:
        return prefix + Buffer.from(body, 'base64url').toString('base64')
      default:
        return prefix + body.slice(0, i)
    }
  })

// ---- properties -------------------------------------------------------------------------------

beforeAll(async () => {
  fake = await startFakeSts({ now: () => NOW, principals: [ALICE, TEMP, BOB] })
  transport = createStsTransport({ maxConnections: 4 })
  bases = []
  for (const [name, principal] of [
    ['alice', ALICE],
    ['temp', TEMP],
  ] as const) {
    const token = await presignedToken({ principal })
    const outcome = await verify(token)
    if (!outcome.ok) throw new Error(`the unmutated ${name} token does not verify: ${String(outcome.err)}`)
    bases.push({ name, token, url: fromToken(token), identity: outcome.identity })
  }
})

afterAll(async () => {
  await transport?.close()
  await fake?.close()
})

describe('verifyToken on mutated tokens: a refusal or the original identity', () => {
  it('the originals verify as their own principals', () => {
    expect(bases.map((b) => [b.identity.arn, b.identity.accessKeyId])).toEqual([
      [ALICE.arn, ALICE.accessKeyId],
      [TEMP.arn, TEMP.accessKeyId],
    ])
  })

  it('one random mutation of the decoded URL', async () => {
    await fc.assert(
      fc.asyncProperty(baseIndex, urlMutation, async (b, mutate) => {
        const base = bases[b]!
        const token = toToken(mutate(base.url))
        judge(base, token, await verify(token))
      }),
      RUNS,
    )
  })

  it('a chain of one to four mutations of the decoded URL', async () => {
    await fc.assert(
      fc.asyncProperty(baseIndex, fc.array(urlMutation, { minLength: 1, maxLength: 4 }), async (b, mutations) => {
        const base = bases[b]!
        let url = base.url
        for (const m of mutations) {
          const next = m(url)
          url = typeof next === 'string' ? next : Buffer.from(next).toString('latin1')
        }
        const token = toToken(latin1(url))
        judge(base, token, await verify(token))
      }),
      RUNS,
    )
  })

  it('a parameter duplicated under a random letter case is always refused locally', async () => {
    await fc.assert(
      fc.asyncProperty(baseIndex, duplication, async (b, mutate) => {
        const base = bases[b]!
        const outcome = await verify(toToken(mutate(base.url)))
        expect(outcome.ok).toBe(false)
        expect((outcome as { err: unknown }).err).toBeInstanceOf(TokenInvalid)
        expect(['param', 'duplicate']).toContain(((outcome as { err: unknown }).err as TokenInvalid).check)
      }),
      RUNS,
    )
  })

  it('re-ordering the parameters keeps the token valid and the identity unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(baseIndex, reorder, async (b, mutate) => {
        const base = bases[b]!
        const token = toToken(mutate(base.url))
        const outcome = await verify(token)
        expect(outcome.ok).toBe(true)
        judge(base, token, outcome)
      }),
      { numRuns: 100 },
    )
  })

  it('changes to the base64url text', async () => {
    await fc.assert(
      fc.asyncProperty(baseIndex, base64Change, async (b, mutate) => {
        const base = bases[b]!
        const token = mutate(base.token)
        judge(base, token, await verify(token))
      }),
      RUNS,
    )
  })

  it('exercised every outcome: accepted, refused locally and refused by STS', () => {
    expect(stats.accepted).toBeGreaterThan(0)
    expect(stats.tokenInvalid).toBeGreaterThan(0)
    expect(stats.stsRejected).toBeGreaterThan(0)
  })
})

describe('parsePresignedToken throws nothing but TokenInvalid', () => {
  const check = (token: string): void => {
    try {
      parsePresignedToken(token, { partition: 'aws', now: NOW })
    } catch (err) {
      // Plain instanceof: cheaper than expect() in a hot property.
      if (!(err instanceof TokenInvalid)) throw err
    }
  }
  const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c))
  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 400,
  })
  const KEYS = [
    'Action',
    'Version',
    'X-Amz-Algorithm',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-Security-Token',
    'X-Amz-SignedHeaders',
    'X-Amz-Signature',
    'action',
    'x-amz-credential',
    'Foo',
    '',
  ]
  const VALUES = [
    'GetCallerIdentity',
    '2011-06-15',
    'AWS4-HMAC-SHA256',
    `${ALICE.accessKeyId}%2F20240501%2Fus-west-2%2Fsts%2Faws4_request`,
    NOW_AMZ,
    '60',
    'host%3Bx-k8s-aws-id',
    'a'.repeat(64),
    'IQoJ%2B%3D',
    '%',
    '%zz',
    '%0A',
    '+',
    '',
  ]
  const structuredQuery = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...KEYS), printable),
        fc.oneof(fc.constantFrom(...VALUES), printable),
        fc.constantFrom('&', '&', '&', ';', '&&'),
      ),
      { maxLength: 12 },
    )
    .map((pairs) => pairs.map(([k, v, sep], i) => `${i === 0 ? '' : sep}${k}=${v}`).join(''))
  const host = fc.constantFrom(
    'sts.us-west-2.amazonaws.com',
    'sts.amazonaws.com',
    'sts-fips.us-east-1.api.aws',
    'sts.cn-north-1.amazonaws.com.cn',
    'evil.com',
    'STS.amazonaws.com',
    'a.b',
    '',
    '[::1]',
    'sts.us-west-2.amazonaws.com:443',
  )

  it('for arbitrary strings', () => {
    fc.assert(fc.property(fc.string(), check), RUNS)
    fc.assert(fc.property(fc.string({ unit: anyCodePoint }), check), RUNS)
    fc.assert(
      fc.property(
        fc.string({ unit: anyCodePoint }).map((s) => `k8s-aws-v1.${s}`),
        check,
      ),
      RUNS,
    )
  })

  it('for k8s-aws-v1. + base64url(any printable string)', () => {
    fc.assert(
      fc.property(printable, (s) => check(toToken(s))),
      RUNS,
    )
    fc.assert(
      fc.property(printable, (s) => check(toToken(`https://sts.us-west-2.amazonaws.com/?${s}`))),
      RUNS,
    )
  })

  it('for URLs built from allowed hosts, keys and values in random combinations', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('https://', 'http://', 'HTTPS://', 'https:/'),
        host,
        fc.constantFrom('/?', '?', '/', '//?'),
        structuredQuery,
        (scheme, h, path, query) => check(toToken(`${scheme}${h}${path}${query}`)),
      ),
      { numRuns: 1000 },
    )
  })
})
