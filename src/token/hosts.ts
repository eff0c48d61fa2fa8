import { TokenInvalid } from '../shared/errors.js'
import {
  GLOBAL_STS_HOST,
  findPartition,
  partitionOfRegion,
  regionBelongsTo,
  stsEndpointFor,
} from '../shared/partitions.js'

export interface StsHost {
  /** `global` for sts.amazonaws.com, else the region in the hostname (the metric label upstream uses). */
  readonly stsRegion: string
  /** The region the credential scope must name. */
  readonly signingRegion: string
}

const HOST_SYNTAX = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/

/**
 * Decides whether `host` is an STS endpoint of partition `partitionId`: the regular, FIPS or
 * dual-stack hostname of a region of that partition, or sts.amazonaws.com in `aws`. Exact string
 * comparison against the hostnames the SDK would produce, so no cache is needed or kept.
 */
export function checkStsHost(host: string, partitionId: string): StsHost {
  const partition = findPartition(partitionId)
  if (partition === undefined) throw new TypeError(`partition ${partitionId} not valid`)
  if (/^[0-9.]+$/.test(host)) {
    throw new TokenInvalid('host', `an IP address is not allowed as pre-signed URL host: "${clip(host)}"`)
  }
  if (!HOST_SYNTAX.test(host)) {
    throw new TokenInvalid('host', `unexpected hostname "${clip(host)}" in pre-signed URL`)
  }
  if (host === GLOBAL_STS_HOST) {
    if (partition.id !== 'aws') {
      throw new TokenInvalid('host', `global endpoint unsupported in partition ${partition.id}`)
    }
    return { stsRegion: 'global', signingRegion: partition.globalSigningRegion }
  }
  const labels = host.split('.')
  if (labels.length < 3) {
    throw new TokenInvalid(
      'host',
      `could not parse region for pre-signed URL ${clip(host)}, invalid host format: ${clip(host)}`,
    )
  }
  const region = labels[1]!
  if (!regionBelongsTo(region, partition)) {
    const other = partitionOfRegion(region)
    if (other !== undefined && other.id !== partition.id) {
      throw new TokenInvalid(
        'host',
        `hostname "${clip(host)}" belongs to partition ${other.id}; this server accepts only partition ${partition.id}`,
      )
    }
    throw new TokenInvalid(
      'host',
      `unexpected hostname "${clip(host)}" in pre-signed URL: unknown region "${clip(region)}"`,
    )
  }
  for (const fips of [false, true]) {
    for (const dualStack of [false, true]) {
      if (stsEndpointFor(region, { fips, dualStack }).host === host) {
        return { stsRegion: region, signingRegion: region }
      }
    }
  }
  throw new TokenInvalid('host', `partition {${partition.id}} does not support hostname ${clip(host)}`)
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s
}
