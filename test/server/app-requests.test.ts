// Request parsing of the webhook's HTTP app, in-process (plain HTTP on 127.0.0.1, no TLS, no STS):
// methods, content types and encodings, sizes, malformed JSON, kinds and versions, the other routes
// and the caller guard. Every malformed request is a 4xx with a one-line text answer, a metric and
// an info log line, and never reaches the authenticator.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SourceStatus } from '../../src/mapping/types.js'
import { openTcp, httpRequest, jsonPost, type RawConn } from '../faults/support/raw.js'
import { allowed, startApp, tokenReviewBody, type InProcessApp, type Reply } from '../support/in-process-app.js'

const LIMIT = 1024
const MALFORMED = 'expected a request body to be a TokenReview'
const TOKEN = 'k8s-aws-v1.in-process-token'

let app: InProcessApp
const conns: RawConn[] = []
const raw = async () => {
  const c = await openTcp(app.port)
  conns.push(c)
  return c
}

beforeEach(async () => {
  app = await startApp({ maxRequestBytes: LIMIT })
})
afterEach(async () => {
  for (const c of conns.splice(0)) c.destroy()
  await app.close()
})

/** A 4xx answer to a malformed request: text, counted, logged, and the authenticator never asked. */
async function expectMalformed(reply: Pick<Reply, 'status' | 'body' | 'headers'>, status: number, message: string) {
  expect(reply.status).toBe(status)
  expect(reply.body).toBe(`${message}\n`)
  expect(reply.headers['content-type']).toBe('text/plain; charset=utf-8')
  expect(app.calls).toEqual([])
  expect(await app.metric('kube_iam_auth_reviews_total', { decision: 'malformed', reason: String(status) })).toBe(1)
  expect(
    await app.metric(
      'aws_iam_authenticator_authenticate_latency_seconds',
      { result: 'malformed_request' },
      'aws_iam_authenticator_authenticate_latency_seconds_count',
    ),
  ).toBe(1)
  expect(app.logs).toEqual([
    expect.objectContaining({ level: 'info', msg: 'malformed TokenReview request', status, reason: message }),
  ])
}

describe('method', () => {
  it.each(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s /authenticate -> 405 expected POST', async (method) => {
    const body = method === 'GET' || method === 'OPTIONS' ? {} : { body: tokenReviewBody(TOKEN) }
    await expectMalformed(await app.send('/authenticate', { method, ...body }), 405, 'expected POST')
  })

  it('HEAD /authenticate -> 405 with no body', async () => {
    const reply = await app.send('/authenticate', { method: 'HEAD' })
    expect([reply.status, reply.body]).toEqual([405, ''])
    expect(app.calls).toEqual([])
  })
})

describe('Content-Type', () => {
  it.each([
    ['missing', undefined, 200],
    ['application/json', 'application/json', 200],
    ['with a charset', 'application/json; charset=utf-8', 200],
    ['upper case', 'APPLICATION/JSON', 200],
    ['with spaces before the parameter', 'application/json ;charset=utf-8', 200],
    ['text/plain', 'text/plain', 415],
    ['a form', 'application/x-www-form-urlencoded', 415],
    ['a lookalike', 'application/jsonp', 415],
    ['a JSON subtype', 'application/merge-patch+json', 415],
    ['multipart', 'multipart/form-data; boundary=x', 415],
    ['empty', '', 415],
  ] as const)('%s (%s) -> %i', async (_label, type, status) => {
    const conn = await raw()
    await conn.write(
      httpRequest({ body: tokenReviewBody(TOKEN), headers: type === undefined ? {} : { 'Content-Type': type } }),
    )
    const [reply] = await conn.waitResponses(1)
    if (status === 415) return expectMalformed(reply!, 415, 'expected Content-Type: application/json')
    expect(reply!.status).toBe(200)
    expect(JSON.parse(reply!.body).status.user.username).toBe('alice')
  })
})

