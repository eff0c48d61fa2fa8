import { TokenInvalid } from '../shared/errors.js'
import {
  EXTRA_REGIONS_KEY,
  extraRegionProblem,
  GLOBAL_STS_HOST,
  findPartition,
  partitionOfRegion,
  stsHostIn,
  type Partition,
} from '../shared/partitions.js'

export interface StsHost {
  /** `global` for sts.amazonaws.com, else the region in the hostname (the metric label upstream uses). */
  readonly stsRegion: string
  /** The region the credential scope must name. */
  readonly signingRegion: string
}

/**
 * The STS hosts a server accepts: the regular, FIPS and dual-stack hostnames of every region its
 * partition lists (plus the regions the operator added), and sts.amazonaws.com in `aws`. A finite
 * table, so an attacker cannot mint new accepted hosts (nor new metric label values) by inventing
 * region names, and the check is one map lookup.
 */
export interface StsHostPolicy {
  readonly partition: Partition
  readonly hosts: ReadonlyMap<string, StsHost>
  readonly regions: ReadonlySet<string>
}

const NO_EXTRAS: readonly string[] = []
/** Policies by partition, then by the (config-owned, never rebuilt) extra-regions array. */
const policies = new Map<string, WeakMap<readonly string[], StsHostPolicy>>()

/** The host table of a partition and extra regions; built once per distinct pair and then reused. */
export function stsHostPolicy(partitionId: string, extraRegions: readonly string[] = NO_EXTRAS): StsHostPolicy {
  let byExtras = policies.get(partitionId)
  let policy = byExtras?.get(extraRegions)
  if (policy !== undefined) return policy
  const partition = findPartition(partitionId)
  if (partition === undefined) throw new TypeError(`partition ${partitionId} not valid`)
  const regions = new Set([...partition.regions, ...extraRegions])
  const hosts = new Map<string, StsHost>()
  if (partition.id === 'aws')
    hosts.set(GLOBAL_STS_HOST, { stsRegion: 'global', signingRegion: partition.globalSigningRegion })
  for (const region of regions) {
    const host = { stsRegion: region, signingRegion: region }
    for (const fips of [false, true]) {
      for (const dualStack of [false, true]) hosts.set(stsHostIn(region, partition, { fips, dualStack }), host)
    }
  }
  policy = { partition, hosts, regions }
  if (byExtras === undefined) policies.set(partitionId, (byExtras = new WeakMap()))
  byExtras.set(extraRegions, policy)
  return policy
}

const HOST_SYNTAX = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/

/**
 * Decides whether `host` is an STS endpoint the server accepts (see StsHostPolicy). Anything else
 * is a TokenInvalid naming why: not a hostname, another partition's host, a region this release does
 * not know (and the config key that adds one), or a hostname scheme the partition does not use.
 */
export function checkStsHost(host: string, policy: StsHostPolicy | string): StsHost {
  const p = typeof policy === 'string' ? stsHostPolicy(policy) : policy
  const known = p.hosts.get(host)
  if (known !== undefined) return known
  const partition = p.partition
  if (/^[0-9.]+$/.test(host)) {
    throw new TokenInvalid('host', `an IP address is not allowed as pre-signed URL host: "${clip(host)}"`)
  }
  if (!HOST_SYNTAX.test(host)) {
    throw new TokenInvalid('host', `unexpected hostname "${clip(host)}" in pre-signed URL`)
  }
  if (host === GLOBAL_STS_HOST) {
    throw new TokenInvalid('host', `global endpoint unsupported in partition ${partition.id}`)
  }
  const labels = host.split('.')
  if (labels.length < 3) {
    throw new TokenInvalid(
      'host',
      `could not parse region for pre-signed URL ${clip(host)}, invalid host format: ${clip(host)}`,
    )
  }
  const region = labels[1]!
  if (!p.regions.has(region)) {
    const other = partitionOfRegion(region)
    if (other !== undefined && other.id !== partition.id) {
      throw new TokenInvalid(
        'host',
        `hostname "${clip(host)}" belongs to partition ${other.id}; this server accepts only partition ${partition.id}`,
      )
    }
    // The hint only where following it would work: the name of a region the config key accepts.
    const hint =
      extraRegionProblem(region, partition)?.severity === 'error'
        ? ''
        : ` (a region of partition ${partition.id} newer than this release is accepted once listed in ${EXTRA_REGIONS_KEY})`
    throw new TokenInvalid(
      'host',
      `unexpected hostname "${clip(host)}" in pre-signed URL: unknown region "${clip(region)}"${hint}`,
    )
  }
  throw new TokenInvalid('host', `partition {${partition.id}} does not support hostname ${clip(host)}`)
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s
}
