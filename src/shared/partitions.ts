/**
 * AWS partitions and the STS hostnames each one serves.
 *
 * Kept as explicit data (instead of evaluating the SDK's endpoint rules at run time) because it is
 * the allow-list that decides which hosts a token may point at. test/shared/partitions.test.ts checks
 * it against the AWS SDK's own partition table so it cannot silently drift.
 */

export interface Partition {
  readonly id: string
  readonly dnsSuffix: string
  readonly dualStackDnsSuffix: string
  readonly regionRegex: RegExp
  /** Regions listed explicitly by the SDK that do not match regionRegex (none today, kept for safety). */
  readonly extraRegions: readonly string[]
  /** The pseudo-region the SDK lists for the partition-global endpoint; undefined where it lists none. */
  readonly globalRegion: string | undefined
  /** The region a request to the global endpoint is signed for. */
  readonly globalSigningRegion: string
  /** aws-us-gov serves FIPS on its regular hostnames. */
  readonly fipsOnRegularHost: boolean
}

export const PARTITIONS: readonly Partition[] = [
  {
    id: 'aws',
    dnsSuffix: 'amazonaws.com',
    dualStackDnsSuffix: 'api.aws',
    regionRegex: /^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-global',
    globalSigningRegion: 'us-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-cn',
    dnsSuffix: 'amazonaws.com.cn',
    dualStackDnsSuffix: 'api.amazonwebservices.com.cn',
    regionRegex: /^cn-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-cn-global',
    globalSigningRegion: 'cn-northwest-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-us-gov',
    dnsSuffix: 'amazonaws.com',
    dualStackDnsSuffix: 'api.aws',
    regionRegex: /^us-gov-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-us-gov-global',
    globalSigningRegion: 'us-gov-west-1',
    fipsOnRegularHost: true,
  },
  {
    id: 'aws-iso',
    dnsSuffix: 'c2s.ic.gov',
    dualStackDnsSuffix: 'api.aws.ic.gov',
    regionRegex: /^us-iso-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-iso-global',
    globalSigningRegion: 'us-iso-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-b',
    dnsSuffix: 'sc2s.sgov.gov',
    dualStackDnsSuffix: 'api.aws.scloud',
    regionRegex: /^us-isob-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-iso-b-global',
    globalSigningRegion: 'us-isob-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-e',
    dnsSuffix: 'cloud.adc-e.uk',
    dualStackDnsSuffix: 'api.cloud-aws.adc-e.uk',
    regionRegex: /^eu-isoe-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-iso-e-global',
    globalSigningRegion: 'eu-isoe-west-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-f',
    dnsSuffix: 'csp.hci.ic.gov',
    dualStackDnsSuffix: 'api.aws.hci.ic.gov',
    regionRegex: /^us-isof-\w+-\d+$/,
    extraRegions: [],
    globalRegion: 'aws-iso-f-global',
    globalSigningRegion: 'us-isof-south-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-eusc',
    dnsSuffix: 'amazonaws.eu',
    dualStackDnsSuffix: 'api.amazonwebservices.eu',
    regionRegex: /^eusc-(de)-\w+-\d+$/,
    extraRegions: [],
    globalRegion: undefined, // the SDK lists no aws-eusc-global pseudo-region
    globalSigningRegion: 'eusc-de-east-1',
    fipsOnRegularHost: false,
  },
]

export const PARTITION_IDS: readonly string[] = PARTITIONS.map((p) => p.id)

/** The hostname of the partition-global STS endpoint; only the `aws` partition has one. */
export const GLOBAL_STS_HOST = 'sts.amazonaws.com'

export function findPartition(id: string): Partition | undefined {
  return PARTITIONS.find((p) => p.id === id)
}

/** The partition a region belongs to, or undefined for a region no partition claims. */
export function partitionOfRegion(region: string): Partition | undefined {
  return PARTITIONS.find((p) => p.globalRegion === region || regionBelongsTo(region, p))
}

/** True when `region` is a real-region name of partition `p` (pseudo-global regions excluded). */
export function regionBelongsTo(region: string, p: Partition): boolean {
  if (p.extraRegions.includes(region)) return true
  if (!p.regionRegex.test(region)) return false
  // The aws regex (`us-\w+-\d+`) would also claim names of narrower partitions; it never does today
  // because those have four labels, but the check keeps partitions disjoint if the tables change.
  return !PARTITIONS.some((other) => other !== p && other.id !== 'aws' && other.regionRegex.test(region))
}

export interface StsEndpointOptions {
  readonly fips?: boolean
  readonly dualStack?: boolean
}

/**
 * The STS host a client in `region` should sign for, and the region to put in the credential scope.
 * Mirrors the SDK's STS endpoint rules: regional endpoints, `aws-global` for sts.amazonaws.com.
 */
export function stsEndpointFor(
  region: string,
  opts: StsEndpointOptions = {},
): { host: string; signingRegion: string; partition: string } {
  const p = partitionOfRegion(region) ?? PARTITIONS[0]!
  if (region === p.globalRegion) {
    if (p.id === 'aws' && !opts.fips && !opts.dualStack) {
      return { host: GLOBAL_STS_HOST, signingRegion: p.globalSigningRegion, partition: p.id }
    }
    return stsEndpointFor(p.globalSigningRegion, opts)
  }
  const suffix = opts.dualStack ? p.dualStackDnsSuffix : p.dnsSuffix
  const label = opts.fips && !(p.fipsOnRegularHost && !opts.dualStack) ? 'sts-fips' : 'sts'
  return { host: `${label}.${region}.${suffix}`, signingRegion: region, partition: p.id }
}