describe('Content-Encoding', () => {
  it.each(['gzip', 'deflate', 'br', 'gzip, identity'])('%s -> 415: compressed bodies are refused', async (encoding) => {
    const reply = await app.post(tokenReviewBody(TOKEN), {
      'content-type': 'application/json',
      'content-encoding': encoding,
    })
    await expectMalformed(reply, 415, 'expected an uncompressed request body (no Content-Encoding)')
  })

  it.each(['identity', ' IDENTITY '])('%j is no encoding at all -> answered', async (encoding) => {
    const reply = await app.post(tokenReviewBody(TOKEN), {
      'content-type': 'application/json',
      'content-encoding': encoding,
    })
    expect(reply.status).toBe(200)
  })
})

describe('size', () => {
  const padded = (size: number) => {
    const body = tokenReviewBody(TOKEN)
    return body + ' '.repeat(size - body.length)
  }

  it(`a body of exactly ${LIMIT} bytes is read and answered`, async () => {
    const reply = await app.post(padded(LIMIT))
    expect(reply.status).toBe(200)
    expect(app.calls).toEqual([{ token: TOKEN, caller: expect.any(String) }])
  })

  it(`${LIMIT} + 1 bytes -> 413, and the connection is closed instead of drained`, async () => {
    const conn = await raw()
    await conn.write(jsonPost(padded(LIMIT + 1)))
    const [reply] = await conn.waitResponses(1)
    expect(reply!.headers.connection).toBe('close')
    await expectMalformed(reply!, 413, `request body larger than ${LIMIT} bytes`)
    await conn.closed
  })

  it('a Content-Length over the limit is refused before a byte of the body is sent', async () => {
    const conn = await raw()
    await conn.write(httpRequest({ headers: { 'Content-Type': 'application/json', 'Content-Length': '10485760' } }))
    const [reply] = await conn.waitResponses(1)
    await expectMalformed(reply!, 413, `request body larger than ${LIMIT} bytes`)
  })

  it('a chunked body past the limit -> 413', async () => {
    const conn = await raw()
    const body = padded(LIMIT) + ' '.repeat(LIMIT)
    await conn.write(
      Buffer.concat([
        httpRequest({ headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }),
        Buffer.from(`${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`),
      ]),
    )
    const [reply] = await conn.waitResponses(1)
    await expectMalformed(reply!, 413, `request body larger than ${LIMIT} bytes`)
  })

  it.each([
    ['an empty body', ''],
    ['no body at all', undefined],
  ])('%s -> 400 expected a request body', async (_label, body) => {
    const conn = await raw()
    await conn.write(
      httpRequest({ headers: { 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body }) }),
    )
    const [reply] = await conn.waitResponses(1)
    await expectMalformed(reply!, 400, 'expected a request body')
  })
})

