// The cost of several cluster IDs (clusterID plus clusterIDs): a token names its cluster ID only
// inside its signature, so the server asks STS with one accepted ID after another. Cache misses
// (each review a new token) at STS +20 ms, 10 connections, on servers with the default
// configuration:
//   j0. one cluster ID (no clusterIDs), tokens naming it: the reference;
//   then on a server with the most clusterIDs allowed (4), tokens naming
//   j1. clusterID;
//   j2. the last of clusterIDs, from returning users (their credential last verified with it);
//   j3. the last of clusterIDs, from first-time users (each credential's first token);
//   j4. nothing: known access key IDs with a wrong signature (forged).
// Every phase checks every answer and the STS calls per review it expects.
import { encodeToken } from '../../src/token/format.js'
import { runLoad, type LoadResult } from './load.js'
import { BENCH_CLUSTER, FIRST_TIME_COUNT, PRINCIPAL_COUNT } from './principals.js'
import { startServer, type ServerProcess, type StsProcess } from './services.js'
import { removeDir } from './procs.js'
import { fmt, markdownTable } from './stats.js'
import { reviewBody, TokenFactory } from './tokens.js'

export const ALTERNATES = ['bench-blue', 'bench-green', 'bench-old-1', 'bench-old-2'] as const
const LAST = ALTERNATES.at(-1)!
const HALF = PRINCIPAL_COUNT / 2

export interface ClusterIdPhase extends LoadResult {
  readonly key: string
  readonly name: string
  readonly stsCalls: number
  readonly stsCallsPerReview: number
  readonly expectedCallsPerReview: number
}

export interface ClusterIdsResult {
  readonly alternates: readonly string[]
  readonly phases: readonly ClusterIdPhase[]
}

export interface ClusterIdsOptions {
  readonly home: string
  readonly sts: StsProcess
  readonly phaseMs: number
  readonly connections: number
  readonly nodeFlags: readonly string[]
  readonly log: (line: string) => void
  /** Records a sanity check (a failed one fails the run). */
  readonly expect: (check: string, ok: boolean, detail: string) => void
}

/** The same token with a signature nobody made: STS answers SignatureDoesNotMatch whatever the cluster ID. */
function forgedSignature(token: string, i: number): string {
  const url = Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString('utf8')
  const signature = (i.toString(16).padStart(8, '0') + 'f'.repeat(56)).slice(0, 64)
  return encodeToken(url.replace(/X-Amz-Signature=[0-9a-f]{64}/, `X-Amz-Signature=${signature}`))
}

