// stsTimeout bounds the whole STS exchange, whatever phase stalls: a TLS handshake that never
// completes, a DNS lookup that never answers, a DNS lookup that fails. Under a bounded concurrent
// load (distinct tokens that need STS, cached identities, tokens refused locally), every review gets
// its answer within stsTimeout + stsQueueTimeout + slack, cached identities keep being answered,
// health stays fast, the STS gauges drain, and the next token after the fault is verified.
import { createServer as createTcpServer, type LookupFunction, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FakeSts } from '../support/fake-sts.js'
import {
  distinctTokens,
  endLoadSuite,
  expectHealthy,
  gaugesDrain,
  LOAD_MAPPINGS,
  MAPPED,
  measureLoad,
  ownMs,
  reviewBody,
  reviewFresh,
  startLoadSts,
  startServerUnderTest,
  startTcpGate,
  watchCrashes,
  type CrashWatch,
  type ReviewResult,
  type ServerUnderTest,
  type StatsRow,
  type TcpGate,
} from './support/harness.js'

const STS_TIMEOUT_MS = 500
const QUEUE_TIMEOUT_MS = 300
const SLACK_MS = 700
const LATENCY_BOUND_MS = STS_TIMEOUT_MS + QUEUE_TIMEOUT_MS + SLACK_MS
const MAPPINGS = {
  ...LOAD_MAPPINGS,
  stsTimeout: `${STS_TIMEOUT_MS}ms`,
  stsQueueTimeout: `${QUEUE_TIMEOUT_MS}ms`,
  stsMaxConcurrency: 4,
}
/** The STS host name the DNS suites resolve (never a real name: only the injected lookup answers it). */
const STANDIN_HOST = 'sts-standin.invalid'

const rows: StatsRow[] = []
type Kind = 'fresh' | 'hit' | 'local'

/** 70 % distinct tokens, 20 % cached identities (when there are any), 10 % refused locally. */
async function plan(n: number, hits: readonly string[]): Promise<{ bodies: string[]; kinds: Kind[] }> {
  const fresh = await distinctTokens(MAPPED, n)
  const bodies: string[] = []
  const kinds: Kind[] = []
  for (let i = 0; i < n; i++) {
    const slot = i % 10
    const kind: Kind = slot < 2 && hits.length > 0 ? 'hit' : slot === 2 ? 'local' : 'fresh'
    kinds.push(kind)
    bodies.push(
      reviewBody(kind === 'hit' ? hits[i % hits.length]! : kind === 'local' ? 'k8s-aws-v1.Zm9vYmFy' : fresh[i]!),
    )
  }
  return { bodies, kinds }
}

function expectAnswers(results: readonly ReviewResult[], kinds: readonly Kind[], freshReason: RegExp): void {
  const wrong: string[] = []
  for (const r of results) {
    const kind = kinds[r.i]!
    const ok =
      kind === 'hit'
        ? r.status === 200 && r.authenticated === true
        : kind === 'local'
          ? r.status === 200 && r.authenticated === false
          : r.status === 503 && r.authenticated === false && freshReason.test(r.reason ?? '')
    if (!ok && wrong.length < 5)
      wrong.push(`${kind} #${r.i}: ${r.status} ${r.authenticated} ${r.reason ?? r.error ?? ''}`)
  }
  expect(wrong).toEqual([])
  const slow = results.filter((r) => ownMs(r) > LATENCY_BOUND_MS)
  expect(
    slow.map((r) => `${kinds[r.i]} #${r.i} took ${Math.round(r.ms)} ms (${Math.round(r.waitMs)} ms waiting)`),
  ).toEqual([])
}

/** Timed out, or shed by the admission gate while the stalled calls held every slot. */
const TIMED_OUT = /timed out after 500 ms|too many STS requests waiting|free STS request slot/

