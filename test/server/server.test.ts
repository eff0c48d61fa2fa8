// The webhook through its real HTTP stack: TLS listener, HTTP app, identity cache, STS over real
// sockets to the SigV4-verifying stand-in, the MountedFile mapping chain. One server per describe.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { ALICE, CLUSTER_ID, NOW, TEMP, presignedToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const BOB: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTBOB000001',
  secretAccessKey: 'bob/secret+key/0123456789abcdefghijklmnopq',
  arn: 'arn:aws:iam::111122223333:user/bob',
  account: '111122223333',
  userId: 'AIDAKIATESTBOB000001',
}
const SCRUBBED: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTSCRUB0001',
  secretAccessKey: 'scrub/secret+key/0123456789abcdefghijklmn',
  arn: 'arn:aws:iam::999988887777:user/ops',
  account: '999988887777',
  userId: 'AIDAKIATESTSCRUB0001',
}

const MAPPINGS = {
  mapRoles: [
    // a path in the configured ARN matches the path-less assumed-role ARN STS returns
    {
      rolearn: 'arn:aws:iam::444455556666:role/team/Admin',
      username: 'admin:{{SessionName}}',
      groups: ['system:masters', 'acct-{{AccountID}}'],
    },
  ],
  mapUsers: [
    { userarn: ALICE.arn, username: 'alice', groups: ['devs'] },
    { userarn: SCRUBBED.arn, username: 'ops', groups: ['ops'] },
  ],
  scrubbedAccounts: ['999988887777'],
}

let clock = NOW.getTime()
const now = () => clock

