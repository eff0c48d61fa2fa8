// Several cluster IDs (clusterID plus clusterIDs) through the real server over TLS, against the
// SigV4-verifying STS stand-in: which tokens are accepted, what each costs in STS calls (counted by
// the stand-in), what is remembered, what the audit line and the metrics say, and that every STS
// call of a search takes its own turn at the admission gate.
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { fromToken, presignedToken, setParam, toToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const ACCOUNT = '111122223333'
const MAIN = 'green'
const ALTERNATES = ['blue', 'old-name']

let serial = 0
/** A fresh IAM user of ACCOUNT (mapped through mapAccounts), known to the stand-in once added. */
function user(name: string): FakeStsPrincipal {
  const n = String(++serial).padStart(4, '0')
  return {
    accessKeyId: `AKIACLUSTERIDS${n}XX`,
    secretAccessKey: `cluster-ids/${name}+secret/0123456789abcdefghij`,
    arn: `arn:aws:iam::${ACCOUNT}:user/${name}`,
    account: ACCOUNT,
    userId: `AIDACLUSTERIDS${n}XX`,
  }
}

let signedSecondsAgo = 0
/** A new token (each signed a second earlier than the last, so never the same token twice). */
const token = (p: FakeStsPrincipal, clusterId: string) =>
  presignedToken({ principal: p, clusterId, now: new Date(Date.now() - 1000 * ++signedSecondsAgo) })

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return line === undefined ? NaN : Number(line.split(' ')[1])
}

