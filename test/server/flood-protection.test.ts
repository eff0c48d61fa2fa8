// What the server remembers from STS to keep floods of forged tokens cheap, and who it never
// refuses because of them: remembered refusals (per token, and per unknown credential), the lane of
// confirmed credentials, and the operator's per-caller budget that only unknown credentials spend.
// The real server over TLS, against the SigV4-verifying STS stand-in, with an injected clock.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { ALICE, NOW, TEMP, fromToken, presignedToken, setParam, toToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const UNMAPPED: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTUNMAPPED1',
  secretAccessKey: 'unmapped/secret+key/0123456789abcdefghij',
  arn: 'arn:aws:iam::999900001111:user/stranger',
  account: '999900001111',
  userId: 'AIDAKIATESTUNMAPPED1',
}
const NOBODY = { ...ALICE, accessKeyId: 'AKIAKIATESTNOBODY001' } // a key STS does not know

let clock = NOW.getTime()
const at = (secondsAgo: number) => new Date(clock - secondsAgo * 1000)

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

describe('flood protection', () => {
  let sts: FakeSts
  let srv: TestServer
  const metrics = async () => (await srv.get('/metrics')).body

  beforeAll(async () => {
    sts = await startFakeSts({ now: () => new Date(clock), principals: [ALICE, TEMP, UNMAPPED] })
    srv = await startTestServer({
      stsUrl: sts.url,
      now: () => clock,
      server: {
        mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: ['devs'] }],
        mapRoles: [{ rolearn: 'arn:aws:iam::444455556666:role/Admin', username: 'admin', groups: [] }],
        identityCacheSize: 0, // every review below asks STS unless something remembered the answer
      },
    })
  })
  afterAll(async () => {
    await srv.close()
    await sts.close()
  })
  afterEach(() => {
    clock = NOW.getTime()
  })

  it('a token STS refused is refused locally when it comes again (for up to a minute)', async () => {
    const forged = setParam(
      fromToken(await presignedToken({ principal: ALICE, now: at(1) })),
      'X-Amz-Signature',
      'f'.repeat(64),
    )
    const before = sts.calls.getCallerIdentity
    for (let i = 0; i < 5; i++) {
      const res = await srv.review(toToken(forged))
      expect([res.status, res.json().status]).toEqual([200, { authenticated: false, user: {} }])
    }
    expect(sts.calls.getCallerIdentity - before).toBe(1)
    expect(metric(await metrics(), 'kube_iam_auth_sts_remembered_rejections_total')).toBeGreaterThanOrEqual(4)
    clock += 61_000
    await srv.review(toToken(forged))
    expect(sts.calls.getCallerIdentity - before).toBe(2)
  })

  it('a credential STS does not know is refused locally for 30 s, whatever the token', async () => {
    const before = sts.calls.getCallerIdentity
    const tokens = await Promise.all([1, 2, 3].map((s) => presignedToken({ principal: NOBODY, now: at(s) })))
    for (const t of tokens) expect((await srv.review(t)).json().status.authenticated).toBe(false)
    expect(sts.calls.getCallerIdentity - before).toBe(1)
    // per STS region: the same key signed for another region is asked about
    await srv.review(await presignedToken({ principal: NOBODY, now: at(1), region: 'eu-west-1' }))
    expect(sts.calls.getCallerIdentity - before).toBe(2)
    clock += 31_000
    await srv.review(await presignedToken({ principal: NOBODY, now: at(4) }))
    expect(sts.calls.getCallerIdentity - before).toBe(3)
  })

  it("a bogus session token on someone's access key ID never locks the genuine credential out", async () => {
    const genuine = fromToken(await presignedToken({ principal: TEMP, now: at(1) }))
    const bogus = setParam(genuine, 'X-Amz-Security-Token', 'Ym9ndXM%3D')
    const denied = await srv.review(toToken(bogus))
    expect(denied.json().status.authenticated).toBe(false)
    expect(sts.lastErrors.at(-1)).toMatch(/^InvalidClientTokenId/)
    const ok = await srv.review(await presignedToken({ principal: TEMP, now: at(2) }))
    expect(ok.json().status).toMatchObject({ authenticated: true, user: { username: 'admin' } })
  })

  it('a credential the mapping let in gets the confirmed lane; an unmapped one does not', async () => {
    const lane = async (l: string) => metric(await metrics(), 'kube_iam_auth_sts_lane_requests_total', `{lane="${l}"}`)
    const [confirmed0, unknown0] = [await lane('confirmed'), await lane('unknown')]
    // the first review lets ALICE in (if no earlier test did), so the second uses the confirmed lane
    await srv.review(await presignedToken({ principal: ALICE, now: at(5) }))
    await srv.review(await presignedToken({ principal: ALICE, now: at(6) }))
    expect(await lane('confirmed')).toBeGreaterThan(confirmed0)
    const [confirmed1, unknown1] = [await lane('confirmed'), await lane('unknown')]
    for (const s of [7, 8]) {
      const res = await srv.review(await presignedToken({ principal: UNMAPPED, now: at(s) }))
      expect(res.json().status.authenticated).toBe(false)
    }
    expect(await lane('confirmed')).toBe(confirmed1)
    expect(await lane('unknown')).toBe(unknown1 + 2)
    expect(unknown1).toBeGreaterThanOrEqual(unknown0)
  })
})

