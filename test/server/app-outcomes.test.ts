// The outcome table (src/server/outcome.ts) through the HTTP app, in-process: for every error a
// decision can carry, the HTTP status, the body kube-apiserver gets (a cacheable denial, or a
// transient failure with status.error), the metric labels and the audit log level. The table here is
// written out on its own, not derived from outcome.ts, so a change to either shows.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  ArnInvalid,
  CacheError,
  ConfigInvalid,
  CredentialsError,
  KubeApiFailed,
  MappingFailed,
  NotMapped,
  RateLimited,
  StsRejected,
  StsThrottled,
  StsUnavailable,
  TokenInvalid,
  UsageError,
} from '../../src/shared/errors.js'
import {
  ALICE_IDENTITY,
  allowed,
  refused,
  startApp,
  tokenReviewBody,
  type InProcessApp,
} from '../support/in-process-app.js'

const TOKEN = 'k8s-aws-v1.outcome-token-never-logged'
const LATENCY = 'aws_iam_authenticator_authenticate_latency_seconds'

interface Row {
  readonly name: string
  readonly error: () => Error
  readonly status: 200 | 429 | 500 | 503
  /** `denied`: authenticated false, no status.error (kube-apiserver caches it); `failed`: with status.error. */
  readonly body: 'denied' | 'failed'
  /** authenticate_latency_seconds{result} */
  readonly result: string
  /** reviews_total{decision, reason} */
  readonly decision: 'deny' | 'error'
  readonly reason: string
  readonly level: 'info' | 'warn' | 'error'
}

const ROWS: readonly Row[] = [
  {
    name: 'ERR_TOKEN_INVALID',
    error: () => new TokenInvalid('expired', 'X-Amz-Date parameter is expired'),
    status: 200,
    body: 'denied',
    result: 'invalid_token',
    decision: 'deny',
    reason: 'expired',
    level: 'info',
  },
  {
    name: 'ERR_STS_REJECTED with an STS code',
    error: () => new StsRejected('signature mismatch', { status: 403, stsCode: 'SignatureDoesNotMatch' }),
    status: 200,
    body: 'denied',
    result: 'sts_error',
    decision: 'deny',
    reason: 'SignatureDoesNotMatch',
    level: 'info',
  },
  {
    name: 'ERR_STS_REJECTED without one',
    error: () => new StsRejected('error from AWS (expected 200, got 403)', { status: 403 }),
    status: 200,
    body: 'denied',
    result: 'sts_error',
    decision: 'deny',
    reason: 'ERR_STS_REJECTED',
    level: 'info',
  },
  {
    name: 'ERR_STS_THROTTLED',
    error: () => new StsThrottled('Rate exceeded', { status: 400 }),
    status: 429,
    body: 'failed',
    result: 'sts_throttling',
    decision: 'error',
    reason: 'ERR_STS_THROTTLED',
    level: 'warn',
  },
  {
    name: 'ERR_STS_UNAVAILABLE',
    error: () => new StsUnavailable('timed out after 300 ms'),
    status: 503,
    body: 'failed',
    result: 'sts_error',
    decision: 'error',
    reason: 'ERR_STS_UNAVAILABLE',
    level: 'error',
  },
  {
    name: 'ERR_NOT_MAPPED',
    error: () => new NotMapped('ARN is not mapped'),
    status: 200,
    body: 'denied',
    result: 'uknown_user',
    decision: 'deny',
    reason: 'ERR_NOT_MAPPED',
    level: 'info',
  },
  {
    name: 'ERR_MAPPING_FAILED',
    error: () => new MappingFailed('username "system:x" uses the reserved prefix "system:"'),
    status: 200,
    body: 'denied',
    result: 'uknown_user',
    decision: 'deny',
    reason: 'ERR_MAPPING_FAILED',
    level: 'warn',
  },
  {
    name: 'ERR_MAPPING_FAILED, transient (EC2 throttled)',
    error: () => new MappingFailed('DescribeInstances throttled', { transient: true }),
    status: 503,
    body: 'failed',
    result: 'uknown_user',
    decision: 'error',
    reason: 'ERR_MAPPING_FAILED',
    level: 'error',
  },
  {
    name: 'ERR_ARN_INVALID',
    error: () => new ArnInvalid("arn 'arn' is invalid"),
    status: 200,
    body: 'denied',
    result: 'sts_error',
    decision: 'deny',
    reason: 'ERR_ARN_INVALID',
    level: 'warn',
  },
  ...(
    [
      ['ERR_CONFIG_INVALID', () => new ConfigInvalid('bad config')],
      ['ERR_CREDENTIALS', () => new CredentialsError('no credentials')],
      ['ERR_CACHE', () => new CacheError('cache not private')],
      ['ERR_USAGE', () => new UsageError('impossible')],
    ] as const
  ).map(([name, error]): Row => ({
    name,
    error,
    status: 500,
    body: 'failed',
    result: 'sts_error',
    decision: 'error',
    reason: name,
    level: 'error',
  })),
  {
    // the Kubernetes API unreachable while a mapping needs it: transient, kube-apiserver retries
    name: 'ERR_KUBE_API',
    error: () => new KubeApiFailed('could not reach the Kubernetes API at https://10.0.0.1:443: ECONNREFUSED'),
    status: 503,
    body: 'failed',
    result: 'sts_error',
    decision: 'error',
    reason: 'ERR_KUBE_API',
    level: 'error',
  },
  {
    name: 'ERR_RATE_LIMITED',
    error: () => new RateLimited('caller 10.0.0.1 is over its rate of STS verifications; try again later'),
    status: 429,
    body: 'failed',
    result: 'sts_throttling',
    decision: 'error',
    reason: 'ERR_RATE_LIMITED',
    level: 'warn',
  },
]