describe('STS deadlines under load', () => {
  let crashes: CrashWatch
  let sts: FakeSts

  beforeAll(async () => {
    crashes = watchCrashes()
    sts = await startLoadSts()
  })

  afterAll(() =>
    endLoadSuite(
      'STS deadlines (stsTimeout 500ms, stsQueueTimeout 300ms, stsMaxConcurrency 4; concurrency 12)',
      rows,
      crashes,
      undefined,
      [sts],
    ),
  )

  it('a TLS handshake that never completes: 503 at the deadline, local refusals still 200, nothing left behind', async () => {
    const sockets = new Set<Socket>()
    const stall = createTcpServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
    })
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r))
    const srv = await startServerUnderTest({
      stsUrl: `https://127.0.0.1:${(stall.address() as { port: number }).port}`,
      server: MAPPINGS,
    })
    try {
      const { bodies, kinds } = await plan(300, [])
      const { run, samples, row } = await measureLoad(srv, 'TLS handshake stalls', bodies, {
        concurrency: 12,
        maxMs: 1500,
      })
      rows.push(row)
      expect(run.results.length).toBeGreaterThanOrEqual(30)
      expectAnswers(run.results, kinds, TIMED_OUT)
      expectHealthy(samples)
      await gaugesDrain(srv)
      expect(sockets.size).toBeGreaterThan(0)
    } finally {
      await srv.close()
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => stall.close(() => r()))
    }
    expect(srv.errorLines.get('internal error')).toBeUndefined()
  })

  describe('DNS', () => {
    let srv: ServerUnderTest
    let gate: TcpGate
    let mode: 'ok' | 'hang' | 'fail' = 'ok'
    const asked: string[] = []
    /** Resolves the stand-in's name to 127.0.0.1, stalls, or fails, as `mode` says; nothing else is ever resolved. */
    const lookup: LookupFunction = (host, opts, cb) => {
      asked.push(host)
      const answer = cb as (err: NodeJS.ErrnoException | null, address: unknown, family?: number) => void
      const notFound = () => Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
      if (host !== STANDIN_HOST) return answer(notFound(), '', 4)
      if (mode === 'hang') return
      if (mode === 'fail') return void setImmediate(() => answer(notFound(), '', 4))
      const all = (opts as { all?: boolean }).all
      setImmediate(() => (all ? answer(null, [{ address: '127.0.0.1', family: 4 }]) : answer(null, '127.0.0.1', 4)))
    }
    let hits: string[]

    beforeAll(async () => {
      gate = await startTcpGate(sts.port)
      srv = await startServerUnderTest({
        stsUrl: `http://${STANDIN_HOST}:${gate.port}`,
        server: MAPPINGS,
        stsLookup: lookup,
      })
      hits = await distinctTokens(MAPPED, 4)
      for (const t of hits) expect((await srv.review(t)).json().status.authenticated).toBe(true)
      expect(new Set(asked)).toEqual(new Set([STANDIN_HOST]))
    })
    afterAll(async () => {
      await srv?.close()
      await gate?.close()
      expect(srv.errorLines.get('internal error')).toBeUndefined()
    })

    it.each([
      ['hangs', 'hang', TIMED_OUT],
      [
        'fails',
        'fail',
        /ENOTFOUND: getaddrinfo ENOTFOUND sts-standin\.invalid|too many STS requests waiting|free STS request slot/,
      ],
    ] as const)(
      'a DNS lookup that %s: 503 within the deadline, cached identities 200, recovery at once',
      async (_name, fault, reason) => {
        const { bodies, kinds } = await plan(300, hits)
        // Every STS call must open a connection, and so resolve the name: drop the kept-alive ones.
        await gate.shut()
        await gate.open()
        const lookupsBefore = asked.length
        const { run, samples, row } = await measureLoad(srv, `DNS lookup ${fault}`, bodies, {
          concurrency: 12,
          maxMs: 1500,
          start: () => void (mode = fault),
          stop: () => void (mode = 'ok'),
        })
        rows.push(row)
        expect(asked.length).toBeGreaterThan(lookupsBefore)
        expect(run.results.length).toBeGreaterThanOrEqual(30)
        expectAnswers(run.results, kinds, reason)
        expectHealthy(samples)
        await gaugesDrain(srv)
        expect((await reviewFresh(srv)).json().status.user.username).toBe('carol')
      },
    )
  })
})
