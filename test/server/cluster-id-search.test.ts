// Which cluster ID a token names, found the only way there is: asking STS with each accepted ID.
// The order (the ID a credential last verified with first) and when the search ends (only a
// signature mismatch moves on), so that a token never costs more than one STS call per accepted ID.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clusterIdOrder, searchClusterIds } from '../../src/server/cluster-id-search.js'
import { StsRejected, StsThrottled, StsUnavailable } from '../../src/shared/errors.js'
import { identityOf } from '../support/identities.js'

const ALICE = identityOf('arn:aws:iam::111122223333:user/alice')
const TEXT = 'error from AWS (expected 200, got 403) on us-west-2 endpoint: SignatureDoesNotMatch: no'
const mismatch = () => new StsRejected(TEXT, { status: 403, stsCode: 'SignatureDoesNotMatch', signatureMismatch: true })

/** An STS that verifies the token only for `signedFor`, answering like STS otherwise; records each call. */
function stsFor(signedFor: string | undefined, otherwise: () => Error = mismatch) {
  const calls: string[] = []
  const attempt = async (clusterId: string) => {
    calls.push(clusterId)
    if (clusterId === signedFor) return ALICE
    throw otherwise()
  }
  return { calls, attempt }
}

describe('clusterIdOrder', () => {
  const accepted = ['green', 'blue', 'old']
  it('clusterID first, then clusterIDs in order, unless the credential last verified with another', () => {
    expect(clusterIdOrder(accepted, undefined)).toEqual(['green', 'blue', 'old'])
    expect(clusterIdOrder(accepted, 'green')).toEqual(['green', 'blue', 'old'])
    expect(clusterIdOrder(accepted, 'old')).toEqual(['old', 'green', 'blue'])
    expect(clusterIdOrder(accepted, 'blue')).toEqual(['blue', 'green', 'old'])
  })

  it('a remembered ID no longer accepted changes nothing', () => {
    expect(clusterIdOrder(accepted, 'purple')).toEqual(accepted)
  })
})

describe('searchClusterIds', () => {
  it('the first ID that verifies wins: one call for a token naming the first, one more per ID before it', async () => {
    for (const [signedFor, calls] of [
      ['green', ['green']],
      ['blue', ['green', 'blue']],
      ['old', ['green', 'blue', 'old']],
    ] as const) {
      const sts = stsFor(signedFor)
      expect(await searchClusterIds(['green', 'blue', 'old'], sts.attempt)).toEqual({
        identity: ALICE,
        clusterId: signedFor,
      })
      expect(sts.calls).toEqual(calls)
    }
  })

  it('a token for none of them: every ID once, then the refusal, naming the IDs tried', async () => {
    const sts = stsFor('purple')
    const err = (await searchClusterIds(['green', 'blue'], sts.attempt).catch((e: unknown) => e)) as StsRejected
    expect(sts.calls).toEqual(['green', 'blue'])
    expect(err).toBeInstanceOf(StsRejected)
    expect(err.message).toBe(`sts getCallerIdentity failed: ${TEXT} (for every accepted cluster ID: green, blue)`)
    expect([err.status, err.stsCode, err.signatureMismatch]).toEqual([403, 'SignatureDoesNotMatch', true])
  })

  it('with one accepted ID the refusal is STS answer as is', async () => {
    const sts = stsFor('purple')
    const err = (await searchClusterIds(['green'], sts.attempt).catch((e: unknown) => e)) as StsRejected
    expect(err.message).toBe(`sts getCallerIdentity failed: ${TEXT}`)
  })

  it.each([
    ['an unknown credential', () => new StsRejected('x', { status: 403, stsCode: 'InvalidClientTokenId' })],
    ['an expired session', () => new StsRejected('x', { status: 403, stsCode: 'ExpiredToken' })],
    [
      'a signing time STS no longer accepts',
      () => new StsRejected('Signature expired: ...', { status: 403, stsCode: 'SignatureDoesNotMatch' }),
    ],
    ['throttling', () => new StsThrottled('slow down', { status: 400 })],
    ['STS unavailable', () => new StsUnavailable('500', { status: 500 })],
    ['a bug', () => new TypeError('boom')],
  ])('%s ends the search at once with that answer: no other ID could change it', async (_name, answer) => {
    const sts = stsFor('blue', answer)
    const err = await searchClusterIds(['green', 'blue', 'old'], sts.attempt).catch((e: unknown) => e)
    expect(sts.calls).toEqual(['green'])
    expect(err).toBeInstanceOf(answer().constructor)
    expect((err as Error).message).toBe(answer().message)
  })

  it('property: never more calls than accepted IDs, each ID at most once, and a call after one only on a mismatch', async () => {
    const outcome = fc.constantFrom('ok', 'mismatch', 'refused', 'throttled', 'down')
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 5 }),
        fc.array(outcome, { minLength: 5, maxLength: 5 }),
        async (ids, outcomes) => {
          const calls: string[] = []
          const answers: string[] = []
          const attempt = async (id: string) => {
            const o = outcomes[calls.length]!
            calls.push(id)
            answers.push(o)
            if (o === 'ok') return ALICE
            if (o === 'mismatch') throw mismatch()
            if (o === 'refused') throw new StsRejected('x', { status: 403, stsCode: 'InvalidClientTokenId' })
            if (o === 'throttled') throw new StsThrottled('x')
            throw new StsUnavailable('x')
          }
          const result = await searchClusterIds(ids, attempt).then(
            (v) => v,
            () => undefined,
          )
          expect(calls.length).toBeLessThanOrEqual(ids.length)
          expect(new Set(calls).size).toBe(calls.length)
          expect(calls).toEqual(ids.slice(0, calls.length))
          // every answer but the last was a mismatch; the last ended the search (or no ID was left)
          expect(answers.slice(0, -1).every((a) => a === 'mismatch')).toBe(true)
          const last = answers.at(-1)
          if (last === 'mismatch') expect(calls.length).toBe(ids.length)
          expect(result?.clusterId).toBe(last === 'ok' ? calls.at(-1) : undefined)
        },
      ),
      { numRuns: 300 },
    )
  })
})
