import { didYouMean } from '../shared/did-you-mean.js'

/**
 * Every region the AWS SDK's partition table lists (pseudo-global regions included), to warn about a
 * mistyped --region. test/client/known-regions.test.ts compares it with the installed SDK, so an SDK
 * upgrade that adds a region fails there until it is added here. A region missing from this list is
 * only warned about, never refused: AWS adds regions between releases.
 */
export const KNOWN_REGIONS: readonly string[] = [
  // aws
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
  'aws-global',
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
  // aws-cn
  'aws-cn-global',
  'cn-north-1',
  'cn-northwest-1',
  // aws-eusc
  'eusc-de-east-1',
  // aws-iso
  'aws-iso-global',
  'us-iso-east-1',
  'us-iso-west-1',
  // aws-iso-b
  'aws-iso-b-global',
  'us-isob-east-1',
  'us-isob-west-1',
  // aws-iso-e
  'aws-iso-e-global',
  'eu-isoe-west-1',
  // aws-iso-f
  'aws-iso-f-global',
  'us-isof-east-1',
  'us-isof-south-1',
  // aws-us-gov
  'aws-us-gov-global',
  'us-gov-east-1',
  'us-gov-west-1',
]

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