describe('body', () => {
  it.each([
    ['not JSON', 'not valid json'],
    ['truncated JSON', tokenReviewBody(TOKEN).slice(0, 30)],
    ['null', 'null'],
    ['a number', '42'],
    ['a negative float', '-1.5e300'],
    ['a string', '"TokenReview"'],
    ['true', 'true'],
    ['an array', '[]'],
    ['an array holding a TokenReview', `[${tokenReviewBody(TOKEN)}]`],
    ['deeply nested arrays', '['.repeat(400) + ']'.repeat(400)],
    ['an unclosed nesting', '['.repeat(LIMIT - 10)],
  ])('%s -> 400', async (_label, body) => {
    await expectMalformed(await app.post(body), 400, MALFORMED)
  })

  it.each([
    [
      'another kind',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SubjectAccessReview', spec: { token: TOKEN } },
      'expected kind TokenReview, got "SubjectAccessReview"',
    ],
    [
      'no kind',
      { apiVersion: 'authentication.k8s.io/v1', spec: { token: TOKEN } },
      'expected kind TokenReview, got null',
    ],
    [
      'a kind in another case',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'tokenreview', spec: { token: TOKEN } },
      'expected kind TokenReview, got "tokenreview"',
    ],
    [
      'an unknown version',
      { apiVersion: 'authentication.k8s.io/v2', kind: 'TokenReview', spec: { token: TOKEN } },
      'unsupported TokenReview apiVersion "authentication.k8s.io/v2" (supported: authentication.k8s.io/v1, authentication.k8s.io/v1beta1)',
    ],
    [
      'no version',
      { kind: 'TokenReview', spec: { token: TOKEN } },
      'unsupported TokenReview apiVersion null (supported: authentication.k8s.io/v1, authentication.k8s.io/v1beta1)',
    ],
    [
      'a version of another group',
      { apiVersion: 'v1', kind: 'TokenReview', spec: { token: TOKEN } },
      'unsupported TokenReview apiVersion "v1" (supported: authentication.k8s.io/v1, authentication.k8s.io/v1beta1)',
    ],
    [
      'no spec',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview' },
      'expected spec.token to be a non-empty string',
    ],
    [
      'no token',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: {} },
      'expected spec.token to be a non-empty string',
    ],
    [
      'an empty token',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: '' } },
      'expected spec.token to be a non-empty string',
    ],
    [
      'a token that is not a string',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: ['k8s-aws-v1.x'] } },
      'expected spec.token to be a non-empty string',
    ],
    [
      'deeply nested objects',
      JSON.parse(`${'{"a":'.repeat(100)}1${'}'.repeat(100)}`) as object,
      'expected kind TokenReview, got null',
    ],
  ])('%s -> 400 saying what is wrong', async (_label, doc, message) => {
    await expectMalformed(await app.post(JSON.stringify(doc)), 400, message)
  })

  it('deep nesting at the real 64 KiB limit: 400 (or ignored where TokenReview has no such field), never a crash', async () => {
    const limit = 64 * 1024
    const own = await startApp({ maxRequestBytes: limit })
    try {
      expect(await own.post('['.repeat(32_000) + ']'.repeat(32_000))).toMatchObject({
        status: 400,
        body: `${MALFORMED}\n`,
      })
      expect((await own.post('['.repeat(limit - 10))).status).toBe(400)
      expect(await own.post(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`)).toMatchObject({
        status: 400,
        body: 'expected kind TokenReview, got null\n',
      })
      const deepExtra = `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"x":${'['.repeat(25_000)}${']'.repeat(25_000)},"token":"${TOKEN}"}}`
      expect(deepExtra.length).toBeLessThanOrEqual(limit)
      expect((await own.post(deepExtra)).status).toBe(200)
      expect(own.calls.map((c) => c.token)).toEqual([TOKEN])
    } finally {
      await own.close()
    }
  })

  it('fields it does not know are ignored, however deep', async () => {
    const extra = `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{},"spec":{"x":${'['.repeat(400)}${']'.repeat(400)},"token":"${TOKEN}"}}`
    expect((await app.post(extra)).status).toBe(200)
    expect(app.calls.map((c) => c.token)).toEqual([TOKEN])
  })

  it('duplicate keys: the last one wins everywhere (as Go encoding/json does)', async () => {
    const kindLast = await app.post(
      `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","kind":"SubjectAccessReview","spec":{"token":"x"}}`,
    )
    expect([kindLast.status, kindLast.body]).toEqual([400, 'expected kind TokenReview, got "SubjectAccessReview"\n'])
    await app.post(
      `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"first","token":"last"}}`,
    )
    expect(app.calls.map((c) => c.token)).toEqual(['last'])
    const versionLast = await app.post(
      `{"apiVersion":"authentication.k8s.io/v1","apiVersion":"authentication.k8s.io/v1beta1","kind":"TokenReview","spec":{"token":"x"}}`,
    )
    expect(versionLast.json().apiVersion).toBe('authentication.k8s.io/v1beta1')
  })

  it.each(['authentication.k8s.io/v1', 'authentication.k8s.io/v1beta1'])(
    'a TokenReview %s is answered in that version, with the token handed over as sent',
    async (apiVersion) => {
      const reply = await app.post(tokenReviewBody(TOKEN, apiVersion))
      expect(reply.status).toBe(200)
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(reply.json()).toMatchObject({ apiVersion, kind: 'TokenReview', status: { authenticated: true } })
      expect(app.calls.map((c) => c.token)).toEqual([TOKEN])
    },
  )

  it('bytes that are not UTF-8 reach the authenticator as replacement characters, never a crash', async () => {
    const body = Buffer.concat([
      Buffer.from('{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"k8s-aws-v1.'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"}}'),
    ])
    expect((await app.post(body)).status).toBe(200)
    expect(app.calls[0]!.token).toMatch(/^k8s-aws-v1\.\uFFFD+$/)
  })

  it('a malformed request leaves a keep-alive connection usable: five bad, then one good, in order', async () => {
    const full = tokenReviewBody(TOKEN)
    const conn = await raw()
    const cuts = [1, 10, full.length / 2, full.length - 2, full.length - 1]
    for (const cut of cuts) await conn.write(jsonPost(full.slice(0, Math.floor(cut))))
    await conn.write(jsonPost(full))
    const answers = await conn.waitResponses(cuts.length + 1)
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 400, 400, 200])
    expect(answers.slice(0, -1).every((a) => a.body === `${MALFORMED}\n`)).toBe(true)
    expect(conn.isClosed()).toBe(false)
  })
})

