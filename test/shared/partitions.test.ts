// Drift tests: src/shared/partitions.ts is a hand-kept copy of what the AWS SDK knows about
// partitions and STS endpoints. These compare it with the SDK installed in node_modules, so an SDK
// upgrade that adds a partition, a region or a hostname scheme fails here first.

import { partition as sdkPartition } from '@aws-sdk/util-endpoints'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkStsHost } from '../../src/token/hosts.js'
import {
  GLOBAL_STS_HOST,
  PARTITIONS,
  PARTITION_IDS,
  findPartition,
  partitionOfRegion,
  regionBelongsTo,
  stsEndpointFor,
} from '../../src/shared/partitions.js'
import { type SdkPartition, loadSdkPartitions, sdkStsEndpoint } from '../support/tokens.js'

const COMBOS = [
  { fips: false, dualStack: false },
  { fips: false, dualStack: true },
  { fips: true, dualStack: false },
  { fips: true, dualStack: true },
] as const

let sdk: readonly SdkPartition[]
/** Every region the SDK lists, pseudo-global ones included, with the partition listing it. */
let listed: Array<{ region: string; partition: SdkPartition }>

beforeAll(async () => {
  sdk = await loadSdkPartitions()
  listed = sdk.flatMap((p) => Object.keys(p.regions).map((region) => ({ region, partition: p })))
})

describe('partition table vs the SDK partitions table', () => {
  it('knows exactly the SDK partitions', () => {
    expect([...PARTITION_IDS].sort()).toEqual(sdk.map((p) => p.id).sort())
  })

  it('has the SDK dnsSuffix, dualStackDnsSuffix, region regex and implicit global region for each', () => {
    for (const p of sdk) {
      const ours = findPartition(p.id)!
      expect({ id: ours.id, dns: ours.dnsSuffix, dualStack: ours.dualStackDnsSuffix }).toEqual({
        id: p.outputs.name,
        dns: p.outputs.dnsSuffix,
        dualStack: p.outputs.dualStackDnsSuffix,
      })
      // The SDK escapes every hyphen (`\-`); the patterns are otherwise written the same way.
      expect(ours.regionRegex.source, p.id).toBe(p.regionRegex.replace(/\\-/g, '-'))
      expect(ours.globalSigningRegion, p.id).toBe(p.outputs.implicitGlobalRegion)
      const pseudo = Object.keys(p.regions).filter((r) => r.endsWith('-global'))
      expect(ours.globalRegion === undefined ? [] : [ours.globalRegion], p.id).toEqual(pseudo)
      // stsEndpointFor assumes every partition offers both variants.
      expect(p.outputs.supportsFIPS && p.outputs.supportsDualStack, p.id).toBe(true)
    }
  })

  it('lists exactly the real regions the SDK lists for each partition (the regions the server accepts)', () => {
    for (const p of sdk) {
      const theirs = Object.keys(p.regions).filter((r) => !r.endsWith('-global'))
      const ours = findPartition(p.id)!.regions
      const add = theirs.filter((r) => !ours.includes(r))
      const remove = ours.filter((r) => !theirs.includes(r))
      // An SDK upgrade that lists a new region lands here: add it to `regions` in src/shared/partitions.ts.
      expect({ partition: p.id, add, remove }).toEqual({ partition: p.id, add: [], remove: [] })
      expect([...ours].sort(), p.id).toEqual([...ours])
    }
  })

  it('every listed real region matches its partition regex', () => {
    for (const { region, partition } of listed) {
      if (region.endsWith('-global')) continue
      expect(new RegExp(partition.regionRegex).test(region), region).toBe(true)
    }
  })
})

describe('partitionOfRegion vs the SDK partition() function', () => {
  it('agrees on the partition, dnsSuffix and dualStackDnsSuffix of every listed region', () => {
    expect(listed.length).toBeGreaterThan(40)
    for (const { region, partition } of listed) {
      const theirs = sdkPartition(region)
      const ours = partitionOfRegion(region)
      expect(ours?.id, region).toBe(partition.id)
      expect({ id: ours?.id, dns: ours?.dnsSuffix, dualStack: ours?.dualStackDnsSuffix }, region).toEqual({
        id: theirs.name,
        dns: theirs.dnsSuffix,
        dualStack: theirs.dualStackDnsSuffix,
      })
    }
  })

  it('agrees on unlisted names that match a partition regex (future regions)', () => {
    const future = [
      'us-east-9',
      'ap-southeast-99',
      'mx-west-2',
      'cn-south-1',
      'us-gov-central-1',
      'us-iso-north-2',
      'us-isob-south-1',
      'eu-isoe-north-1',
      'us-isof-west-1',
      'eusc-de-west-1',
    ]
    for (const region of future) {
      expect(partitionOfRegion(region)?.id, region).toBe(sdkPartition(region).name)
      expect(regionBelongsTo(region, partitionOfRegion(region)!), region).toBe(true)
    }
  })

  it('claims no partition for names no regex matches (the SDK silently falls back to aws)', () => {
    const names = [
      'not-a-region',
      'local',
      'default-region',
      'eusc-fr-east-1',
      'us_east_1',
      'US-EAST-1',
      '',
      'aws-eusc-global',
    ]
    for (const region of names) {
      expect(partitionOfRegion(region), region).toBeUndefined()
      expect(sdkPartition(region).name, region).toBe('aws')
    }
  })

  it('keeps partitions disjoint: no listed region belongs to two of ours', () => {
    for (const { region } of listed) {
      if (region.endsWith('-global')) continue
      expect(
        PARTITIONS.filter((p) => regionBelongsTo(region, p)).map((p) => p.id),
        region,
      ).toHaveLength(1)
    }
  })
})

