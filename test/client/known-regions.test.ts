// src/client/known-regions.ts lists the regions the AWS SDK's partition table lists (those of
// src/shared/partitions.ts); this compares it with the SDK installed in node_modules, so an SDK
// upgrade that adds a region fails here until the table follows.
import { beforeAll, describe, expect, it } from 'vitest'
import { KNOWN_REGIONS, unknownRegionWarning } from '../../src/client/known-regions.js'
import { loadSdkPartitions } from '../support/tokens.js'

let sdkRegions: string[]
beforeAll(async () => {
  sdkRegions = (await loadSdkPartitions()).flatMap((p) => Object.keys(p.regions))
})

describe('known regions', () => {
  it('are exactly the regions of the SDK partition table, pseudo-global ones included', () => {
    expect([...KNOWN_REGIONS].sort()).toEqual([...sdkRegions].sort())
  })

  it('a known region gets no warning', () => {
    for (const r of sdkRegions) expect(unknownRegionWarning(r, '--region')).toBeUndefined()
  })

  it.each([
    ['eu-west1', 'eu-west-1'],
    ['euwest-1', 'eu-west-1'],
    ['us-east-3', 'us-east-1'],
    ['US-WEST-2', 'us-west-2'],
    ['ap-southeast2', 'ap-southeast-2'],
    ['cn-northwest1', 'cn-northwest-1'],
    ['us-gov-west', 'us-gov-west-1'],
    ['aws-globl', 'aws-global'],
  ])('%s: did you mean %s?', (typo, known) => {
    expect(unknownRegionWarning(typo, 'AWS_REGION')).toBe(
      `warning: region "${typo}" (AWS_REGION) is not a known AWS region; did you mean "${known}"? Signing for it anyway`,
    )
  })

  it('nothing close: no guess, still signed', () => {
    expect(unknownRegionWarning('mars-north-9', '--region')).toBe(
      'warning: region "mars-north-9" (--region) is not a known AWS region; signing for it anyway',
    )
  })

  it('a very long or odd value is answered at once, on one line, clipped', () => {
    const started = performance.now()
    const warning = unknownRegionWarning(`${'x'.repeat(100_000)}\n`, '--region')!
    expect(performance.now() - started).toBeLessThan(200)
    expect(warning).toBe(
      `warning: region "${'x'.repeat(64)}..." (--region) is not a known AWS region; signing for it anyway`,
    )
    expect(unknownRegionWarning('eu-west-1\nline two', 'AWS_REGION')).toMatch(
      /^warning: region "eu-west-1\\nline two" \(AWS_REGION\)/,
    )
  })
})
