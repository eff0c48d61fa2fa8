// Host allow-list: upstream's host-validation matrix (pkg/token/token_test.go TestSTSEndpoints),
// with our verdict next to upstream's, and the exhaustive per-partition check of every STS host the
// AWS SDK produces.

import { beforeAll, describe, expect, it } from 'vitest'
import { TokenInvalid } from '../../src/shared/errors.js'
import { checkStsHost, stsHostPolicy } from '../../src/token/hosts.js'
import { parsePresignedToken } from '../../src/token/parse.js'
import { PARTITION_IDS } from '../../src/shared/partitions.js'
import { INVALID as P, NOW, expectTokenInvalid, sdkRegions, sdkStsEndpoint, toToken } from '../support/tokens.js'

/**
 * Upstream's verdict. A boolean when upstream does not depend on the verifier's own region; else
 * the verdict per verifier region ('' = no region, as when IMDS is unavailable), since upstream
 * falls back to `sts.<verifier region>.<partition domain>` for hosts its SDK rules do not produce.
 */
type UpstreamVerdict = boolean | Readonly<Record<string, boolean>>

interface HostRow {
  readonly partition: string
  readonly host: string
  readonly upstream: UpstreamVerdict
  /** `true`, or the exact TokenInvalid message we give. */
  readonly ours: true | string
  readonly divergence?: string
}

const UNKNOWN = (host: string, region: string) =>
  `${P}unexpected hostname "${host}" in pre-signed URL: unknown region "${region}"`
const FOREIGN = (host: string, owner: string, server: string) =>
  `${P}hostname "${host}" belongs to partition ${owner}; this server accepts only partition ${server}`
const GLOBAL_UNSUPPORTED = (p: string) => `${P}global endpoint unsupported in partition ${p}`

const AWS_REGIONAL_OK = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ap-south-1',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ca-central-1',
  'eu-central-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-north-1',
]