describe('stsEndpointFor vs the SDK STS endpoint resolver', () => {
  it('produces the SDK host and signing region for every listed real region, all four variants', async () => {
    let compared = 0
    for (const { region, partition } of listed) {
      if (region.endsWith('-global')) continue
      for (const combo of COMBOS) {
        const theirs = await sdkStsEndpoint(region, combo)
        if (theirs === undefined) continue
        expect(stsEndpointFor(region, combo), `${region} ${JSON.stringify(combo)}`).toEqual({
          host: theirs.host,
          signingRegion: theirs.signingRegion,
          partition: partition.id,
        })
        compared++
      }
    }
    expect(compared).toBe(listed.filter((l) => !l.region.endsWith('-global')).length * 4)
  })

  it('aws-global without FIPS or dual-stack is the legacy global endpoint signed for us-east-1, as in the SDK', async () => {
    const theirs = await sdkStsEndpoint('aws-global', { fips: false, dualStack: false })
    expect(theirs).toEqual({ host: GLOBAL_STS_HOST, signingRegion: 'us-east-1' })
    expect(stsEndpointFor('aws-global')).toEqual({
      host: GLOBAL_STS_HOST,
      signingRegion: 'us-east-1',
      partition: 'aws',
    })
  })

  it('other pseudo-global regions resolve to the endpoint of the partition implicit global region (deliberate)', async () => {
    // The SDK rules would produce `sts[-fips].<pseudo-region>.<suffix>` (e.g.
    // sts.aws-cn-global.amazonaws.com.cn), which is no STS endpoint and which our own host check
    // refuses. We send such clients to the partition's implicit global region instead.
    for (const { region, partition } of listed) {
      if (!region.endsWith('-global')) continue
      for (const combo of COMBOS) {
        if (region === 'aws-global' && !combo.fips && !combo.dualStack) continue
        const literal = await sdkStsEndpoint(region, combo)
        expect(literal?.host, region).toContain(`.${region}.`)
        const viaImplicit = await sdkStsEndpoint(partition.outputs.implicitGlobalRegion, combo)
        expect(stsEndpointFor(region, combo), `${region} ${JSON.stringify(combo)}`).toEqual({
          host: viaImplicit!.host,
          signingRegion: partition.outputs.implicitGlobalRegion,
          partition: partition.id,
        })
      }
    }
  })

  it('a name the SDK does not list (aws-eusc-global) gets the SDK fallback host, which our host check refuses', async () => {
    for (const combo of COMBOS) {
      const theirs = await sdkStsEndpoint('aws-eusc-global', combo)
      const ours = stsEndpointFor('aws-eusc-global', combo)
      expect({ host: ours.host, signingRegion: ours.signingRegion }).toEqual(theirs)
      expect(ours.partition).toBe('aws')
    }
    expect(() => checkStsHost('sts.aws-eusc-global.amazonaws.com', 'aws')).toThrow(
      'unexpected hostname "sts.aws-eusc-global.amazonaws.com" in pre-signed URL: unknown region "aws-eusc-global"',
    )
  })

  it('aws-us-gov serves FIPS on its regular hostname, like the SDK', async () => {
    expect(stsEndpointFor('us-gov-west-1', { fips: true }).host).toBe('sts.us-gov-west-1.amazonaws.com')
    expect((await sdkStsEndpoint('us-gov-west-1', { fips: true, dualStack: false }))?.host).toBe(
      'sts.us-gov-west-1.amazonaws.com',
    )
    expect(stsEndpointFor('us-gov-west-1', { fips: true, dualStack: true }).host).toBe('sts-fips.us-gov-west-1.api.aws')
  })
})
