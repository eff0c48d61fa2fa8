// Local token checks: upstream's pre-STS test cases (pkg/token/token_test.go
// TestVerifyTokenPreSTSValidations) side by side with our
// exact messages, the exported helpers of parse.ts, and the clock boundaries.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TokenInvalid, type TokenCheck } from '../../src/shared/errors.js'
import {
  MAX_FUTURE_SKEW_MS,
  PRESIGN_VALIDITY_MS,
  REQUIRED_SIGNED_HEADERS,
  SIGV4_ALGORITHM,
  STS_API_VERSION,
  parsePresignedToken,
  uriEncode,
} from '../../src/token/parse.js'
import { checkToken } from '../../src/sts/verify.js'
import {
  ALICE,
  INVALID as P,
  NOW,
  NOW_AMZ,
  TEMP,
  dropParam,
  expectTokenInvalid,
  presignedToken,
  presignedUrl,
  setParam,
  toToken,
} from '../support/tokens.js'

function parseFailure(token: string, partition = 'aws', now = NOW): unknown {
  try {
    parsePresignedToken(token, { partition, now })
  } catch (err) {
    return err
  }
  return expect.fail('parsePresignedToken accepted the token')
}

interface SpecRow {
  /**
   * Which call of upstream's TestVerifyTokenPreSTSValidations, counted in its order (its five
   * validationSuccessTest hosts count as one); a letter marks our companion row.
   */
  readonly item: string
  readonly name: string
  readonly partition?: string
  /** Builds the token; `valid` is a genuinely valid presigned URL signed at NOW. */
  readonly token: (valid: string) => string
  /** Substring upstream's test expects in the error, or null where upstream's test expects success. */
  readonly upstream: string | null
  readonly check: TokenCheck
  /** Our exact, full message. */
  readonly message: string
  /** Set on every row where we deliberately differ from upstream: why. */
  readonly divergence?: string
}

const LOWER_KEYS =
  'stricter: upstream matches keys case-insensitively; we require the canonical spelling (Action, X-Amz-...)'
const SPELL_ACTION = `${P}query parameter "action" must be spelled "Action"`
const UP17 = (host: string) =>
  `https://${host}/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=${NOW_AMZ}&x-amz-expires=60`
const CANON17 = (host: string) =>
  `https://${host}/?Action=GetCallerIdentity&X-Amz-SignedHeaders=x-k8s-aws-id&X-Amz-Date=${NOW_AMZ}&X-Amz-Expires=60`
const SUCCESS_HOSTS = ['us-east-2', 'ap-northeast-2', 'ca-central-1', 'eu-west-1', 'sa-east-1'].map(
  (r) => `sts.${r}.amazonaws.com`,
)