describe('a returning user whose access key ID someone signs with a wrong secret', () => {
  it('loses the confirmed lane until a genuine token confirms the key again', async () => {
    const sts = await startFakeSts({ principals: [ALICE] })
    const srv = await startTestServer({
      stsUrl: sts.url,
      server: { mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: [] }] },
    })
    const lane = async (l: string) =>
      metric((await srv.get('/metrics')).body, 'kube_iam_auth_sts_lane_requests_total', `{lane="${l}"}`)
    const genuine = (s: number) => presignedToken({ principal: ALICE, now: new Date(Date.now() - s * 1000) })
    try {
      expect((await srv.review(await genuine(1))).json().status.authenticated).toBe(true) // unknown -> confirmed
      expect((await srv.review(await genuine(2))).json().status.authenticated).toBe(true)
      expect([await lane('unknown'), await lane('confirmed')]).toEqual([1, 1])
      const spoofed = setParam(fromToken(await genuine(3)), 'X-Amz-Signature', 'e'.repeat(64))
      expect((await srv.review(toToken(spoofed))).json().status.authenticated).toBe(false)
      expect((await srv.review(await genuine(4))).json().status.authenticated).toBe(true)
      expect((await srv.review(await genuine(5))).json().status.authenticated).toBe(true)
      // the spoofed token still used the lane; the next genuine one did not, and confirmed the key again
      expect([await lane('unknown'), await lane('confirmed')]).toEqual([2, 3])
    } finally {
      await srv.close()
      await sts.close()
    }
  })
})

describe('the per-caller budget (callerRateLimitPerSecond) is spent only by unknown credentials', () => {
  it('returning users are never refused by it', async () => {
    const principals: FakeStsPrincipal[] = [1, 2, 3].map((i) => ({
      ...UNMAPPED,
      accessKeyId: `AKIAKIATESTBUDGET00${i}`,
    }))
    const sts = await startFakeSts({ now: () => NOW, principals: [ALICE, ...principals] })
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
      const first = await srv.review(await presignedToken({ principal: ALICE, now: new Date(NOW.getTime() - 1000) }))
      expect(first.json().status.authenticated).toBe(true)
      const strangers = []
      for (const p of principals) strangers.push((await srv.review(await presignedToken({ principal: p }))).status)
      expect(strangers).toEqual([200, 429, 429]) // the budget (burst 2) is spent
      for (let s = 2; s < 12; s++) {
        const res = await srv.review(
          await presignedToken({ principal: ALICE, now: new Date(NOW.getTime() - s * 1000) }),
        )
        expect(res.status).toBe(200)
        expect(res.json().status.authenticated).toBe(true)
      }
    } finally {
      await srv.close()
      await sts.close()
    }
  })
})

describe('a flood of junk does not flood the logs', () => {
  it('100 refusals of one kind: 20 lines in full, the rest in one summary that accounts for every one', async () => {
    const sts = await startFakeSts({ principals: [ALICE] })
    const srv = await startTestServer({ stsUrl: sts.url, server: {} })
    try {
      for (let i = 0; i < 100; i++) {
        const res = await srv.review(`k8s-aws-v1.!junk${i}`)
        expect(res.json().status).toEqual({ authenticated: false, user: {} })
      }
      const text = (await srv.get('/metrics')).body
      expect(metric(text, 'kube_iam_auth_audit_lines_suppressed_total', '{decision="deny"}')).toBe(80)
      expect(metric(text, 'kube_iam_auth_reviews_total', '{decision="deny",reason="encoding"}')).toBe(100)
    } finally {
      await srv.close()
      await sts.close()
    }
    const denials = srv.logs.filter((l) => l.audit === true && l.decision === 'deny')
    const full = denials.filter((l) => l.suppressed === undefined)
    const summaries = denials.filter((l) => l.suppressed !== undefined)
    expect(full).toHaveLength(20)
    expect(full.every((l) => l.reason === 'encoding' && typeof l.error === 'string')).toBe(true)
    expect(summaries).toHaveLength(1)
    expect(summaries[0]).toMatchObject({
      reason: 'encoding',
      suppressed: 80,
      principals: { unknown: 80 },
      msg: 'access denied (repeated denials summarised)',
    })
  })
})
