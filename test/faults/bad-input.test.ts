// Hostile and broken input at the HTTP layer, over real sockets to the real TLS listener: bodies
// that stop short, are oversized or streamed slowly; odd tokens; pipelining; slowloris; hundreds of
// connections; clients that connect and say nothing, reset mid-request, or speak plain HTTP to the
// TLS port. After each, the server must still answer /healthz and verify a fresh token. How the app
// parses a request (content types, malformed, nested or duplicate-key JSON, chunked bodies past the
// limit, keep-alive after a 400) is tested in-process, in test/server/app-requests.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULTS, decodeServerConfig } from '../../src/config/server-config.js'
import { startFakeSts, type FakeSts } from '../support/fake-sts.js'
import { ALICE } from '../support/tokens.js'
import {
  CAROL,
  distinctTokens,
  memory,
  reviewBody,
  reviewFresh,
  runLoad,
  sleep,
  startServerUnderTest,
  watchCrashes,
  type ServerUnderTest,
} from './support/harness.js'
import { httpRequest, jsonPost, openTcp, openTls, openTlsOverTcp, type RawConn } from './support/raw.js'

const LIMIT = 64 * 1024
/** Shortened (server.headersTimeout) for the slowloris and idle-connection tests; the default stays 20 s. */
const HEADERS_TIMEOUT_MS = 2000
const MALFORMED = 'expected a request body to be a TokenReview\n'