export async function benchClusterIds(o: ClusterIdsOptions): Promise<ClusterIdsResult> {
  const phases: ClusterIdPhase[] = []
  const supply = (perSecond: number) => Math.ceil(perSecond * (o.phaseMs / 1000) * 1.3)
  /** Up to CONNECTIONS / 20 ms reviews a second when each costs one STS call. */
  const oneCall = supply(o.connections / 0.02)
  const allCalls = supply(o.connections / 0.02 / (1 + ALTERNATES.length))

  async function phase(
    srv: ServerProcess,
    key: string,
    name: string,
    bodies: readonly string[],
    expected: { answer: 'allow' | 'deny'; callsPerReview: number },
  ): Promise<void> {
    const before = (await o.sts.calls()).getCallerIdentity
    const r = await runLoad(srv.pool, {
      concurrency: o.connections,
      maxMs: o.phaseMs,
      maxRequests: bodies.length,
      body: (i) => bodies[i]!,
    })
    const stsCalls = (await o.sts.calls()).getCallerIdentity - before
    const p: ClusterIdPhase = {
      key,
      name,
      ...r,
      stsCalls,
      stsCallsPerReview: stsCalls / Math.max(1, r.requests),
      expectedCallsPerReview: expected.callsPerReview,
    }
    phases.push(p)
    const fails = Object.entries(r.failures).map(([k, v]) => `${k}:${v}`)
    o.log(
      `  ${key}. ${name}: ${fmt(r.perSecond, 0)} reviews/s, p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms, ` +
        `${fmt(p.stsCallsPerReview, 2)} STS calls per review (${r.requests} reviews, authenticated ${r.authenticated}, ${fails.join(' ') || 'no failures'})`,
    )
    o.expect(`${key}. at least 50 reviews`, r.requests >= 50, `${r.requests}`)
    const answered = expected.answer === 'allow' ? r.authenticated : (r.failures['200-denied'] ?? 0)
    o.expect(
      `${key}. every review answered 200 ${expected.answer === 'allow' ? 'authenticated' : 'denied'}`,
      answered === r.requests,
      `${answered}/${r.requests}; ${fails.join(' ')}`,
    )
    o.expect(
      `${key}. ${expected.callsPerReview} STS call(s) per review`,
      stsCalls === expected.callsPerReview * r.requests,
      `${stsCalls} STS calls for ${r.requests} reviews`,
    )
  }

  await o.sts.setLatency(20)
  const start = (clusterIds?: readonly string[]) =>
    startServer({
      home: o.home,
      stsUrl: o.sts.url,
      defaults: true,
      connections: o.connections,
      nodeFlags: o.nodeFlags,
      ...(clusterIds === undefined ? {} : { clusterIds }),
    })
  let srv: ServerProcess | undefined
  try {
    srv = await start()
    const reference = new TokenFactory(Date.now(), { principals: { first: 0, count: HALF } })
    await phase(srv, 'j0', 'one cluster ID, tokens naming it', await reference.freshBodies(oneCall), {
      answer: 'allow',
      callsPerReview: 1,
    })
    await srv.stop()
    removeDir(srv.dir)

    srv = await start(ALTERNATES)
    const main = new TokenFactory(Date.now(), { principals: { first: 0, count: HALF } })
    await phase(srv, 'j1', 'clusterID', await main.freshBodies(oneCall), { answer: 'allow', callsPerReview: 1 })

    const returning = new TokenFactory(Date.now(), { principals: { first: HALF, count: HALF }, clusterId: LAST })
    const primer = await returning.freshBodies(HALF)
    const primed = await runLoad(srv.pool, {
      concurrency: o.connections,
      maxMs: 60_000,
      maxRequests: HALF,
      body: (i) => primer[i]!,
    })
    o.expect('j2. its users verified once before', primed.authenticated === HALF, JSON.stringify(primed.failures))
    await phase(srv, 'j2', `the last of clusterIDs, returning users`, await returning.freshBodies(oneCall), {
      answer: 'allow',
      callsPerReview: 1,
    })

    const firstTime = new TokenFactory(Date.now(), {
      principals: { first: PRINCIPAL_COUNT, count: FIRST_TIME_COUNT },
      windowS: 1,
      clusterId: LAST,
    })
    const firstBodies = await firstTime.freshBodies(Math.min(FIRST_TIME_COUNT, allCalls))
    await phase(srv, 'j3', 'the last of clusterIDs, first-time users', firstBodies, {
      answer: 'allow',
      callsPerReview: 1 + ALTERNATES.length,
    })

    const victims = new TokenFactory(Date.now(), {
      principals: { first: 0, count: HALF },
      windowStartS: 610,
      windowS: 120,
    })
    const forged: string[] = []
    for (let i = 0; i < allCalls; i++) forged.push(reviewBody(forgedSignature(await victims.token(i), i)))
    await phase(srv, 'j4', 'forged: known access key IDs, wrong signature', forged, {
      answer: 'deny',
      callsPerReview: 1 + ALTERNATES.length,
    })
  } finally {
    await srv?.stop()
    if (srv) removeDir(srv.dir)
    await o.sts.setLatency(0)
  }
  return { alternates: [BENCH_CLUSTER, ...ALTERNATES], phases }
}

/** The scenario's table: one row per phase. */
export function clusterIdsTable(r: ClusterIdsResult): string {
  return markdownTable(
    [
      `new tokens, STS +20 ms (clusterID ${BENCH_CLUSTER}, clusterIDs: ${ALTERNATES.length})`,
      'reviews/s',
      'p50 ms',
      'p99 ms',
      'STS calls per review',
    ],
    r.phases.map((p) => [
      `${p.key}. ${p.name}`,
      fmt(p.perSecond, 0),
      fmt(p.p50Ms, 1),
      fmt(p.p99Ms, 1),
      fmt(p.stsCallsPerReview, 2),
    ]),
  )
}
