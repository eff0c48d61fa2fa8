// A flood of forged tokens (random access key IDs, bad signatures: each costs an STS call that says
// InvalidClientTokenId) far beyond the server's STS capacity, with genuine users beside it: returning
// users (keys STS confirmed and the mapping let in before the flood) and first-time users (keys
// never seen). The default per-caller limit refuses nobody; returning users are served ahead of the
// flood; first-time users wait their turn but are served; memory and the STS queue stay bounded.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FakeSts, FakeStsPrincipal } from '../support/fake-sts.js'
import { toToken } from '../support/tokens.js'
import {
  CAROL,
  DAVE,
  distinctTokens,
  endLoadSuite,
  expectHealthy,
  gaugesDrain,
  measureLoad,
  memory,
  percentile,
  reviewBody,
  runLoad,
  startLoadSts,
  startServerUnderTest,
  watchCrashes,
  type CrashWatch,
  type ReviewResult,
  type ServerUnderTest,
  type StatsRow,
} from './support/harness.js'

const STS_LATENCY_MS = 50
const ACCOUNT = '111122223333'
const RETURNING = [CAROL, DAVE]
/** First-time users: keys STS knows, mapped through mapAccounts, never seen by the server before. */
const FIRST_TIME: FakeStsPrincipal[] = Array.from({ length: 60 }, (_, i) => ({
  accessKeyId: `AKIAKIAFLOODNEW${String(i).padStart(5, '0')}`,
  secretAccessKey: `flood/new+secret/${i}/0123456789abcdefghijklmnopq`.slice(0, 40),
  arn: `arn:aws:iam::${ACCOUNT}:user/newcomer-${i}`,
  account: ACCOUNT,
  userId: `AIDAKIAFLOODNEW${String(i).padStart(5, '0')}`,
}))

/** A well-formed token nobody signed: a random access key ID in AWS's format, a random signature. */
function forged(): string {
  const bytes = randomBytes(48)
  const akid = `AKIA${[...bytes.subarray(0, 16)].map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b & 31]).join('')}`
  const date = new Date(Date.now() - 5_000)
  const amz = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')
  return toToken(
    'https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15' +
      `&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${akid}%2F${amz.slice(0, 8)}%2Fus-west-2%2Fsts%2Faws4_request` +
      `&X-Amz-Date=${amz}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id` +
      `&X-Amz-Signature=${bytes.subarray(16).toString('hex')}`,
  )
}

const ms = (results: readonly ReviewResult[], p: number) =>
  percentile(
    results.map((r) => r.ms),
    p,
  )

describe('a flood of forged tokens beside genuine users', () => {
  let crashes: CrashWatch
  let sts: FakeSts
  let srv: ServerUnderTest
  const rows: StatsRow[] = []

  beforeAll(async () => {
    crashes = watchCrashes()
    sts = await startLoadSts()
    for (const p of FIRST_TIME) sts.addPrincipal(p)
    srv = await startServerUnderTest({
      stsUrl: sts.url,
      server: {
        mapUsers: RETURNING.map((p) => ({ userarn: p.arn, username: p.arn.split('/').at(-1)!, groups: ['devs'] })),
        mapAccounts: [ACCOUNT],
        // 8 STS slots against 64 connections of forged tokens: the flood is far beyond capacity.
        stsMaxConcurrency: 8,
        stsQueueTimeout: '2s',
        stsTimeout: '2s',
      },
    })
    // the returning users log in once before the flood
    for (const t of await distinctTokens(RETURNING, RETURNING.length)) {
      expect((await srv.review(t)).json().status.authenticated).toBe(true)
    }
    sts.setLatency(STS_LATENCY_MS)
  })

  afterAll(() => endLoadSuite('flood (STS 50 ms, stsMaxConcurrency 8)', rows, crashes, srv, [sts]))

  it('returning users are served ahead of the flood, first-time users are served, nothing is refused by our own limits', async () => {
    const returning = (await distinctTokens(RETURNING, 40)).map((t) => reviewBody(t))
    const { presignedToken } = await import('../support/tokens.js')
    const firstTime = await Promise.all(
      FIRST_TIME.map(async (p) =>
        reviewBody(await presignedToken({ principal: p, now: new Date(Date.now() - 2_000) })),
      ),
    )
    const flood = Array.from({ length: 4000 }, () => reviewBody(forged()))
    const before = await memory()
    const callsBefore = sts.calls.getCallerIdentity
    let genuine: Array<{ results: ReviewResult[] }> = []
    const { run, samples, row } = await measureLoad(srv, 'forged x64 + returning x2 + first-time x2', flood, {
      concurrency: 64,
      maxMs: 4_000,
      during: async () => {
        genuine = await Promise.all([
          runLoad(srv, returning, { concurrency: 2, maxMs: 3_500 }),
          runLoad(srv, firstTime, { concurrency: 2, maxMs: 3_500 }),
        ])
      },
    })
    rows.push(row)
    const [back, newcomers] = genuine.map((g) => g.results) as [ReviewResult[], ReviewResult[]]
    const after = await memory()
    const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10
    console.log(
      `flood: ${run.results.length} forged (p50 ${Math.round(ms(run.results, 50))} ms), ${back.length} returning (p50 ${Math.round(ms(back, 50))} ms, p99 ${Math.round(ms(back, 99))} ms), ` +
        `${newcomers.length} first-time (p50 ${Math.round(ms(newcomers, 50))} ms); STS calls ${sts.calls.getCallerIdentity - callsBefore}; ` +
        `heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB`,
    )
    // the flood is answered: definitive denials, or 503 once it has waited its turn too long; never 429
    expect(run.results.filter((r) => !(r.status === 200 && r.authenticated === false) && r.status !== 503)).toEqual([])
    expect(back.length).toBeGreaterThanOrEqual(20)
    expect(back.filter((r) => r.status !== 200 || r.authenticated !== true)).toEqual([])
    // served ahead of the flood: their wait is a small part of what a forged token waits
    expect(ms(back, 50)).toBeLessThan(ms(run.results, 50) / 2)
    expect(newcomers.length).toBeGreaterThanOrEqual(10)
    const newcomersIn = newcomers.filter((r) => r.status === 200 && r.authenticated === true)
    expect(newcomersIn.length).toBeGreaterThanOrEqual(0.95 * newcomers.length)
    expectHealthy(samples)
    await gaugesDrain(srv, 5_000)
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 2 ** 20)
  }, 60_000)
})
