// Metric label values come from bounded sets, whatever the input: STS error codes an endpoint
// makes up, and (through the host allow-list) made-up regions.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALICE, presignedToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'
import { reasonOf } from '../../src/server/outcome.js'
import { StsRejected } from '../../src/shared/errors.js'

/** Label values of `label` on the samples of metric `name`. */
function labelValues(text: string, name: string, label: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const m = new RegExp(`${label}="([^"]*)"`).exec(line)
    if (m) out.add(m[1]!)
  }
  return out
}

describe('reasonOf', () => {
  it('keeps the STS codes GetCallerIdentity refusals carry, and folds any other into sts-other', () => {
    const rejected = (code: string) => new StsRejected('x', { status: 403, stsCode: code })
    expect(reasonOf(rejected('SignatureDoesNotMatch'))).toBe('SignatureDoesNotMatch')
    expect(reasonOf(rejected('InvalidClientTokenId'))).toBe('InvalidClientTokenId')
    expect(reasonOf(rejected('Made<Up>Code-1'))).toBe('sts-other')
    expect(reasonOf(new StsRejected('x', { status: 403 }))).toBe('ERR_STS_REJECTED')
  })
})

describe('an STS endpoint that answers with ever-new error codes', () => {
  let sts: Server
  let srv: TestServer
  let n = 0

  beforeAll(async () => {
    sts = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ Error: { Code: `MadeUpCode${n++}`, Message: 'no' } }))
    })
    await new Promise<void>((r) => sts.listen(0, '127.0.0.1', r))
    srv = await startTestServer({
      stsUrl: `http://127.0.0.1:${(sts.address() as AddressInfo).port}`,
      server: { mapUsers: [{ userarn: ALICE.arn, username: 'alice', groups: [] }], identityCacheSize: 0 },
    })
  })
  afterAll(async () => {
    await srv.close()
    await new Promise<void>((r) => sts.close(() => r()))
  })

  it('adds one reason label value however many codes it invents', async () => {
    const base = Date.now() - 5_000
    for (let i = 0; i < 50; i++) {
      const res = await srv.review(await presignedToken({ principal: ALICE, now: new Date(base - i * 1000) }))
      expect(res.json().status).toEqual({ authenticated: false, user: {} })
    }
    expect(n).toBe(50)
    const text = (await srv.get('/metrics')).body
    expect(labelValues(text, 'kube_iam_auth_reviews_total', 'reason')).toEqual(new Set(['sts-other']))
    expect(labelValues(text, 'aws_iam_authenticator_sts_responses_total', 'StsRegion')).toEqual(new Set(['us-west-2']))
  })
})