const SPEC_ROWS: readonly SpecRow[] = [
  {
    item: '1',
    name: '4097 NUL bytes',
    token: () => '\0'.repeat(4097),
    upstream: 'token is too large',
    check: 'size',
    message: `${P}token is too large`,
  },
  {
    item: '2',
    name: 'k8s-aws-v2 prefix',
    token: () => 'k8s-aws-v2.asdfasdfa',
    upstream: 'token is missing expected "k8s-aws-v1." prefix',
    check: 'prefix',
    message: `${P}token is missing expected "k8s-aws-v1." prefix`,
  },
  {
    item: '3',
    name: 'not base64',
    token: () => 'k8s-aws-v1.decodingerror',
    upstream: 'illegal base64 data',
    check: 'encoding',
    message: `${P}illegal base64 data at input byte 12: truncated`,
  },
  {
    item: '4',
    name: 'no scheme',
    token: () => toToken(':ab:cd.af:/asda'),
    upstream: 'missing protocol scheme',
    check: 'url',
    message: `${P}pre-signed URL is not an absolute URL: missing protocol scheme`,
  },
  {
    item: '5',
    name: 'http scheme',
    token: () => toToken('http://'),
    upstream: 'unexpected scheme',
    check: 'scheme',
    message: `${P}unexpected scheme "http" in pre-signed URL`,
  },
  {
    item: '6',
    name: 'google.com',
    token: () => toToken('https://google.com'),
    upstream: `${P}could not parse region for pre-signed URL google.com, invalid host format: google.com`,
    check: 'host',
    message: `${P}could not parse region for pre-signed URL google.com, invalid host format: google.com`,
  },
  {
    item: '7',
    name: 'aws-cn path /abc',
    partition: 'aws-cn',
    token: () => toToken('https://sts.cn-north-1.amazonaws.com.cn/abc'),
    upstream: 'unexpected path in pre-signed URL',
    check: 'path',
    message: `${P}unexpected path in pre-signed URL`,
  },
  {
    item: '8',
    name: 'global path /abc',
    token: () => toToken('https://sts.amazonaws.com/abc'),
    upstream: 'unexpected path in pre-signed URL',
    check: 'path',
    message: `${P}unexpected path in pre-signed URL`,
  },
  {
    item: '9',
    name: 'non-whitelisted key',
    token: () => toToken('https://sts.amazonaws.com/?NoInWhiteList=abc'),
    upstream: 'non-whitelisted query parameter',
    check: 'param',
    message: `${P}non-whitelisted query parameter "NoInWhiteList"`,
  },
  {
    item: '10',
    name: 'action twice',
    token: () => toToken('https://sts.amazonaws.com/?action=get&action=post'),
    upstream: 'query parameter with multiple values not supported',
    check: 'param',
    message: `${P}query parameter with multiple values not supported: "action"`,
  },
  {
    item: '11',
    name: 'wrong action, lower-case key',
    token: () => toToken('https://sts.amazonaws.com/?action=NotGetCallerIdenity'),
    upstream: 'unexpected action parameter in pre-signed URL',
    check: 'param',
    message: SPELL_ACTION,
    divergence: LOWER_KEYS,
  },
  {
    item: '11b',
    name: 'wrong action, canonical key',
    token: (v) => toToken(setParam(v, 'Action', 'NotGetCallerIdenity')),
    upstream: 'unexpected action parameter in pre-signed URL',
    check: 'action',
    message: `${P}unexpected action parameter in pre-signed URL`,
  },
  {
    item: '12',
    name: 'x-k8s-aws-id not signed, lower-case key and hex',
    token: () =>
      toToken('https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=abc%3bx-k8s-aws-i%3bdef'),
    upstream: 'client did not sign the x-k8s-aws-id header in the pre-signed URL',
    check: 'query',
    message: `${P}query parameter "x-amz-signedheaders" is not canonically percent-encoded`,
    divergence: 'stricter: lower-case percent-escapes (%3b) are refused before the keys are looked at',
  },
  {
    item: '12b',
    name: 'x-k8s-aws-id not signed, canonical',
    token: (v) => toToken(setParam(v, 'X-Amz-SignedHeaders', 'abc%3Bx-k8s-aws-i%3Bdef')),
    upstream: 'client did not sign the x-k8s-aws-id header in the pre-signed URL',
    check: 'signed-headers',
    message: `${P}client did not sign the x-k8s-aws-id header in the pre-signed URL`,
  },
  {
    item: '13',
    name: 'X-Amz-Expires 9999999, lower-case keys',
    token: () =>
      toToken(
        `https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=${NOW_AMZ}&x-amz-expires=9999999`,
      ),
    upstream: 'invalid X-Amz-Expires parameter in pre-signed URL',
    check: 'param',
    message: SPELL_ACTION,
    divergence: LOWER_KEYS,
  },
  {
    item: '13b',
    name: 'X-Amz-Expires 9999999, canonical',
    token: (v) => toToken(setParam(v, 'X-Amz-Expires', '9999999')),
    upstream: 'invalid X-Amz-Expires parameter in pre-signed URL',
    check: 'expires',
    message: `${P}invalid X-Amz-Expires parameter in pre-signed URL: 9999999`,
  },
  {
    item: '14',
    name: 'unparsable date, lower-case keys',
    token: () =>
      toToken(
        'https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=xxxxxxx&x-amz-expires=60',
      ),
    upstream: 'error parsing X-Amz-Date parameter',
    check: 'param',
    message: SPELL_ACTION,
    divergence: LOWER_KEYS,
  },
  {
    item: '14b',
    name: 'unparsable date, canonical',
    token: (v) => toToken(setParam(v, 'X-Amz-Date', 'xxxxxxx')),
    upstream: 'error parsing X-Amz-Date parameter',
    check: 'date',
    message: `${P}error parsing X-Amz-Date parameter xxxxxxx into format 20060102T150405Z`,
  },
  {
    item: '15',
    name: 'date in 1990, lower-case keys',
    token: () =>
      toToken(
        'https://sts.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=19900422T010203Z&x-amz-expires=60',
      ),
    upstream: 'X-Amz-Date parameter is expired',
    check: 'param',
    message: SPELL_ACTION,
    divergence: LOWER_KEYS,
  },
  {
    item: '15b',
    name: 'date in 1990, canonical',
    token: (v) => toToken(setParam(v, 'X-Amz-Date', '19900422T010203Z')),
    upstream: 'X-Amz-Date parameter is expired',
    check: 'expired',
    message: `${P}X-Amz-Date parameter is expired (15 minute expiration) 1990-04-22 01:02:03 +0000 UTC`,
  },
  {
    item: '16',
    name: 'bad escape %gh',
    token: () =>
      toToken(
        `https://sts.sa-east-1.amazonaws.com/?action=GetCallerIdentity&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=${NOW_AMZ}&x-amz-expires=60%gh`,
      ),
    upstream: `${P}malformed query parameter`,
    check: 'query',
    message: `${P}malformed query parameter: invalid escape in "x-amz-expires"`,
  },
  ...SUCCESS_HOSTS.map((host): SpecRow => ({
    item: '17',
    name: `upstream success on ${host} (lower-case keys, no Version/credential/signature)`,
    token: () => toToken(UP17(host)),
    upstream: null,
    check: 'param',
    message: SPELL_ACTION,
    divergence:
      'stricter: upstream accepts lower-case keys and a token without Version, X-Amz-Algorithm, ' +
      'host in SignedHeaders, X-Amz-Credential or X-Amz-Signature and leaves them to STS; we refuse them locally',
  })),
  {
    item: '17b',
    name: 'upstream success case, canonical keys: Version missing',
    token: () => toToken(CANON17('sts.us-east-2.amazonaws.com')),
    upstream: null,
    check: 'version',
    message: `${P}Version parameter must be present in pre-signed URL`,
    divergence: 'stricter: Version is required (upstream never checks it)',
  },
  {
    item: '17c',
    name: '... plus Version: X-Amz-Algorithm missing',
    token: () => toToken(CANON17('sts.us-east-2.amazonaws.com').replace('&X-Amz', `&Version=${STS_API_VERSION}&X-Amz`)),
    upstream: null,
    check: 'algorithm',
    message: `${P}X-Amz-Algorithm parameter must be present in pre-signed URL`,
    divergence: 'stricter: X-Amz-Algorithm is required (upstream never checks it)',
  },
  {
    item: '17d',
    name: '... plus X-Amz-Algorithm: host not signed',
    token: () =>
      toToken(
        CANON17('sts.us-east-2.amazonaws.com').replace(
          '&X-Amz',
          `&Version=${STS_API_VERSION}&X-Amz-Algorithm=${SIGV4_ALGORITHM}&X-Amz`,
        ),
      ),
    upstream: null,
    check: 'signed-headers',
    message: `${P}client did not sign the host header in the pre-signed URL`,
    divergence: 'stricter: the signed headers must be exactly host;x-k8s-aws-id (upstream only requires x-k8s-aws-id)',
  },
  {
    item: '17e',
    name: '... plus host signed: X-Amz-Credential missing',
    token: () =>
      toToken(
        CANON17('sts.us-east-2.amazonaws.com')
          .replace('&X-Amz', `&Version=${STS_API_VERSION}&X-Amz-Algorithm=${SIGV4_ALGORITHM}&X-Amz`)
          .replace('X-Amz-SignedHeaders=x-k8s-aws-id', 'X-Amz-SignedHeaders=host%3Bx-k8s-aws-id'),
      ),
    upstream: null,
    check: 'credential',
    message: `${P}X-Amz-Credential parameter must be present in pre-signed URL`,
    divergence:
      'stricter: X-Amz-Credential is required and its scope checked (upstream takes the text before "/" or "")',
  },
  {
    item: '17f',
    name: '... plus X-Amz-Credential: X-Amz-Signature missing',
    token: () =>
      toToken(
        CANON17('sts.us-east-2.amazonaws.com')
          .replace('&X-Amz', `&Version=${STS_API_VERSION}&X-Amz-Algorithm=${SIGV4_ALGORITHM}&X-Amz`)
          .replace('X-Amz-SignedHeaders=x-k8s-aws-id', 'X-Amz-SignedHeaders=host%3Bx-k8s-aws-id')
          .replace(
            '&X-Amz-Date',
            `&X-Amz-Credential=${ALICE.accessKeyId}%2F20240501%2Fus-east-2%2Fsts%2Faws4_request&X-Amz-Date`,
          ),
      ),
    upstream: null,
    check: 'signature',
    message: `${P}X-Amz-Signature parameter must be present in pre-signed URL`,
    divergence: 'stricter: X-Amz-Signature is required locally (upstream leaves it to STS)',
  },
  {
    item: '18',
    name: 'CVE-2022-2385: X-Amz-Credential and x-amz-credential=eve',
    token: (v) => toToken(`${v}&x-amz-credential=eve`),
    upstream: `${P}duplicate query parameter found:`,
    check: 'duplicate',
    message: `${P}duplicate query parameter found: "x-amz-credential"`,
  },
]