describe('bad input over a real TLS socket', () => {
  let sts: FakeSts
  let srv: ServerUnderTest
  let crashes: ReturnType<typeof watchCrashes>
  /** A verified token of ALICE (mapped to "alice"), answered from the cache. */
  let alice: string
  const tls = () => openTls(srv.port, srv.ca)
  const open: RawConn[] = []
  const track = <T extends RawConn>(c: T): T => {
    open.push(c)
    return c
  }

  beforeAll(async () => {
    crashes = watchCrashes()
    sts = await startFakeSts({ principals: [ALICE, CAROL] })
    srv = await startServerUnderTest({
      stsUrl: sts.url,
      server: {
        mapUsers: [
          { userarn: ALICE.arn, username: 'alice', groups: ['devs'] },
          { userarn: CAROL.arn, username: 'carol', groups: ['devs'] },
        ],
        stsTimeout: '2s',
        headersTimeout: `${HEADERS_TIMEOUT_MS}ms`,
        // 500 connections from one address in a few seconds are not what this limit is about
        callerRateLimitPerSecond: 0,
      },
    })
    alice = (await distinctTokens([ALICE], 1))[0]!
    expect((await srv.review(alice!)).json().status.user.username).toBe('alice')
  })

  afterEach(async () => {
    for (const c of open.splice(0)) c.destroy()
    sts.setLatency(0)
    // after every kind of abuse: still healthy, and still verifying fresh tokens through STS
    const health = await srv.get('/healthz')
    expect(health).toMatchObject({ status: 200, body: 'ok' })
    expect((await reviewFresh(srv)).json().status.user.username).toBe('carol')
    expect(crashes.seen).toEqual([])
  })

  afterAll(async () => {
    await srv?.close()
    await sts?.close()
    crashes?.dispose()
    expect(srv.errorLines.get('internal error')).toBeUndefined()
  })

  /** One request on a fresh TLS connection; returns the first response and the connection. */
  async function exchange(
    request: Buffer,
  ): Promise<{ status: number; body: string; headers: Record<string, string>; conn: RawConn }> {
    const conn = track(await tls())
    await conn.write(request)
    const [res] = await conn.waitResponses(1)
    if (res === undefined)
      throw new Error(`no response; received ${JSON.stringify(conn.received().toString('latin1').slice(0, 200))}`)
    return { ...res, conn }
  }

  describe('bodies', () => {
    it('a body shorter than its Content-Length, then the client closes: no answer owed, nothing breaks', async () => {
      const conn = track(await tls())
      await conn.write(
        httpRequest({
          body: reviewBody(alice).slice(0, 100),
          contentLength: 500,
          headers: { 'Content-Type': 'application/json' },
        }),
      )
      await sleep(100)
      conn.socket.end()
      const closed = await Promise.race([conn.closed, sleep(5000).then(() => undefined)])
      expect(closed).toBeDefined()
      expect(conn.responses().filter((r) => r.status === 200)).toEqual([])
    })

    it(`a body of ${LIMIT} bytes is read; ${LIMIT} + 1 is a 413 and the connection is closed`, async () => {
      const fits = reviewBody(alice)
      const exact = await exchange(jsonPost(fits + ' '.repeat(LIMIT - fits.length)))
      expect(exact.status).toBe(200)
      expect(JSON.parse(exact.body).status.user.username).toBe('alice')

      const over = await exchange(jsonPost(fits + ' '.repeat(LIMIT + 1 - fits.length)))
      expect(over.status).toBe(413)
      expect(over.body).toBe(`request body larger than ${LIMIT} bytes\n`)
      expect(over.headers.connection).toBe('close')
      await expect(Promise.race([over.conn.closed.then(() => 'closed'), sleep(3000).then(() => 'open')])).resolves.toBe(
        'closed',
      )
    })

    it.each([
      ['with Content-Length', true],
      ['chunked', false],
    ])(
      'a 10 MiB body streamed slowly (%s) is cut off early: 413, closed, never buffered',
      async (_label, declared) => {
        const total = 10 * 2 ** 20
        const conn = track(await tls())
        const headers: Record<string, string> = declared
          ? { 'Content-Type': 'application/json', 'Content-Length': String(total) }
          : { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }
        const usage = () => {
          const m = process.memoryUsage()
          return m.heapUsed + m.arrayBuffers
        }
        const baseline = usage()
        let peak = baseline
        await conn.write(httpRequest({ headers }))
        const chunk = Buffer.alloc(32 * 1024, 0x20)
        let sent = 0
        const started = Date.now()
        // 32 KiB every 10 ms: the whole body would take ~3.5 s; bounded in bytes and in time
        while (sent < total && !conn.isClosed() && Date.now() - started < 8000) {
          const ok = await conn.write(
            declared
              ? chunk
              : Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
          )
          if (!ok) break
          sent += chunk.length
          peak = Math.max(peak, usage())
          await sleep(10)
        }
        const closed = await Promise.race([conn.closed, sleep(3000).then(() => undefined)])
        const [res] = conn.responses()
        expect(res?.status).toBe(413)
        expect(closed).toBeDefined()
        // cut off after about the limit, not after reading (even to discard) the other ~10 MiB
        expect(sent).toBeLessThan(2 ** 20)
        expect(closed!.at - started).toBeLessThan(2000)
        expect(peak - baseline).toBeLessThan(8 * 2 ** 20)
      },
      40_000,
    )
  })

  describe('headers and tokens', () => {
    it.each([
      ['4097 characters', `k8s-aws-v1.${'A'.repeat(4086)}`, 'size'],
      ['4096 characters of garbage', `k8s-aws-v1.${'A'.repeat(4085)}`, 'encoding'],
      ['non-ASCII after the prefix', `k8s-aws-v1.${'é'.repeat(200)}`, 'encoding'],
      ['only non-ASCII', 'ü€🙂'.repeat(300), 'prefix'],
      ['non-ASCII past 4096 UTF-16 units', '🙂'.repeat(2100), 'size'],
      ['control characters', `k8s-aws-v1.\u0000\u0007\n\r`, 'encoding'],
      ['a valid token with a trailing non-ASCII character', null, 'encoding'],
    ] as const)('a token of %s is a definitive denial (200), decided locally', async (_label, given, check) => {
      const token = given ?? `${alice}\u00e9`
      const before = sts.calls.total
      const res = await exchange(jsonPost(reviewBody(token)))
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body).status).toEqual({ authenticated: false, user: {} })
      expect(sts.calls.total).toBe(before)
      // (the last line about a single review: summaries of repeated denials may come in between)
      const audited = srv.logTail.filter((l) => l.audit && l.suppressed === undefined)
      expect(audited.at(-1)).toMatchObject({ decision: 'deny', reason: check })
    })

    it('5,000 tokens for distinct made-up regions: each a local denial naming the region; /metrics and memory stay put', async () => {
      const url = (i: number) => {
        const region = `us-${'x'.repeat(1000)}${i.toString(36)}-1`
        return (
          `https://sts.${region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15` +
          `&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${ALICE.accessKeyId}%2F20240501%2F${region}%2Fsts%2Faws4_request` +
          `&X-Amz-Date=20240501T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=${'a'.repeat(64)}`
        )
      }
      const bodies = Array.from({ length: 5000 }, (_, i) =>
        reviewBody(`k8s-aws-v1.${Buffer.from(url(i)).toString('base64url')}`),
      )
      const stsBefore = sts.calls.total
      const metricsBefore = (await srv.get('/metrics')).body.length
      const memBefore = await memory()
      const { results } = await runLoad(srv, bodies, { concurrency: 8, maxMs: 60_000 })
      const memAfter = await memory()
      const metricsAfter = (await srv.get('/metrics')).body.length
      expect(results).toHaveLength(5000)
      expect(results.filter((r) => r.status !== 200 || r.authenticated !== false)).toEqual([])
      expect(sts.calls.total).toBe(stsBefore)
      const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10
      console.log(
        `5,000 made-up regions: /metrics ${metricsBefore} -> ${metricsAfter} bytes; ` +
          `server heap used ${mib(memBefore.heapUsed)} -> ${mib(memAfter.heapUsed)} MiB, process RSS (server and client threads) ${mib(memBefore.rss)} -> ${mib(memAfter.rss)} MiB`,
      )
      // one new label value at most (the reason "host"), never one series per region
      expect(metricsAfter - metricsBefore).toBeLessThan(2048)
      expect(memAfter.heapUsed - memBefore.heapUsed).toBeLessThan(4 * 2 ** 20)
      const denial = srv.logTail.filter((l) => l.audit && l.decision === 'deny' && l.error !== undefined).at(-1)
      expect(denial).toMatchObject({ reason: 'host' })
      expect(String(denial?.error)).toMatch(/unknown region "us-x{77}\.\.\."/)
    }, 90_000)

    it('bytes that are not UTF-8 inside the token are a definitive denial', async () => {
      const body = Buffer.concat([
        Buffer.from('{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"k8s-aws-v1.'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}}'),
      ])
      const res = await exchange(jsonPost(body))
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body).status.authenticated).toBe(false)
    })

    it('headers larger than the server accepts: 431, not a crash', async () => {
      const res = await exchange(
        httpRequest({
          body: reviewBody(alice),
          headers: { 'Content-Type': 'application/json', 'X-Big': 'a'.repeat(20_000) },
        }),
      )
      expect(res.status).toBe(431)
    })

    it('a request line that is not HTTP: 400 and closed', async () => {
      const conn = track(await tls())
      await conn.write('HELLO THERE\r\n\r\n')
      const [res] = await conn.waitResponses(1)
      expect(res?.status).toBe(400)
      await expect(Promise.race([conn.closed.then(() => 'closed'), sleep(3000).then(() => 'open')])).resolves.toBe(
        'closed',
      )
    })
  })

  describe('connections', () => {
    it('HTTP/1.1 pipelining: five requests in one write are answered in order', async () => {
      const [fresh] = await distinctTokens([CAROL], 1)
      sts.setLatency(100) // the STS-bound review (first) finishes after the ones behind it would
      const conn = track(await tls())
      await conn.write(
        Buffer.concat([
          jsonPost(reviewBody(fresh!)),
          httpRequest({ method: 'GET', path: '/healthz' }),
          jsonPost(reviewBody(alice)),
          jsonPost(reviewBody('k8s-aws-v1.Zm9v')),
          jsonPost('not json', { Connection: 'close' }),
        ]),
      )
      const answers = await conn.waitResponses(5)
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 400])
      expect(JSON.parse(answers[0]!.body).status.user.username).toBe('carol')
      expect(answers[1]!.body).toBe('ok')
      expect(JSON.parse(answers[2]!.body).status.user.username).toBe('alice')
      expect(JSON.parse(answers[3]!.body).status).toEqual({ authenticated: false, user: {} })
      expect(answers[4]!.body).toBe(MALFORMED)
      await expect(Promise.race([conn.closed.then(() => 'closed'), sleep(3000).then(() => 'open')])).resolves.toBe(
        'closed',
      )
    })

    it('slowloris: 50 sockets sending a header byte every 500 ms do not starve others, and are dropped after headersTimeout', async () => {
      const slow = await Promise.all(Array.from({ length: 50 }, async () => track(await tls())))
      const started = Date.now()
      await Promise.all(slow.map((c) => c.write('POST /authenticate HTTP/1.1\r\nHost: localhost\r\nX-Slow: ')))
      const drip = setInterval(() => {
        for (const c of slow) if (!c.isClosed()) void c.write('a')
      }, 500)
      try {
        // others keep being served meanwhile (bounded: 25 rounds, ~2.5 s)
        const latencies: number[] = []
        for (let i = 0; i < 25 && Date.now() - started < HEADERS_TIMEOUT_MS + 500; i++) {
          const t0 = Date.now()
          const [health, review] = await Promise.all([srv.get('/healthz'), srv.review(alice)])
          latencies.push(Date.now() - t0)
          expect(health.status).toBe(200)
          expect(review.json().status.user.username).toBe('alice')
          await sleep(100)
        }
        expect(latencies.length).toBeGreaterThanOrEqual(10)
        expect(Math.max(...latencies)).toBeLessThan(1000)
        // every slow socket is closed by the server: headersTimeout plus the sweep interval plus slack
        const deadline = HEADERS_TIMEOUT_MS + HEADERS_TIMEOUT_MS / 4 + 1500
        const closedAt = await Promise.all(
          slow.map((c) =>
            Promise.race([c.closed.then((x) => x.at - started), sleep(deadline + 1000).then(() => Infinity)]),
          ),
        )
        expect(Math.max(...closedAt)).toBeLessThan(deadline)
        expect(Math.min(...closedAt)).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100)
        expect(slow.every((c) => c.responses()[0]?.status === 408 || c.responses().length === 0)).toBe(true)
      } finally {
        clearInterval(drip)
      }
    }, 40_000)

    it('500 concurrent TLS connections each doing one review are all answered', async () => {
      const started = Date.now()
      const one = async () => {
        const conn = await tls()
        try {
          await conn.write(jsonPost(reviewBody(alice), { Connection: 'close' }))
          const [res] = await conn.waitResponses(1, 30_000)
          return res
        } finally {
          conn.destroy()
        }
      }
      const answers = await Promise.all(Array.from({ length: 500 }, one))
      const elapsed = Date.now() - started
      console.log(`500 concurrent TLS connections, one review each: ${elapsed} ms`)
      expect(answers.filter((a) => a?.status !== 200 || JSON.parse(a.body).status.user.username !== 'alice')).toEqual(
        [],
      )
      expect(elapsed).toBeLessThan(30_000)
    }, 40_000)

    it('a client that completes TLS and never sends a byte is dropped after headersTimeout; others are unaffected', async () => {
      const idle = await Promise.all(Array.from({ length: 20 }, async () => track(await tls())))
      const started = Date.now()
      expect((await srv.review(alice)).status).toBe(200)
      const closedAt = await Promise.all(
        idle.map((c) =>
          Promise.race([c.closed.then((x) => x.at - started), sleep(HEADERS_TIMEOUT_MS + 3000).then(() => Infinity)]),
        ),
      )
      expect(Math.max(...closedAt)).toBeLessThan(HEADERS_TIMEOUT_MS + 1500)
      expect(idle.every((c) => c.received().length === 0)).toBe(true)
    })

    it('a client that opens TCP and never starts TLS does not affect others', async () => {
      const silent = await Promise.all(Array.from({ length: 20 }, async () => track(await openTcp(srv.port))))
      expect((await srv.review(alice)).status).toBe(200)
      expect((await srv.get('/healthz')).status).toBe(200)
      expect(silent.every((c) => !c.isClosed())).toBe(true) // Node's TLS handshakeTimeout (120 s) applies; not waited for
    })

    it('clients that reset (RST) before, during and after sending a request do not disturb the server', async () => {
      const [inflight] = await distinctTokens([CAROL], 1)
      sts.setLatency(300)
      const calls = sts.calls.getCallerIdentity
      // 1: headers only; 2: half a body; 3: a whole request whose review is in flight at STS
      const conns = await Promise.all([0, 1, 2].map(() => openTlsOverTcp(srv.port, srv.ca)))
      const body = reviewBody(inflight!)
      await conns[0]!.write(httpRequest({ body, headers: { 'Content-Type': 'application/json' } }).subarray(0, 60))
      await conns[1]!.write(jsonPost(body).subarray(0, 300))
      await conns[2]!.write(jsonPost(body))
      for (let i = 0; i < 100 && sts.calls.getCallerIdentity === calls; i++) await sleep(5)
      for (const c of conns) c.tcp.resetAndDestroy()
      await sleep(500) // the in-flight review completes into a dead socket
      expect(await srv.metric('kube_iam_auth_sts_inflight_requests')).toBe(0)
      // the review that was cut off still cached its identity: the same token is now a cache hit
      const again = await srv.review(inflight!)
      expect(again.json().status.user.username).toBe('carol')
      expect(sts.calls.getCallerIdentity).toBe(calls + 1)
    })

    it('plain HTTP and random bytes to the TLS port: the connection is closed, nothing else happens', async () => {
      const plain = track(await openTcp(srv.port))
      await plain.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
      const junk = track(await openTcp(srv.port))
      await junk.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256)))
      for (const c of [plain, junk]) {
        const closed = await Promise.race([c.closed, sleep(5000).then(() => undefined)])
        expect(closed).toBeDefined()
        expect(c.received().toString('latin1')).not.toContain('HTTP/1.1 200')
      }
    })
  })
})

describe('server.headersTimeout (the knob the slowloris tests turn)', () => {
  const decode = (headersTimeout?: string) =>
    decodeServerConfig({ clusterID: 'c1', server: headersTimeout === undefined ? {} : { headersTimeout } })
  it('defaults to 20 s, applied where the listener is created; accepts 100ms..60s; refuses the rest', () => {
    expect(decode().config?.headersTimeoutMs).toBeUndefined()
    expect(DEFAULTS.headersTimeoutMs).toBe(20_000)
    expect(decode('2s').config?.headersTimeoutMs).toBe(2000)
    expect(decode('60s').config?.headersTimeoutMs).toBe(60_000)
    for (const bad of ['50ms', '61s', '0s']) {
      expect(decode(bad).problems).toContainEqual(
        expect.objectContaining({ path: 'server.headersTimeout', severity: 'error' }),
      )
    }
  })
})