describe('webhook over TLS', () => {
  let sts: FakeSts
  let srv: TestServer

  beforeAll(async () => {
    sts = await startFakeSts({ now: () => new Date(clock), principals: [ALICE, BOB, TEMP, SCRUBBED] })
    srv = await startTestServer({ stsUrl: sts.url, now, server: { ...MAPPINGS, stsTimeout: '300ms' } })
  })
  afterAll(async () => {
    await srv.close()
    await sts.close()
  })
  afterEach(() => {
    sts.setFault('none')
    sts.setLatency(0)
    sts.resetCalls()
    clock = NOW.getTime()
  })

  it('authenticates a mapped user and answers in the request apiVersion', async () => {
    const token = await presignedToken({ principal: ALICE })
    const res = await srv.review(token)
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec: {},
      status: {
        authenticated: true,
        user: {
          username: 'alice',
          uid: `aws-iam-authenticator:111122223333:${ALICE.userId}`,
          groups: ['devs'],
          extra: {
            arn: [ALICE.arn],
            canonicalArn: [ALICE.arn],
            sessionName: [''],
            accessKeyId: [ALICE.accessKeyId],
            principalId: [ALICE.userId],
            'sigs.k8s.io/aws-iam-authenticator/principalId': [ALICE.userId],
          },
        },
      },
    })
    const beta = await srv.review(token, 'authentication.k8s.io/v1beta1')
    expect(beta.json().apiVersion).toBe('authentication.k8s.io/v1beta1')
    expect(beta.json().status.user.username).toBe('alice')
  })

  it('maps an assumed role through a configured role ARN with a path, rendering templates', async () => {
    const res = await srv.review(await presignedToken({ principal: TEMP }))
    expect(res.status).toBe(200)
    const user = res.json().status.user
    expect(user.username).toBe('admin:kia-session')
    expect(user.groups).toEqual(['system:masters', 'acct-444455556666'])
    expect(user.uid).toBe('aws-iam-authenticator:444455556666:AROAKIATESTADMIN0001')
    expect(user.extra.canonicalArn).toEqual(['arn:aws:iam::444455556666:role/Admin'])
    const audit = srv.logs.filter((l) => l.audit && l.decision === 'allow').at(-1)!
    expect(audit).toMatchObject({ username: 'admin:kia-session', source: 'MountedFile', rule: 'mapRoles[0]' })
  })

  it('denies an unmapped identity with 200 and no status.error', async () => {
    const res = await srv.review(await presignedToken({ principal: BOB }))
    expect(res.status).toBe(200)
    expect(res.json().status).toEqual({ authenticated: false, user: {} })
    expect(srv.logs.at(-1)).toMatchObject({ audit: true, decision: 'deny', reason: 'ERR_NOT_MAPPED' })
  })

  it('denies a malformed token with 200 without asking STS', async () => {
    const res = await srv.review('k8s-aws-v1.not*base64')
    expect(res.status).toBe(200)
    expect(res.json().status).toEqual({ authenticated: false, user: {} })
    expect(sts.calls.total).toBe(0)
    expect(srv.logs.at(-1)).toMatchObject({ decision: 'deny', reason: 'encoding' })
  })

  it('denies a token signed for another cluster (STS says the signature does not match)', async () => {
    const res = await srv.review(await presignedToken({ principal: ALICE, clusterId: 'another-cluster' }))
    expect(res.status).toBe(200)
    expect(res.json().status.authenticated).toBe(false)
    expect(sts.calls.getCallerIdentity).toBe(1)
    expect(srv.logs.at(-1)).toMatchObject({ decision: 'deny', reason: 'SignatureDoesNotMatch' })
  })

  it('answers 429 when STS throttles and 503 when STS fails or hangs, and caches none of them', async () => {
    const token = await presignedToken({ principal: ALICE, now: new Date(clock - 1000) })
    sts.setFault('throttle')
    const throttled = await srv.review(token)
    expect(throttled.status).toBe(429)
    expect(throttled.json().status.error).toMatch(/^sts getCallerIdentity was throttled: /)
    sts.setFault('error500')
    expect((await srv.review(token)).status).toBe(503)
    sts.setFault('hang')
    const started = Date.now()
    const hung = await srv.review(token)
    expect(hung.status).toBe(503)
    expect(Date.now() - started).toBeLessThan(3000)
    expect(hung.json().status.error).toContain('timed out after 300 ms')
    sts.setFault('none')
    expect((await srv.review(token)).json().status.user.username).toBe('alice')
    expect(sts.calls.getCallerIdentity).toBe(4)
  })

  it('calls STS once for repeated and concurrent reviews of one token', async () => {
    const token = await presignedToken({ principal: ALICE, now: new Date(clock - 2000) })
    sts.setLatency(100)
    const answers = await Promise.all(Array.from({ length: 20 }, () => srv.review(token)))
    expect(answers.every((a) => a.json().status.user?.username === 'alice')).toBe(true)
    expect((await srv.review(token)).status).toBe(200)
    expect(sts.calls.getCallerIdentity).toBe(1)
    const metrics = (await srv.get('/metrics')).body
    expect(metrics).toMatch(/kube_iam_auth_identity_cache_hits_total \d+/)
  })

  it('re-verifies once the identity cache TTL (2 minutes) has passed', async () => {
    const token = await presignedToken({ principal: ALICE, now: new Date(clock - 3000) })
    await srv.review(token)
    clock += 119_000
    await srv.review(token)
    expect(sts.calls.getCallerIdentity).toBe(1)
    clock += 2000
    await srv.review(token)
    expect(sts.calls.getCallerIdentity).toBe(2)
  })

  it('never serves a cached identity after the token itself expired', async () => {
    const token = await presignedToken({ principal: ALICE, now: new Date(clock - 14 * 60_000 - 30_000) })
    expect((await srv.review(token)).json().status.authenticated).toBe(true)
    clock += 31_000
    const res = await srv.review(token)
    expect(res.json().status.authenticated).toBe(false)
    expect(srv.logs.at(-1)).toMatchObject({ reason: 'expired' })
  })

  it('hides scrubbed accounts from user info and logs', async () => {
    const res = await srv.review(await presignedToken({ principal: SCRUBBED }))
    expect(res.json().status.user).toEqual({
      username: 'ops',
      uid: 'aws-iam-authenticator:administrative:ops',
      groups: ['ops'],
    })
    const line = JSON.stringify(srv.logs.at(-1))
    expect(line).not.toContain('999988887777')
    expect(line).not.toContain(SCRUBBED.arn)
  })

  it('never logs a token', async () => {
    const token = await presignedToken({ principal: ALICE, now: new Date(clock - 4000) })
    await srv.review(token)
    await srv.review(`${token}x`)
    const all = JSON.stringify(srv.logs)
    expect(all).not.toContain(token.slice(11, 60))
    expect(all).not.toContain('X-Amz-Signature')
  })

  it('serves /healthz, /status, /metrics with upstream metric names, and 404 elsewhere', async () => {
    expect(await srv.get('/healthz')).toMatchObject({ status: 200, body: 'ok' })
    const status = JSON.parse((await srv.get('/status')).body)
    expect(status.sources[0]).toMatchObject({
      name: 'MountedFile',
      synced: true,
      counts: { roles: 1, users: 2, accounts: 0 },
    })
    const metrics = (await srv.get('/metrics')).body
    for (const name of [
      'aws_iam_authenticator_authenticate_latency_seconds_bucket{le="0.005",result="success"}',
      'aws_iam_authenticator_sts_responses_total{ResponseCode="200",StsRegion="us-west-2"}',
      'kube_iam_auth_reviews_total{decision="deny",reason="ERR_NOT_MAPPED"}',
    ]) {
      expect(metrics).toContain(name)
    }
    expect((await srv.get('/nope')).status).toBe(404)
  })
})