describe("upstream's TestVerifyTokenPreSTSValidations, call by call: upstream expectation and ours", () => {
  it("every row where upstream rejects is also rejected by us, with upstream's text unless a divergence is documented", () => {
    for (const row of SPEC_ROWS) {
      if (row.upstream !== null && !row.message.includes(row.upstream)) {
        expect(row.divergence, `${row.item} ${row.name}`).toMatch(/^stricter: /)
      }
      if (row.upstream === null) expect(row.divergence, `${row.item} ${row.name}`).toMatch(/^stricter: /)
      if (row.upstream !== null && row.message.includes(row.upstream)) {
        expect(row.divergence, `${row.item} ${row.name}`).toBeUndefined()
      }
    }
    expect(new Set(SPEC_ROWS.map((r) => r.item.replace(/[a-z]$/, ''))).size).toBe(18)
  })

  it.each(SPEC_ROWS)('$item: $name', async (row) => {
    const valid = await presignedUrl()
    expectTokenInvalid(parseFailure(row.token(valid), row.partition), row.check, row.message)
  })
})

describe('accepted tokens', () => {
  it('a presigned token yields the request to send to STS', async () => {
    const url = await presignedUrl()
    const req = parsePresignedToken(toToken(url), { partition: 'aws', now: NOW })
    expect(req).toEqual({
      host: 'sts.us-west-2.amazonaws.com',
      stsRegion: 'us-west-2',
      accessKeyId: ALICE.accessKeyId,
      signedAt: NOW,
      expiresAt: new Date(NOW.getTime() + 15 * 60 * 1000),
      hasSessionToken: false,
      pathAndQuery: url.slice('https://sts.us-west-2.amazonaws.com'.length),
    })
  })

  it('a session-token token is flagged and forwarded byte for byte', async () => {
    const url = await presignedUrl({ principal: TEMP })
    const req = parsePresignedToken(toToken(url), { partition: 'aws', now: NOW })
    expect(req.hasSessionToken).toBe(true)
    expect(req.accessKeyId).toBe(TEMP.accessKeyId)
    expect(`https://${req.host}${req.pathAndQuery}`).toBe(url)
  })

  it.each([
    ['aws', 'aws-global', undefined, 'sts.amazonaws.com', 'global'],
    ['aws', 'us-east-1', { fips: true }, 'sts-fips.us-east-1.amazonaws.com', 'us-east-1'],
    ['aws', 'eu-west-1', { dualStack: true }, 'sts.eu-west-1.api.aws', 'eu-west-1'],
    ['aws', 'us-west-2', { fips: true, dualStack: true }, 'sts-fips.us-west-2.api.aws', 'us-west-2'],
    ['aws-cn', 'cn-north-1', undefined, 'sts.cn-north-1.amazonaws.com.cn', 'cn-north-1'],
    ['aws-us-gov', 'us-gov-west-1', { fips: true }, 'sts.us-gov-west-1.amazonaws.com', 'us-gov-west-1'],
    ['aws-iso-b', 'us-isob-east-1', undefined, 'sts.us-isob-east-1.sc2s.sgov.gov', 'us-isob-east-1'],
    [
      'aws-eusc',
      'eusc-de-east-1',
      { dualStack: true },
      'sts.eusc-de-east-1.api.amazonwebservices.eu',
      'eusc-de-east-1',
    ],
  ] as const)(
    '%s: a token presigned for %s %j is accepted (host %s)',
    async (partition, region, endpoint, host, stsRegion) => {
      const token = await presignedToken({ region, ...(endpoint === undefined ? {} : { endpoint }) })
      const req = parsePresignedToken(token, { partition, now: NOW })
      expect({ host: req.host, stsRegion: req.stsRegion }).toEqual({ host, stsRegion })
    },
  )

  it('X-Amz-Expires must be present (as upstream requires), as any 1-3 digit number up to 900', async () => {
    const url = await presignedUrl()
    expectTokenInvalid(
      parseFailure(toToken(dropParam(url, 'X-Amz-Expires'))),
      'expires',
      `${P}X-Amz-Expires parameter must be present in pre-signed URL`,
    )
    for (const v of ['0', '1', '60', '060', '900']) {
      expect(
        () => parsePresignedToken(toToken(setParam(url, 'X-Amz-Expires', v)), { partition: 'aws', now: NOW }),
        v,
      ).not.toThrow()
    }
    expectTokenInvalid(
      parseFailure(toToken(setParam(url, 'X-Amz-Expires', '901'))),
      'expires',
      `${P}invalid X-Amz-Expires parameter in pre-signed URL: 901`,
    )
  })

  it('checkToken applies the server partition (default aws) and refuses an empty cluster ID as a caller error', async () => {
    const token = await presignedToken()
    expect(checkToken(token, { clusterId: 'c' }, NOW).host).toBe('sts.us-west-2.amazonaws.com')
    expect(() => checkToken(token, { clusterId: 'c', partition: 'aws-cn' }, NOW)).toThrow(TokenInvalid)
    expect(() => checkToken(token, { clusterId: '' }, NOW)).toThrow(TypeError)
  })
})

