import { didYouMean } from '../shared/did-you-mean.js'
import { PARTITIONS } from '../shared/partitions.js'

/**
 * Every region the AWS SDK's partition table lists (pseudo-global regions included), to warn about a
 * mistyped --region: the regions of shared/partitions.ts, which test/shared/partitions.test.ts keeps
 * equal to the installed SDK's. A region missing from this list is only warned about, never refused:
 * AWS adds regions between releases.
 */
export const KNOWN_REGIONS: readonly string[] = PARTITIONS.flatMap((p) => [
  ...p.regions,
  ...(p.globalRegion === undefined ? [] : [p.globalRegion]),
])

/**
 * A one-line warning when `region` is not a region the SDK knows, naming the known region it most
 * likely meant (`eu-west1` -> `eu-west-1`) when one is close; undefined for a known region. The
 * token is signed anyway. `origin` says where the region came from (`--region`, `AWS_REGION`,
 * `profile "dev"`).
 */
export function unknownRegionWarning(region: string, origin: string): string | undefined {
  if (KNOWN_REGIONS.includes(region)) return undefined
  // clipped: no region name is longer, and the distance costs the product of the lengths
  const meant = didYouMean(region.slice(0, 32), KNOWN_REGIONS)
  const shown = JSON.stringify(region.length > 64 ? `${region.slice(0, 64)}...` : region)
  return (
    `warning: region ${shown} (${origin}) is not a known AWS region; ` +
    (meant === undefined ? 'signing for it anyway' : `did you mean "${meant}"? Signing for it anyway`)
  )
}