describe('other routes', () => {
  it('/healthz answers ok, and 503 once shutting down', async () => {
    let draining = false
    const own = await startApp({ draining: () => draining })
    try {
      expect(await own.send('/healthz')).toMatchObject({ status: 200, body: 'ok' })
      draining = true
      expect(await own.send('/healthz')).toMatchObject({ status: 503, body: 'shutting down\n' })
    } finally {
      await own.close()
    }
  })

  it('/status lists the sources: 200 once all are synced, 503 while one is not', async () => {
    const sources: SourceStatus[] = [
      { name: 'MountedFile', synced: true, counts: { roles: 1, users: 0, accounts: 0 } },
      { name: 'EKSConfigMap', synced: false, healthy: false, counts: { roles: 0, users: 0, accounts: 0 } },
    ]
    const own = await startApp({ sources: () => sources })
    try {
      const waiting = await own.send('/status')
      expect(waiting.status).toBe(503)
      expect(waiting.json()).toEqual({ sources })
      sources[1] = { ...sources[1]!, synced: true, healthy: true }
      expect((await own.send('/status')).status).toBe(200)
    } finally {
      await own.close()
    }
  })

  it('/metrics is Prometheus text with the upstream names', async () => {
    await app.post('nope')
    const reply = await app.send('/metrics')
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(reply.body).toContain(
      'aws_iam_authenticator_authenticate_latency_seconds_count{result="malformed_request"} 1',
    )
  })

  it.each(['/', '/nope', '/authenticatex', '/metrics/x'])('%s -> 404', async (path) => {
    expect(await app.send(path)).toMatchObject({ status: 404, body: '404 page not found\n' })
  })
})

describe('caller', () => {
  it('without a guard the caller is the remote address', async () => {
    await app.post(tokenReviewBody(TOKEN))
    expect(app.calls).toEqual([{ token: TOKEN, caller: expect.stringMatching(/127\.0\.0\.1$/) }])
  })

  it('a guard that answers (401) stops the request before its body is read; one that passes names the caller', async () => {
    let pass = false
    const own = await startApp({
      guard: async (req, res) => {
        if (pass) return `caller:${req.headers['x-caller'] as string}`
        res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n')
        return undefined
      },
    })
    try {
      expect(await own.post(tokenReviewBody(TOKEN))).toMatchObject({ status: 401, body: 'unauthorized\n' })
      expect(own.calls).toEqual([])
      expect(
        await own.metric(
          'aws_iam_authenticator_authenticate_latency_seconds',
          { result: 'malformed_request' },
          'aws_iam_authenticator_authenticate_latency_seconds_count',
        ),
      ).toBe(1)
      pass = true
      const reply = await own.post(tokenReviewBody(TOKEN), { 'content-type': 'application/json', 'x-caller': 'kas-1' })
      expect(reply.status).toBe(200)
      expect(own.calls).toEqual([{ token: TOKEN, caller: 'caller:kas-1' }])
    } finally {
      await own.close()
    }
  })

  it('an authenticator that throws (a bug) -> 500 internal error, logged without a stack, and the app keeps serving', async () => {
    let fail = true
    app.decide(() => {
      if (fail) throw new Error('boom')
      return allowed()
    })
    const reply = await app.post(tokenReviewBody(TOKEN))
    expect([reply.status, reply.body]).toEqual([500, 'internal error\n'])
    expect(app.logs).toEqual([
      expect.objectContaining({ level: 'error', msg: 'internal error', error: 'boom', errorType: 'Error' }),
    ])
    expect(JSON.stringify(app.logs)).not.toContain('at ')
    fail = false
    expect((await app.post(tokenReviewBody(TOKEN))).status).toBe(200)
  })
})