describe('webhook limits and shutdown', () => {
  it('refuses reviews beyond the STS concurrency cap with 503 once the queue wait runs out', async () => {
    const sts = await startFakeSts({ now: () => NOW, principals: [ALICE, BOB], latencyMs: 400 })
    const srv = await startTestServer({
      stsUrl: sts.url,
      now: () => NOW.getTime(),
      server: { mapUsers: MAPPINGS.mapUsers, stsMaxConcurrency: 1, stsQueueTimeout: '100ms' },
    })
    try {
      const [a, b] = await Promise.all([
        srv.review(await presignedToken({ principal: ALICE })),
        srv.review(await presignedToken({ principal: BOB })),
      ])
      expect([a.status, b.status].sort()).toEqual([200, 503])
      expect(sts.calls.getCallerIdentity).toBe(1)
    } finally {
      await srv.close()
      await sts.close()
    }
  })

  it('finishes in-flight reviews on shutdown and stops answering health checks as healthy', async () => {
    const sts = await startFakeSts({ now: () => NOW, principals: [ALICE], latencyMs: 300 })
    const srv = await startTestServer({
      stsUrl: sts.url,
      now: () => NOW.getTime(),
      server: { mapUsers: MAPPINGS.mapUsers },
    })
    try {
      const inflight = srv.review(await presignedToken({ principal: ALICE }))
      // close only once the review is in flight (STS has it), however loaded the machine is
      for (let i = 0; i < 200 && sts.calls.getCallerIdentity === 0; i++) await new Promise((r) => setTimeout(r, 10))
      expect(sts.calls.getCallerIdentity).toBe(1)
      const closing = srv.server.close()
      const res = await inflight
      expect(res.status).toBe(200)
      expect(res.json().status.user.username).toBe('alice')
      await closing
    } finally {
      await sts.close()
    }
  })

  it('writes a webhook kubeconfig naming the port it listens on', async () => {
    const sts = await startFakeSts({ now: () => NOW })
    const srv = await startTestServer({ stsUrl: sts.url, clusterId: CLUSTER_ID })
    try {
      const { readFileSync } = await import('node:fs')
      const kubeconfig = readFileSync(srv.config.generateKubeconfig, 'utf8')
      expect(kubeconfig).toContain(`server: https://localhost:${srv.server.port}/authenticate`)
    } finally {
      await srv.close()
      await sts.close()
    }
  })
})