/** Upstream's TestSTSEndpoints rows (partition, host, verifier region -> valid?), in upstream's order. */
const MATRIX: readonly HostRow[] = [
  // global sts.amazonaws.com
  { partition: 'aws', host: 'sts.amazonaws.com', upstream: true, ours: true },
  ...['aws-cn', 'aws-us-gov', 'aws-iso', 'aws-iso-b', 'aws-iso-e', 'aws-iso-f'].map((p): HostRow => ({
    partition: p,
    host: 'sts.amazonaws.com',
    upstream: false,
    ours: GLOBAL_UNSUPPORTED(p),
  })),
  // aws-cn
  { partition: 'aws-cn', host: 'sts.cn-northwest-1.amazonaws.com.cn', upstream: true, ours: true },
  { partition: 'aws-cn', host: 'sts.cn-north-1.amazonaws.com.cn', upstream: true, ours: true },
  {
    partition: 'aws-cn',
    host: 'sts.us-iso-east-1.c2s.ic.gov',
    upstream: false,
    ours: FOREIGN('sts.us-iso-east-1.c2s.ic.gov', 'aws-iso', 'aws-cn'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region1.amazonaws.com.cn',
    upstream: { '': false },
    ours: UNKNOWN('sts.not-a-region1.amazonaws.com.cn', 'not-a-region1'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region2.amazonaws.com.cn',
    upstream: { 'not-a-region2': true },
    ours: UNKNOWN('sts.not-a-region2.amazonaws.com.cn', 'not-a-region2'),
    divergence: 'stricter: unknown region',
  },
  {
    partition: 'aws-cn',
    host: 'sts-fips.us-east-1.amazonaws.com',
    upstream: false,
    ours: FOREIGN('sts-fips.us-east-1.amazonaws.com', 'aws', 'aws-cn'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.us-isob-east-1.amazonaws.com.cn',
    upstream: { '': false, 'us-isob-east-1': true },
    ours: FOREIGN('sts.us-isob-east-1.amazonaws.com.cn', 'aws-iso-b', 'aws-cn'),
    divergence: 'stricter: no fallback to the verifier region; the region belongs to aws-iso-b',
  },
  { partition: 'aws-cn', host: 'sts.cn-north-1.api.amazonwebservices.com.cn', upstream: true, ours: true },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region3.amazonaws.com.cn',
    upstream: { '': false },
    ours: UNKNOWN('sts.not-a-region3.amazonaws.com.cn', 'not-a-region3'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region4.amazonaws.com.cn',
    upstream: { 'not-a-region4': true },
    ours: UNKNOWN('sts.not-a-region4.amazonaws.com.cn', 'not-a-region4'),
    divergence: 'stricter: unknown region',
  },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region5.amazonaws.com.cn',
    upstream: { 'us-west-2': false },
    ours: UNKNOWN('sts.not-a-region5.amazonaws.com.cn', 'not-a-region5'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.us-west-2.amazonaws.com.cn',
    upstream: false,
    ours: FOREIGN('sts.us-west-2.amazonaws.com.cn', 'aws', 'aws-cn'),
  },
  {
    partition: 'aws-cn',
    host: 'sts.not-a-region.amazonaws.com',
    upstream: { 'not-a-region': false },
    ours: UNKNOWN('sts.not-a-region.amazonaws.com', 'not-a-region'),
  },
  // aws
  { partition: 'aws', host: 'sts-fips.us-west-2.amazonaws.com', upstream: true, ours: true },
  { partition: 'aws', host: 'sts-fips.us-east-1.amazonaws.com', upstream: true, ours: true },
  ...AWS_REGIONAL_OK.map((r): HostRow => ({
    partition: 'aws',
    host: `sts.${r}.amazonaws.com`,
    upstream: true,
    ours: true,
  })),
  {
    partition: 'aws',
    host: 'sts.amazonaws.com.cn',
    upstream: false,
    ours: UNKNOWN('sts.amazonaws.com.cn', 'amazonaws'),
  },
  {
    partition: 'aws',
    host: 'website.amazonaws.com',
    upstream: false,
    ours: UNKNOWN('website.amazonaws.com', 'amazonaws'),
  },
  {
    partition: 'aws',
    host: 'sts.default-region.amazonaws.com',
    upstream: { 'default-region': true },
    ours: UNKNOWN('sts.default-region.amazonaws.com', 'default-region'),
    divergence: 'stricter: unknown region',
  },
  { partition: 'aws', host: 'sts.us-west-2.api.aws', upstream: true, ours: true },
  {
    partition: 'aws',
    host: 'sts.cn-north-1.api.amazonwebservices.com.cn',
    upstream: false,
    ours: FOREIGN('sts.cn-north-1.api.amazonwebservices.com.cn', 'aws-cn', 'aws'),
  },
  {
    partition: 'aws',
    host: 'sts.not-a-region.amazonaws.com',
    upstream: { '': true, 'not-a-region': true, 'us-west-2': true },
    ours: UNKNOWN('sts.not-a-region.amazonaws.com', 'not-a-region'),
    divergence: 'stricter: unknown region',
  },
  {
    partition: 'aws',
    host: 'sts.us-west-2.amazonaws.com.cn',
    upstream: { '': false, 'us-west-2': false },
    ours: `${P}partition {aws} does not support hostname sts.us-west-2.amazonaws.com.cn`,
  },
  // aws-iso, aws-iso-b, aws-us-gov
  { partition: 'aws-iso', host: 'sts.us-iso-east-1.c2s.ic.gov', upstream: true, ours: true },
  {
    partition: 'aws-iso',
    host: 'sts.cn-north-1.amazonaws.com.cn',
    upstream: false,
    ours: FOREIGN('sts.cn-north-1.amazonaws.com.cn', 'aws-cn', 'aws-iso'),
  },
  {
    partition: 'aws-iso-b',
    host: 'sts.cn-north-1.amazonaws.com.cn',
    upstream: false,
    ours: FOREIGN('sts.cn-north-1.amazonaws.com.cn', 'aws-cn', 'aws-iso-b'),
  },
  {
    partition: 'aws-iso-b',
    host: 'sts.us-isob-east-1.amazonaws.com.cn',
    upstream: { '': false, 'us-isob-east-1': false },
    ours: `${P}partition {aws-iso-b} does not support hostname sts.us-isob-east-1.amazonaws.com.cn`,
  },
  { partition: 'aws-us-gov', host: 'sts.us-gov-east-1.amazonaws.com', upstream: true, ours: true },
]

const upstreamAccepts = (v: UpstreamVerdict): boolean[] => (typeof v === 'boolean' ? [v] : Object.values(v))

describe("upstream's TestSTSEndpoints host matrix: upstream verdict and ours", () => {
  it('never accepts a host upstream rejects for every verifier region', () => {
    for (const row of MATRIX) {
      if (upstreamAccepts(row.upstream).every((ok) => !ok)) expect(row.ours, row.host).not.toBe(true)
    }
  })

  it('differs from upstream only on rows marked as a divergence, and only by being stricter', () => {
    for (const row of MATRIX) {
      const same = upstreamAccepts(row.upstream).every((ok) => ok === (row.ours === true))
      if (!same) {
        expect(row.divergence, `${row.partition} ${row.host}`).toMatch(/^stricter: /)
        expect(row.ours).not.toBe(true)
      } else {
        expect(row.divergence, `${row.partition} ${row.host}`).toBeUndefined()
      }
    }
    const unknownRegion = MATRIX.filter((r) => r.divergence === 'stricter: unknown region').map((r) => r.host)
    expect(unknownRegion).toEqual([
      'sts.not-a-region2.amazonaws.com.cn',
      'sts.not-a-region4.amazonaws.com.cn',
      'sts.default-region.amazonaws.com',
      'sts.not-a-region.amazonaws.com',
    ])
  })

  it.each(MATRIX)('$partition $host', (row) => {
    if (row.ours === true) {
      const labels = row.host.split('.')
      const region = row.host === 'sts.amazonaws.com' ? 'global' : labels[1]
      expect(checkStsHost(row.host, row.partition)).toEqual({
        stsRegion: region,
        signingRegion: region === 'global' ? 'us-east-1' : region,
      })
    } else {
      let err: unknown
      try {
        checkStsHost(row.host, row.partition)
      } catch (e) {
        err = e
      }
      expectTokenInvalid(err, 'host', row.ours)
    }
  })

  it('an unknown server partition is a caller error, not a token error', () => {
    expect(() => checkStsHost('sts.amazonaws.com', 'aws-not-a-partition')).toThrow(
      new TypeError('partition aws-not-a-partition not valid'),
    )
  })
})

describe('upstream messages kept verbatim', () => {
  it('google.com: exact upstream message, from checkStsHost and through the parser', () => {
    const message =
      'input token was not properly formatted: could not parse region for pre-signed URL google.com, invalid host format: google.com'
    expect(() => checkStsHost('google.com', 'aws')).toThrow(message)
    let err: unknown
    try {
      parsePresignedToken(toToken('https://google.com'), { partition: 'aws', now: NOW })
    } catch (e) {
      err = e
    }
    expectTokenInvalid(err, 'host', message)
  })

  it('getStsRegion cases: sts.amazonaws.com is global; "sts" and "sts.wrongformat" are refused', () => {
    expect(checkStsHost('sts.amazonaws.com', 'aws').stsRegion).toBe('global')
    expect(checkStsHost('sts.us-west-2.amazonaws.com', 'aws').stsRegion).toBe('us-west-2')
    expect(checkStsHost('sts.eu-central-1.amazonaws.com', 'aws').stsRegion).toBe('eu-central-1')
    expect(() => checkStsHost('sts.wrongformat', 'aws')).toThrow(
      `${P}could not parse region for pre-signed URL sts.wrongformat, invalid host format: sts.wrongformat`,
    )
    expect(() => checkStsHost('sts', 'aws')).toThrow(`${P}unexpected hostname "sts" in pre-signed URL`)
    expect(() => checkStsHost('', 'aws')).toThrow(`${P}unexpected hostname "" in pre-signed URL`)
  })
})

describe('every STS host the AWS SDK resolves, in its own partition and in every other', () => {
  interface SdkHost {
    readonly host: string
    readonly region: string
    readonly partition: string
    readonly variant: string
  }
  let hosts: SdkHost[]

  beforeAll(async () => {
    hosts = []
    for (const { region, partition } of await sdkRegions()) {
      for (const fips of [false, true]) {
        for (const dualStack of [false, true]) {
          const ep = await sdkStsEndpoint(region, { fips, dualStack })
          if (ep === undefined) continue
          hosts.push({
            host: ep.host,
            region,
            partition,
            variant: `${fips ? 'fips' : 'regular'}${dualStack ? '+dualstack' : ''}`,
          })
        }
      }
    }
  })

  it('covers all partitions and all four variants', () => {
    expect(new Set(hosts.map((h) => h.partition))).toEqual(new Set(PARTITION_IDS))
    expect(new Set(hosts.map((h) => h.variant))).toEqual(
      new Set(['regular', 'regular+dualstack', 'fips', 'fips+dualstack']),
    )
    expect(hosts.length).toBeGreaterThan(150)
  })

  it('accepts each host in its own partition, signed for its region', () => {
    for (const h of hosts) {
      expect(checkStsHost(h.host, h.partition), `${h.host} in ${h.partition}`).toEqual({
        stsRegion: h.region,
        signingRegion: h.region,
      })
    }
  })

  it('rejects each host in every other partition, with check "host"', () => {
    let checked = 0
    for (const h of hosts) {
      for (const other of PARTITION_IDS.filter((p) => p !== h.partition)) {
        let err: unknown
        try {
          checkStsHost(h.host, other)
        } catch (e) {
          err = e
        }
        expect(err, `${h.host} in ${other}`).toBeInstanceOf(TokenInvalid)
        expect((err as TokenInvalid).check).toBe('host')
        expect((err as TokenInvalid).message).toBe(FOREIGN(h.host, h.partition, other))
        checked++
      }
    }
    expect(checked).toBe(hosts.length * (PARTITION_IDS.length - 1))
  })

  it('sts.amazonaws.com is accepted in aws only, signed for us-east-1', () => {
    for (const p of PARTITION_IDS) {
      if (p === 'aws') {
        expect(checkStsHost('sts.amazonaws.com', p)).toEqual({ stsRegion: 'global', signingRegion: 'us-east-1' })
      } else {
        expect(() => checkStsHost('sts.amazonaws.com', p)).toThrow(GLOBAL_UNSUPPORTED(p))
      }
    }
  })

  it('rejects near misses of real hosts in their own partition', () => {
    const nearMisses: Array<[string, string]> = [
      ['aws-us-gov', 'sts-fips.us-gov-west-1.amazonaws.com'], // GovCloud FIPS is served on the regular host
      ['aws', 'sts.aws-global.amazonaws.com'], // pseudo-regions are not hostnames
      ['aws-cn', 'sts.aws-cn-global.amazonaws.com.cn'],
      ['aws', 'sts.us-west-2.api.aws.evil.com'],
      ['aws', 'sts-fips.us-west-2.api.aws.cn'],
      ['aws', 'sts.us-west-2.amazonaws.co'],
      ['aws', 'sts.us-west-2.aws'],
      ['aws', 'iam.us-west-2.amazonaws.com'],
      ['aws', 'sts.us-west-22x.amazonaws.com'],
      ['aws-iso', 'sts.us-iso-east-1.api.aws'],
      ['aws-eusc', 'sts.eusc-de-east-1.amazonaws.com'],
      ['aws-iso-e', 'sts.eu-isoe-west-1.cloud.adc-e.uk.evil'],
    ]
    for (const [partition, host] of nearMisses) {
      expect(() => checkStsHost(host, partition), `${host} in ${partition}`).toThrow(TokenInvalid)
    }
  })
})

describe('regions: only those the partition lists, plus server.extraRegions', () => {
  const HINT = (partition: string) =>
    ` (a region of partition ${partition} newer than this release is accepted once listed in server.extraRegions)`

  it.each([
    ['aws', 'sts.us-east-9.amazonaws.com', 'us-east-9'],
    ['aws', 'sts-fips.ap-southeast-99.amazonaws.com', 'ap-southeast-99'],
    ['aws', 'sts.mx-west-2.api.aws', 'mx-west-2'],
    ['aws-cn', 'sts.cn-south-1.amazonaws.com.cn', 'cn-south-1'],
    ['aws-us-gov', 'sts.us-gov-central-1.amazonaws.com', 'us-gov-central-1'],
    ['aws-eusc', 'sts.eusc-de-west-1.amazonaws.eu', 'eusc-de-west-1'],
  ])(
    '%s: %s (a region name of the partition shape that the SDK does not list) is refused',
    (partition, host, region) => {
      let err: unknown
      try {
        checkStsHost(host, partition)
      } catch (e) {
        err = e
      }
      expectTokenInvalid(
        err,
        'host',
        `${P}unexpected hostname "${host}" in pre-signed URL: unknown region "${region}"${HINT(partition)}`,
      )
    },
  )

  it('a made-up region too long to be a region name is refused, clipped, without the hint', () => {
    const host = `sts.us-${'x'.repeat(1000)}-1.amazonaws.com`
    let err: unknown
    try {
      checkStsHost(host, 'aws')
    } catch (e) {
      err = e
    }
    const clip = (s: string) => `${s.slice(0, 80)}...`
    expectTokenInvalid(
      err,
      'host',
      `${P}unexpected hostname "${clip(host)}" in pre-signed URL: unknown region "${clip(`us-${'x'.repeat(1000)}-1`)}"`,
    )
  })

  it('a region listed in server.extraRegions is accepted with all four hostnames, in its own partition only', () => {
    const aws = stsHostPolicy('aws', ['us-east-9'])
    for (const host of [
      'sts.us-east-9.amazonaws.com',
      'sts-fips.us-east-9.amazonaws.com',
      'sts.us-east-9.api.aws',
      'sts-fips.us-east-9.api.aws',
    ]) {
      expect(checkStsHost(host, aws), host).toEqual({ stsRegion: 'us-east-9', signingRegion: 'us-east-9' })
      expect(() => checkStsHost(host, 'aws'), host).toThrow(HINT('aws'))
    }
    const cn = stsHostPolicy('aws-cn', ['cn-south-1'])
    expect(checkStsHost('sts.cn-south-1.amazonaws.com.cn', cn)).toEqual({
      stsRegion: 'cn-south-1',
      signingRegion: 'cn-south-1',
    })
    expect(() => checkStsHost('sts.cn-south-1.amazonaws.com', cn)).toThrow(
      `${P}partition {aws-cn} does not support hostname sts.cn-south-1.amazonaws.com`,
    )
    // the known regions stay accepted
    expect(checkStsHost('sts.us-west-2.amazonaws.com', aws).stsRegion).toBe('us-west-2')
  })

  it('through the parser: extraRegions reaches the host check', () => {
    const url =
      'https://sts.us-east-9.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15' +
      '&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240501%2Fus-east-9%2Fsts%2Faws4_request' +
      `&X-Amz-Date=20240501T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=${'a'.repeat(64)}`
    expect(() => parsePresignedToken(toToken(url), { partition: 'aws', now: NOW })).toThrow(HINT('aws'))
    const extra = ['us-east-9']
    expect(parsePresignedToken(toToken(url), { partition: 'aws', extraRegions: extra, now: NOW }).stsRegion).toBe(
      'us-east-9',
    )
  })

  it('5,000 made-up regions add nothing to the table of accepted hosts (nothing is cached per host)', () => {
    const policy = stsHostPolicy('aws')
    const size = policy.hosts.size
    for (let i = 0; i < 5000; i++) {
      expect(() => checkStsHost(`sts.us-made-up${i}-1.amazonaws.com`, policy)).toThrow(TokenInvalid)
    }
    expect(policy.hosts.size).toBe(size)
    expect(stsHostPolicy('aws')).toBe(policy)
  })
})
