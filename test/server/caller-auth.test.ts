// Caller authentication and per-caller limits, through the real server over TLS.
import { readFileSync } from 'node:fs'
import { load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addCallerKey, issueCallerToken, retireOldCallerKeys } from '../../src/server/caller-auth.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { ALICE, NOW, presignedToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const kubeconfigToken = (file: string): string =>
  (load(readFileSync(file, 'utf8')) as { users: { user: { token: string } }[] }).users[0]!.user.token

const until = async (check: () => Promise<boolean>, ms = 5000) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

describe('caller authentication (server.callerAuth: true)', () => {
  let sts: FakeSts
  let srv: TestServer
  let token: string

  beforeAll(async () => {
    sts = await startFakeSts({ now: () => NOW, principals: [ALICE] })
    srv = await startTestServer({
      stsUrl: sts.url,
      now: () => NOW.getTime(),
      server: { callerAuth: true, mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: [] }] },
    })
    token = await presignedToken({ principal: ALICE })
  })
  afterAll(async () => {
    await srv.close()
    await sts.close()
  })

  const review = (bearer?: string) =>
    srv.post(
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      bearer === undefined ? {} : { headers: { authorization: `Bearer ${bearer}` } },
    )

  it('writes a bearer token into the webhook kubeconfig and accepts it', async () => {
    const caller = kubeconfigToken(srv.config.generateKubeconfig)
    expect(caller.split('.')).toHaveLength(3)
    const res = await review(caller)
    expect(res.status).toBe(200)
    expect(res.json().status.user.username).toBe('alice')
  })

  it('refuses callers without a token or with a forged one, before reading the review', async () => {
    sts.resetCalls()
    const missing = await review()
    expect(missing.status).toBe(401)
    expect(missing.body).toBe('caller authentication required: use the webhook kubeconfig kube-iam-auth wrote\n')
    const forged = await review(kubeconfigToken(srv.config.generateKubeconfig).slice(0, -4) + 'AAAA')
    expect(forged.status).toBe(401)
    expect(forged.body).toBe('invalid caller token\n')
    // signed by a key the server never had
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const stranger = await addCallerKey(mkdtempSync(join(tmpdir(), 'kia-stranger-')))
    expect((await review(await issueCallerToken(stranger, 'kia-test-cluster'))).status).toBe(401)
    // a token for another cluster's audience, signed by our own key
    const ours = (await import('../../src/server/caller-auth.js')).loadCallerKeys(srv.stateDir)[0]!
    expect((await review(await issueCallerToken(ours, 'other-cluster'))).status).toBe(401)
    expect(sts.calls.total).toBe(0)
    const metrics = (await srv.get('/metrics')).body
    expect(metrics).toMatch(/kube_iam_auth_caller_auth_failures_total\{reason="missing"\} 1/)
  })

  it('rotates keys with an overlap: old and new tokens both work until the old key is retired', async () => {
    const oldToken = kubeconfigToken(srv.config.generateKubeconfig)
    const newKey = await addCallerKey(srv.stateDir, Date.now() + 1000)
    const newToken = await issueCallerToken(newKey, 'kia-test-cluster')
    expect(await until(async () => (await review(newToken)).status === 200)).toBe(true)
    expect((await review(oldToken)).status).toBe(200)
    expect(retireOldCallerKeys(srv.stateDir)).toHaveLength(1)
    expect(await until(async () => (await review(oldToken)).status === 401)).toBe(true)
    expect((await review(newToken)).status).toBe(200)
  })
})

describe('per-caller rate limit of STS verifications', () => {
  it('answers 429 beyond the burst for cache misses and never limits cache hits', async () => {
    const principals: FakeStsPrincipal[] = [0, 1, 2].map((i) => ({ ...ALICE, accessKeyId: `AKIAKIATESTRATE0000${i}` }))
    const sts = await startFakeSts({ now: () => NOW, principals })
    const srv = await startTestServer({
      stsUrl: sts.url,
      now: () => NOW.getTime(),
      server: {
        mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: [] }],
        callerRateLimitPerSecond: 0.001,
        callerRateLimitBurst: 2,
      },
    })
    try {
      const tokens = await Promise.all(principals.map((p) => presignedToken({ principal: p })))
      const statuses = []
      for (const t of tokens) statuses.push((await srv.review(t)).status)
      expect(statuses).toEqual([200, 200, 429])
      expect((await srv.review(tokens[0]!)).status).toBe(200)
      expect((await srv.review(tokens[2]!)).json().status.error).toMatch(
        /^caller 127\.0\.0\.1 is over its rate of STS verifications/,
      )
      expect(sts.calls.getCallerIdentity).toBe(2)
    } finally {
      await srv.close()
      await sts.close()
    }
  })
})
