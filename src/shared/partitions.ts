/**
 * AWS partitions, their regions and the STS hostnames each one serves.
 *
 * Kept as explicit data (instead of evaluating the SDK's endpoint rules at run time) because it is
 * the allow-list that decides which hosts a token may point at. test/shared/partitions.test.ts checks
 * it against the AWS SDK's own partition table so it cannot silently drift: an SDK upgrade that
 * lists a new region fails that test until the region is added here.
 */

export interface Partition {
  readonly id: string
  readonly dnsSuffix: string
  readonly dualStackDnsSuffix: string
  /** The shape of the partition's region names, including regions AWS has not opened yet. */
  readonly regionRegex: RegExp
  /**
   * The real regions the SDK lists for the partition (pseudo-global ones excluded): the only regions
   * whose STS hosts the server accepts, with the operator's `server.extraRegions`.
   */
  readonly regions: readonly string[]
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
    regions: [
      'af-south-1',
      'ap-east-1',
      'ap-east-2',
      'ap-northeast-1',
      'ap-northeast-2',
      'ap-northeast-3',
      'ap-south-1',
      'ap-south-2',
      'ap-southeast-1',
      'ap-southeast-2',
      'ap-southeast-3',
      'ap-southeast-4',
      'ap-southeast-5',
      'ap-southeast-6',
      'ap-southeast-7',
      'ca-central-1',
      'ca-west-1',
      'eu-central-1',
      'eu-central-2',
      'eu-north-1',
      'eu-south-1',
      'eu-south-2',
      'eu-west-1',
      'eu-west-2',
      'eu-west-3',
      'il-central-1',
      'me-central-1',
      'me-south-1',
      'me-west-1',
      'mx-central-1',
      'sa-east-1',
      'sa-west-1',
      'us-east-1',
      'us-east-2',
      'us-west-1',
      'us-west-2',
    ],
    globalRegion: 'aws-global',
    globalSigningRegion: 'us-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-cn',
    dnsSuffix: 'amazonaws.com.cn',
    dualStackDnsSuffix: 'api.amazonwebservices.com.cn',
    regionRegex: /^cn-\w+-\d+$/,
    regions: ['cn-north-1', 'cn-northwest-1'],
    globalRegion: 'aws-cn-global',
    globalSigningRegion: 'cn-northwest-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-us-gov',
    dnsSuffix: 'amazonaws.com',
    dualStackDnsSuffix: 'api.aws',
    regionRegex: /^us-gov-\w+-\d+$/,
    regions: ['us-gov-east-1', 'us-gov-west-1'],
    globalRegion: 'aws-us-gov-global',
    globalSigningRegion: 'us-gov-west-1',
    fipsOnRegularHost: true,
  },
  {
    id: 'aws-iso',
    dnsSuffix: 'c2s.ic.gov',
    dualStackDnsSuffix: 'api.aws.ic.gov',
    regionRegex: /^us-iso-\w+-\d+$/,
    regions: ['us-iso-east-1', 'us-iso-west-1'],
    globalRegion: 'aws-iso-global',
    globalSigningRegion: 'us-iso-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-b',
    dnsSuffix: 'sc2s.sgov.gov',
    dualStackDnsSuffix: 'api.aws.scloud',
    regionRegex: /^us-isob-\w+-\d+$/,
    regions: ['us-isob-east-1', 'us-isob-west-1'],
    globalRegion: 'aws-iso-b-global',
    globalSigningRegion: 'us-isob-east-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-e',
    dnsSuffix: 'cloud.adc-e.uk',
    dualStackDnsSuffix: 'api.cloud-aws.adc-e.uk',
    regionRegex: /^eu-isoe-\w+-\d+$/,
    regions: ['eu-isoe-west-1'],
    globalRegion: 'aws-iso-e-global',
    globalSigningRegion: 'eu-isoe-west-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-iso-f',
    dnsSuffix: 'csp.hci.ic.gov',
    dualStackDnsSuffix: 'api.aws.hci.ic.gov',
    regionRegex: /^us-isof-\w+-\d+$/,
    regions: ['us-isof-east-1', 'us-isof-south-1'],
    globalRegion: 'aws-iso-f-global',
    globalSigningRegion: 'us-isof-south-1',
    fipsOnRegularHost: false,
  },
  {
    id: 'aws-eusc',
    dnsSuffix: 'amazonaws.eu',
    dualStackDnsSuffix: 'api.amazonwebservices.eu',
    regionRegex: /^eusc-(de)-\w+-\d+$/,
    regions: ['eusc-de-east-1'],
    globalRegion: undefined, // the SDK lists no aws-eusc-global pseudo-region
    globalSigningRegion: 'eusc-de-east-1',
    fipsOnRegularHost: false,
  },
]

export const PARTITION_IDS: readonly string[] = PARTITIONS.map((p) => p.id)

/** The hostname of the partition-global STS endpoint; only the `aws` partition has one. */
export const GLOBAL_STS_HOST = 'sts.amazonaws.com'

/** The config key that adds regions to the server's partition (named in token errors and by `validate`). */
export const EXTRA_REGIONS_KEY = 'server.extraRegions'

const REGION_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*-\d+$/

/**
 * What is wrong with listing `region` as an extra region of partition `p`: not a region name, or a
 * region of another partition (an error); already known (a warning). Undefined when it is fine.
 */
export function extraRegionProblem(
  region: string,
  p: Partition,
): { severity: 'error' | 'warning'; message: string } | undefined {
  if (region.length > 63 || !REGION_NAME.test(region)) {
    return { severity: 'error', message: `"${region.slice(0, 80)}" is not a region name (such as us-east-1)` }
  }
  const owner = partitionOfRegion(region)
  if (owner !== undefined && owner.id !== p.id) {
    return { severity: 'error', message: `${region} is a region of partition ${owner.id}, not of ${p.id}` }
  }
  if (p.regions.includes(region)) {
    return { severity: 'warning', message: `${region} is already a known region of partition ${p.id}` }
  }
  return undefined
}

export function findPartition(id: string): Partition | undefined {
  return PARTITIONS.find((p) => p.id === id)
}

/** The partition a region belongs to, or undefined for a region no partition claims. */
export function partitionOfRegion(region: string): Partition | undefined {
  return PARTITIONS.find((p) => p.globalRegion === region || regionBelongsTo(region, p))
}

/**
 * True when `region` is a real-region name of partition `p`, listed or of its shape (a region AWS
 * may open later); pseudo-global regions excluded. Which regions the server accepts is decided by
 * `p.regions` and the operator's additions (token/hosts.ts), not by this.
 */
export function regionBelongsTo(region: string, p: Partition): boolean {
  if (p.regions.includes(region)) return true
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
  return { host: stsHostIn(region, p, opts), signingRegion: region, partition: p.id }
}

/** The STS hostname of a real region of partition `p` (which may be one the operator added). */
export function stsHostIn(region: string, p: Partition, opts: StsEndpointOptions = {}): string {
  const suffix = opts.dualStack ? p.dualStackDnsSuffix : p.dnsSuffix
  const label = opts.fips && !(p.fipsOnRegularHost && !opts.dualStack) ? 'sts-fips' : 'sts'
  return `${label}.${region}.${suffix}`
}