describe('the outcome table, through the HTTP app', () => {
  let app: InProcessApp
  beforeAll(async () => {
    app = await startApp()
  })
  afterAll(async () => {
    await app.close()
    expect(JSON.stringify(app.logs)).not.toContain(TOKEN)
  })
  beforeEach(() => void app.logs.splice(0))

  it('has a row for every error code there is', () => {
    const errors = readFileSync(new URL('../../src/shared/errors.ts', import.meta.url), 'utf8')
    const union = /export type ErrorCode =([^]*?)\n\n/.exec(errors)![1]!
    const codes = [...union.matchAll(/'(ERR_[A-Z_]+)'/g)].map((m) => m[1])
    expect(codes.length).toBeGreaterThan(10)
    expect(new Set(ROWS.map((r) => r.name.split(/[ ,]/)[0]))).toEqual(new Set(codes))
  })

  it.each(ROWS)('$name -> $status $body, result=$result, reviews{$decision,$reason}, audit at $level', async (row) => {
    const err = row.error()
    app.decide(() => refused(err, ALICE_IDENTITY))
    const before = {
      latency: await app.metric(LATENCY, { result: row.result }, `${LATENCY}_count`),
      reviews: await app.metric('kube_iam_auth_reviews_total', { decision: row.decision, reason: row.reason }),
    }
    const reply = await app.post(tokenReviewBody(TOKEN, 'authentication.k8s.io/v1beta1'))
    expect(reply.status).toBe(row.status)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(reply.json()).toEqual({
      apiVersion: 'authentication.k8s.io/v1beta1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec: {},
      status: { authenticated: false, user: {}, ...(row.body === 'failed' ? { error: err.message } : {}) },
    })
    expect(await app.metric(LATENCY, { result: row.result }, `${LATENCY}_count`)).toBe(before.latency + 1)
    expect(await app.metric('kube_iam_auth_reviews_total', { decision: row.decision, reason: row.reason })).toBe(
      before.reviews + 1,
    )
    expect(app.logs).toEqual([
      expect.objectContaining({
        level: row.level,
        msg: row.status === 200 ? 'access denied' : 'could not decide',
        audit: true,
        decision: row.decision,
        status: row.status,
        reason: row.reason,
        error: err.message,
        arn: ALICE_IDENTITY.arn,
        accountId: ALICE_IDENTITY.accountId,
        cache: 'miss',
        latencyMs: expect.any(Number),
      }),
    ])
  })

  it('an allowed decision -> 200 with the user, result=success, reviews{allow,<kind>}, audit at info', async () => {
    app.decide(() => allowed())
    const reply = await app.post(tokenReviewBody(TOKEN))
    expect(reply.status).toBe(200)
    expect(reply.json()).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec: {},
      status: { authenticated: true, user: allowed().allowed ? (allowed() as { user: object }).user : {} },
    })
    expect(await app.metric('kube_iam_auth_reviews_total', { decision: 'allow', reason: 'user' })).toBe(1)
    expect(await app.metric(LATENCY, { result: 'success' }, `${LATENCY}_count`)).toBe(1)
    expect(app.logs).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'access granted',
        audit: true,
        decision: 'allow',
        username: 'alice',
        groups: ['devs'],
        arn: ALICE_IDENTITY.arn,
        source: 'MountedFile',
        rule: 'mapUsers[0]',
        cache: 'miss',
      }),
    ])
  })

  it('an error that is no KiaError (a bug) -> 500 internal error, reviews{error,internal}, logged at error', async () => {
    app.decide(() => refused(new TypeError('cannot read properties of undefined')))
    const reply = await app.post(tokenReviewBody(TOKEN))
    expect(reply.status).toBe(500)
    expect(reply.json().status).toEqual({ authenticated: false, user: {}, error: 'internal error' })
    expect(await app.metric('kube_iam_auth_reviews_total', { decision: 'error', reason: 'internal' })).toBe(1)
    expect(app.logs).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: 'internal error',
        decision: 'error',
        error: 'cannot read properties of undefined',
        errorType: 'TypeError',
      }),
    ])
  })

  it('a scrubbed account: no ARN, account or key in the audit line, uid without IDs in the answer', async () => {
    const identity = { ...ALICE_IDENTITY, accountId: '999988887777', arn: 'arn:aws:iam::999988887777:user/ops' }
    app.decide(() => allowed(identity, true))
    const reply = await app.post(tokenReviewBody(TOKEN))
    expect(reply.json().status.user).toEqual({
      username: 'alice',
      uid: 'aws-iam-authenticator:administrative:alice',
      groups: ['devs'],
    })
    app.decide(() => refused(new NotMapped('not mapped'), identity, true))
    await app.post(tokenReviewBody(TOKEN))
    expect(app.logs).toHaveLength(2)
    for (const line of app.logs) {
      expect(line.accountId).toBe('scrubbed')
      expect(JSON.stringify(line)).not.toMatch(/999988887777|AKIA|AIDA/)
    }
  })

  it('audit: false writes no audit line, and the answer and metrics are the same', async () => {
    const quiet = await startApp({ audit: false })
    try {
      quiet.decide(() => refused(new NotMapped('not mapped'), ALICE_IDENTITY))
      expect((await quiet.post(tokenReviewBody(TOKEN))).status).toBe(200)
      quiet.decide(() => allowed())
      expect((await quiet.post(tokenReviewBody(TOKEN))).status).toBe(200)
      expect(quiet.logs).toEqual([])
      expect(await quiet.metric('kube_iam_auth_reviews_total', { decision: 'deny', reason: 'ERR_NOT_MAPPED' })).toBe(1)
      expect(await quiet.metric('kube_iam_auth_reviews_total', { decision: 'allow', reason: 'user' })).toBe(1)
    } finally {
      await quiet.close()
    }
  })
})