describe('clock boundaries (signed at NOW)', () => {
  const at = (ms: number) => new Date(NOW.getTime() + ms)
  const MIN15 = 15 * 60 * 1000

  it('the constants are 15 minutes', () => {
    expect(PRESIGN_VALIDITY_MS).toBe(MIN15)
    expect(MAX_FUTURE_SKEW_MS).toBe(MIN15)
  })

  it('exactly 15 minutes old is accepted; one second (or one millisecond) more is expired', async () => {
    const token = await presignedToken()
    expect(parsePresignedToken(token, { partition: 'aws', now: at(MIN15) }).expiresAt).toEqual(at(MIN15))
    const expired = `${P}X-Amz-Date parameter is expired (15 minute expiration) 2024-05-01 12:00:00 +0000 UTC`
    expectTokenInvalid(parseFailure(token, 'aws', at(MIN15 + 1000)), 'expired', expired)
    expectTokenInvalid(parseFailure(token, 'aws', at(MIN15 + 1)), 'expired', expired)
  })

  it('exactly 15 minutes in the future is accepted; one second (or one millisecond) more is refused', async () => {
    const token = await presignedToken()
    expect(parsePresignedToken(token, { partition: 'aws', now: at(-MIN15) }).signedAt).toEqual(NOW)
    const future = `${P}X-Amz-Date parameter is more than 15 minutes in the future 2024-05-01 12:00:00 +0000 UTC`
    expectTokenInvalid(parseFailure(token, 'aws', at(-MIN15 - 1000)), 'future', future)
    expectTokenInvalid(parseFailure(token, 'aws', at(-MIN15 - 1)), 'future', future)
  })

  it('a token signed just before midnight keeps its own day in the credential scope', async () => {
    const late = new Date('2024-05-01T23:59:59Z')
    const token = await presignedToken({ now: late })
    const req = parsePresignedToken(token, { partition: 'aws', now: new Date('2024-05-02T00:10:00Z') })
    expect(req.signedAt).toEqual(late)
  })

  it('calendar: 29 February exists in 2024, not in 2023', async () => {
    const leap = new Date('2024-02-29T08:00:00Z')
    expect(parsePresignedToken(await presignedToken({ now: leap }), { partition: 'aws', now: leap }).signedAt).toEqual(
      leap,
    )
    const url = await presignedUrl({ now: leap })
    const bogus = setParam(
      setParam(url, 'X-Amz-Date', '20230229T080000Z'),
      'X-Amz-Credential',
      `${ALICE.accessKeyId}%2F20230229%2Fus-west-2%2Fsts%2Faws4_request`,
    )
    expectTokenInvalid(
      parseFailure(toToken(bogus), 'aws', leap),
      'date',
      `${P}error parsing X-Amz-Date parameter 20230229T080000Z into format 20060102T150405Z`,
    )
  })
})