describe('a server accepting green, blue and old-name (clusterID green, clusterIDs [blue, old-name])', () => {
  let sts: FakeSts
  let srv: TestServer
  const metrics = async () => (await srv.get('/metrics')).body
  const add = (p: FakeStsPrincipal) => (sts.addPrincipal(p), p)

  /** Reviews `t`; returns the answer's status and how many STS calls it made. */
  async function review(t: string) {
    const before = sts.calls.getCallerIdentity
    const res = await srv.review(t)
    expect(res.status).toBe(200)
    const status = res.json().status as { authenticated: boolean; user: { username?: string } }
    return { authenticated: status.authenticated, stsCalls: sts.calls.getCallerIdentity - before }
  }
  const lastAudit = () => srv.logs.filter((l) => l.audit === true).at(-1)

  beforeAll(async () => {
    sts = await startFakeSts()
    srv = await startTestServer({
      stsUrl: sts.url,
      clusterId: MAIN,
      clusterIds: ALTERNATES,
      // every review asks STS unless something remembered the answer
      server: { mapAccounts: [ACCOUNT], identityCacheSize: 0 },
    })
  })
  afterAll(async () => {
    await srv?.close()
    await sts?.close()
  })

  it('every accepted ID has its series from the start; the listening line names them', async () => {
    const text = await metrics()
    for (const id of [MAIN, ...ALTERNATES]) {
      expect(metric(text, 'kube_iam_auth_cluster_id_reviews_total', `{cluster_id="${id}"}`)).toBe(0)
    }
    expect(srv.logs.find((l) => l.msg === 'listening')).toMatchObject({ clusterId: MAIN, clusterIds: ALTERNATES })
  })

  it('a token for clusterID and one for each of clusterIDs are accepted; the audit line and the metric name the ID', async () => {
    const before = await metrics()
    for (const id of [MAIN, ...ALTERNATES]) {
      const who = add(user(`someone-for-${id}`))
      expect((await review(await token(who, id))).authenticated, id).toBe(true)
      expect(lastAudit()).toMatchObject({ decision: 'allow', arn: who.arn, clusterId: id, cache: 'miss' })
    }
    const after = await metrics()
    for (const id of [MAIN, ...ALTERNATES]) {
      const series = `{cluster_id="${id}"}`
      expect(metric(after, 'kube_iam_auth_cluster_id_reviews_total', series), id).toBe(
        metric(before, 'kube_iam_auth_cluster_id_reviews_total', series) + 1,
      )
    }
  })

  it('a token for any other ID is a definitive denial (200) after one STS call per accepted ID, naming them', async () => {
    const who = add(user('someone-for-purple'))
    expect(await review(await token(who, 'purple'))).toEqual({ authenticated: false, stsCalls: 3 })
    const audit = lastAudit()
    expect(audit).toMatchObject({ decision: 'deny', status: 200, reason: 'SignatureDoesNotMatch', stsCalls: 3 })
    expect(audit?.clusterId).toBeUndefined()
    expect(audit?.error).toMatch(/SignatureDoesNotMatch: .* \(for every accepted cluster ID: green, blue, old-name\)$/)
  })

  it('cost: clusterID 1 call; the n-th of clusterIDs n + 1 the first time, then 1 for its returning user', async () => {
    const g = add(user('cost-green'))
    const b = add(user('cost-blue'))
    const o = add(user('cost-old'))
    expect(await review(await token(g, MAIN))).toEqual({ authenticated: true, stsCalls: 1 })
    expect(await review(await token(g, MAIN))).toEqual({ authenticated: true, stsCalls: 1 })
    expect(await review(await token(b, 'blue'))).toEqual({ authenticated: true, stsCalls: 2 })
    expect(await review(await token(b, 'blue'))).toEqual({ authenticated: true, stsCalls: 1 })
    expect(await review(await token(o, 'old-name'))).toEqual({ authenticated: true, stsCalls: 3 })
    expect(await review(await token(o, 'old-name'))).toEqual({ authenticated: true, stsCalls: 1 })
    expect(lastAudit()).toMatchObject({ decision: 'allow', clusterId: 'old-name', stsCalls: 1 })
    // the same user back on clusterID: the remembered ID first, then clusterID; then clusterID first
    expect(await review(await token(o, MAIN))).toEqual({ authenticated: true, stsCalls: 2 })
    expect(await review(await token(o, MAIN))).toEqual({ authenticated: true, stsCalls: 1 })
  })

  it('a forged token (a known access key ID, a wrong signature) costs 1 + N calls once, then none for a minute', async () => {
    const victim = add(user('victim'))
    const forged = toToken(setParam(fromToken(await token(victim, MAIN)), 'X-Amz-Signature', 'b'.repeat(64)))
    expect(await review(forged)).toEqual({ authenticated: false, stsCalls: 1 + ALTERNATES.length })
    for (let i = 0; i < 3; i++) expect(await review(forged)).toEqual({ authenticated: false, stsCalls: 0 })
    // a made-up access key ID: STS does not know it, whatever the cluster ID: one call
    const stranger = user('stranger') // never added to the stand-in
    expect(await review(await token(stranger, MAIN))).toEqual({ authenticated: false, stsCalls: 1 })
    expect(lastAudit()).toMatchObject({ decision: 'deny', reason: 'InvalidClientTokenId', stsCalls: 1 })
  })

  it('a returning user of an alternate ID whose key someone signs with a wrong secret: 1 + N calls, and the next genuine token is still accepted', async () => {
    const b = add(user('spoofed-blue'))
    expect(await review(await token(b, 'blue'))).toEqual({ authenticated: true, stsCalls: 2 })
    const spoofed = toToken(setParam(fromToken(await token(b, 'blue')), 'X-Amz-Signature', 'c'.repeat(64)))
    expect(await review(spoofed)).toEqual({ authenticated: false, stsCalls: 3 })
    // it left the confirmed lane and its remembered ID: the next genuine token is searched for again
    expect(await review(await token(b, 'blue'))).toEqual({ authenticated: true, stsCalls: 2 })
  })

  it('sts_calls_per_verification: what verifications cost, by result', async () => {
    const text = await metrics()
    const h = (part: string, result: string, le = '') =>
      metric(text, `kube_iam_auth_sts_calls_per_verification_${part}`, `{${le}result="${result}"}`)
    // so far: verified 1+2+3 (one per ID), 1+1+2+1+3+1+2+1 (cost), 2+2 (spoofed-blue); refused 3, 3, 1, 3
    expect([h('count', 'verified'), h('sum', 'verified')]).toEqual([13, 22])
    expect([h('count', 'refused'), h('sum', 'refused')]).toEqual([4, 10])
    expect(h('bucket', 'verified', 'le="1",')).toBe(6)
    expect(h('bucket', 'refused', 'le="1",')).toBe(1)
  })
})