describe('exported helpers and constants', () => {
  it('constants match the wire format', () => {
    expect(STS_API_VERSION).toBe('2011-06-15')
    expect(SIGV4_ALGORITHM).toBe('AWS4-HMAC-SHA256')
    expect(REQUIRED_SIGNED_HEADERS).toBe('host;x-k8s-aws-id')
  })

  it('uriEncode: unreserved characters stay, everything else is upper-case %XX', () => {
    expect(uriEncode('')).toBe('')
    expect(uriEncode('AZaz09-._~')).toBe('AZaz09-._~')
    expect(uriEncode('a/b+c=d')).toBe('a%2Fb%2Bc%3Dd')
    expect(uriEncode('host;x-k8s-aws-id')).toBe('host%3Bx-k8s-aws-id')
    expect(uriEncode(' !"#$%&\'()*,:;<>?@[\\]^`{|}')).toBe(
      '%20%21%22%23%24%25%26%27%28%29%2A%2C%3A%3B%3C%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D',
    )
    expect(uriEncode('\n\x7f')).toBe('%0A%7F')
    expect(uriEncode(TEMP.sessionToken!)).toBe('IQoJb3JpZ2luX2Vj%2Bsession%2Ftoken%2Bwith%2Fspecial%3D%3D')
  })

  it('uriEncode agrees with an independent SigV4 encoder on printable ASCII, and is idempotent only on unreserved text', () => {
    const sigv4 = (s: string) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (s) => {
        const printable = s.replace(/[^\x20-\x7e]/g, '')
        expect(uriEncode(printable)).toBe(sigv4(printable))
        expect(uriEncode(printable) === printable).toBe(/^[A-Za-z0-9\-._~]*$/.test(printable))
      }),
      { numRuns: 300 },
    )
  })
})