describe('a refusal is remembered only once no other accepted ID could change it', () => {
  /** An STS front that answers the next calls as scripted (500, throttled), and passes the others on. */
  let front: Server
  let script: Array<'500' | 'throttle' | 'pass'> = []
  let sts: FakeSts
  let srv: TestServer

  beforeAll(async () => {
    sts = await startFakeSts()
    const target = new URL(sts.url)
    front = createServer((req: IncomingMessage, res) => {
      const next = script.shift() ?? 'pass'
      if (next === '500') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{}')
      if (next === 'throttle') {
        res.writeHead(400, { 'content-type': 'application/json' })
        return void res.end(JSON.stringify({ Error: { Code: 'Throttling', Message: 'Rate exceeded' } }))
      }
      const out = request(
        { host: target.hostname, port: target.port, path: req.url, method: 'GET', headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      out.on('error', () => res.destroy())
      out.end()
    })
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    srv = await startTestServer({
      stsUrl: `http://127.0.0.1:${(front.address() as AddressInfo).port}`,
      clusterId: MAIN,
      clusterIds: ALTERNATES,
      server: { mapAccounts: [ACCOUNT], identityCacheSize: 0 },
    })
  })
  afterAll(async () => {
    await srv?.close()
    await new Promise<void>((r) => front?.close(() => r()))
    await sts?.close()
  })

  it.each([
    ['STS fails (500)', 503, '500'],
    ['STS throttles', 429, 'throttle'],
  ] as const)(
    '%s after clusterID did not match: answered %i (kube-apiserver retries), and the same token is then accepted',
    async (_name, status, fault) => {
      const who = user(`retry-${fault}`)
      sts.addPrincipal(who)
      const t = await token(who, 'blue')
      script = ['pass', fault]
      const first = await srv.review(t)
      expect(first.status).toBe(status)
      expect(script).toEqual([])
      const again = await srv.review(t)
      expect([again.status, again.json().status.authenticated]).toEqual([200, true])
    },
  )

  it('a token STS refused with clusterID but that names old-name is not remembered as refused', async () => {
    const who = user('last-of-the-list')
    sts.addPrincipal(who)
    const t = await token(who, 'old-name')
    for (let i = 0; i < 3; i++) expect((await srv.review(t)).json().status.authenticated).toBe(true)
  })
})

describe('every STS call of a search takes its own turn at the admission gate', () => {
  it("a returning user's review waiting behind a forged token's search is served between its calls", async () => {
    const sts = await startFakeSts()
    const srv = await startTestServer({
      stsUrl: sts.url,
      clusterId: MAIN,
      clusterIds: ALTERNATES,
      server: { mapAccounts: [ACCOUNT], stsMaxConcurrency: 1 },
    })
    try {
      const returning = user('returning')
      const victim = user('known-key')
      sts.addPrincipal(returning)
      sts.addPrincipal(victim)
      expect((await srv.review(await token(returning, MAIN))).json().status.authenticated).toBe(true)
      sts.setLatency(200)
      const forged = toToken(setParam(fromToken(await token(victim, MAIN)), 'X-Amz-Signature', 'd'.repeat(64)))
      const finished: string[] = []
      const forgedReview = srv.review(forged).then((r) => (finished.push('forged'), r))
      // the returning user arrives while the forged token's first STS call holds the only slot
      while (sts.calls.getCallerIdentity < 2) await new Promise((r) => setTimeout(r, 5))
      const returningReview = srv.review(await token(returning, MAIN)).then((r) => (finished.push('returning'), r))
      const [f, r] = await Promise.all([forgedReview, returningReview])
      expect(f.json().status.authenticated).toBe(false)
      expect(r.json().status.authenticated).toBe(true)
      // held for the whole search (3 calls), the slot would have made the returning user wait for all of it
      expect(finished).toEqual(['returning', 'forged'])
      expect(sts.calls.getCallerIdentity).toBe(1 + 3 + 1)
    } finally {
      await srv.close()
      await sts.close()
    }
  }, 20_000)
})
