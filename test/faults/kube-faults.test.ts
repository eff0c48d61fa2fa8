// Kubernetes API faults against the real webhook in backendMode EKSConfigMap: the real
// @kubernetes/client-node follows kube-system/aws-auth on the API stand-in while a bounded load of
// distinct and cached tokens runs from a worker thread and /healthz is sampled every 100 ms. While
// watches are dropped or the API server is down, every review must still be answered (with the last
// mapping that was seen), health must stay fast, nothing may crash or grow, and an aws-auth edit
// made during the outage must apply by itself once the API server is back.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import type { FakeSts } from '../support/fake-sts.js'
import { ALICE } from '../support/tokens.js'
import {
  BOB,
  CAROL,
  DAVE,
  distinctTokens,
  endLoadSuite,
  expectHealthy,
  MAPPED,
  measureLoad,
  memory,
  ownMs,
  reviewBody,
  reviewFresh,
  sleep,
  startLoadSts,
  startServerUnderTest,
  stsGauges,
  watchCrashes,
  type CrashWatch,
  type HealthSample,
  type ReviewResult,
  type ServerUnderTest,
  type StatsRow,
} from './support/harness.js'

/** STS answers at once here: a review is bounded by the queue wait plus scheduling slack. */
const LATENCY_BOUND_MS = 300 + 700
const CONCURRENCY = 12

/** aws-auth at mapping version `v`: every username carries the version, so answers say which mapping decided. */
const awsAuth = (v: string) => ({
  mapRoles: `- rolearn: arn:aws:iam::444455556666:role/Admin\n  username: admin-${v}:{{SessionName}}\n  groups: [admins]\n`,
  mapUsers: [ALICE, CAROL, DAVE]
    .map((p) => `- userarn: ${p.arn}\n  username: ${p.arn.split('/')[1]}-${v}\n  groups: [devs]\n`)
    .join(''),
})
const versionOf = (username: string | undefined) => /-(v[\w-]+)(?::|$)/.exec(username ?? '')?.[1]

const rows: StatsRow[] = []

describe('Kubernetes API faults under load (EKSConfigMap)', () => {
  let kube: FakeKube
  let sts: FakeSts
  let srv: ServerUnderTest
  let crashes: CrashWatch
  let hits: string[]

  /** The mapping version a fresh token is answered with now. */
  const currentVersion = async () => versionOf((await reviewFresh(srv)).json().status.user?.username)

  /** Polls (bounded) until fresh tokens are answered with mapping version `v`; returns how long it took. */
  async function applies(v: string, withinMs: number): Promise<number> {
    const started = Date.now()
    for (;;) {
      if ((await currentVersion()) === v) return Date.now() - started
      if (Date.now() - started > withinMs) throw new Error(`aws-auth version ${v} did not apply within ${withinMs} ms`)
      await sleep(100)
    }
  }

  beforeAll(async () => {
    crashes = watchCrashes()
    kube = await startFakeKube({ bookmarkIntervalMs: 200 })
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('v0'))
    sts = await startLoadSts()
    const kubeconfig = join(tempDir('kia-faults-kube-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    srv = await startServerUnderTest({
      stsUrl: sts.url,
      server: {
        backendMode: ['EKSConfigMap'],
        kubeconfig,
        stsTimeout: '500ms',
        stsQueueTimeout: '300ms',
        stsMaxConcurrency: 4,
        callerRateLimitPerSecond: 0,
      },
    })
    hits = await distinctTokens(MAPPED, 4)
    for (const t of hits) expect((await srv.review(t)).json().status.user.username).toMatch(/-v0(:|$)/)
  })

  afterEach(() => kube.setDown(false))

  afterAll(() =>
    endLoadSuite(
      `Kubernetes API faults (EKSConfigMap; STS healthy; client concurrency ${CONCURRENCY})`,
      rows,
      crashes,
      srv,
      [sts, kube],
    ),
  )

  /** 70 % distinct tokens, 20 % cached identities, 10 % the cached unmapped BOB. */
  async function plan(n: number): Promise<{ bodies: string[]; unmapped: Set<number> }> {
    const fresh = await distinctTokens(MAPPED, n)
    const [bob] = await distinctTokens([BOB], 1)
    const unmapped = new Set<number>()
    const bodies = fresh.map((t, i) => {
      if (i % 10 === 9) {
        unmapped.add(i)
        return reviewBody(bob!)
      }
      return reviewBody(i % 10 < 2 ? hits[i % hits.length]! : t)
    })
    return { bodies, unmapped }
  }

  async function underLoad(
    scenario: string,
    during: () => Promise<void>,
  ): Promise<{ results: ReviewResult[]; samples: HealthSample[]; unmapped: Set<number> }> {
    // more bodies than 1.5 s can take on this machine: the load is bounded by time and spans the fault
    const { bodies, unmapped } = await plan(900)
    const { run, samples, row } = await measureLoad(srv, scenario, bodies, {
      concurrency: CONCURRENCY,
      maxMs: 1500,
      during,
    })
    rows.push(row)
    expect(run.results.length).toBeGreaterThanOrEqual(50)
    expectHealthy(samples)
    const slow = run.results.filter((r) => ownMs(r) > LATENCY_BOUND_MS)
    expect(
      slow.map((r) => `#${r.i} took ${Math.round(r.ms)} ms (${Math.round(r.waitMs)} ms waiting for a CPU)`),
    ).toEqual([])
    expect(await stsGauges(srv)).toEqual({ inflight: 0, queued: 0 })
    return { results: run.results, samples, unmapped }
  }

  /** Every review answered 200: mapped identities authenticated with one of `versions`, BOB denied. */
  function expectAnswered(
    results: readonly ReviewResult[],
    unmapped: ReadonlySet<number>,
    versions: readonly string[],
  ): void {
    const wrong = results.filter((r) =>
      unmapped.has(r.i)
        ? !(r.status === 200 && r.authenticated === false)
        : !(r.status === 200 && r.authenticated === true && versions.includes(versionOf(r.username) ?? '')),
    )
    expect(wrong.slice(0, 5)).toEqual([])
  }

  it('watches dropped every 150 ms under load: every review answered, the last edit applies', async () => {
    const failuresBefore = await srv.metric('aws_iam_authenticator_configmap_watch_failures_total')
    const before = await memory()
    const { results, unmapped } = await underLoad('watch dropped every 150 ms', async () => {
      for (let k = 1; k <= 8; k++) {
        await sleep(150)
        kube.dropWatches()
        if (k % 2 === 0) kube.setConfigMap('kube-system', 'aws-auth', awsAuth(`v${k / 2}`))
      }
    })
    expectAnswered(results, unmapped, ['v0', 'v1', 'v2', 'v3', 'v4'])
    const took = await applies('v4', 10_000)
    console.log(`edit made while watches kept dropping applied ${took} ms after the drops stopped`)
    expect(await srv.metric('aws_iam_authenticator_configmap_watch_failures_total')).toBeGreaterThan(failuresBefore)
    const after = await memory()
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * 2 ** 20)
  }, 30_000)

  it('API server down under load: answered from the last mapping; an edit made meanwhile applies once it is back', async () => {
    const v = 'v-outage'
    let downAt = 0
    const { results, unmapped } = await underLoad('API server down', async () => {
      kube.setDown(true)
      downAt = Date.now()
      await sleep(100)
      kube.setConfigMap('kube-system', 'aws-auth', awsAuth(v))
    })
    // the outage lasts the whole load: only the mapping seen before it could answer
    expectAnswered(results, unmapped, ['v4'])
    expect(await currentVersion()).toBe('v4')
    // health never depended on the API server; /status keeps saying the source is synced (last good mapping)
    expect((await srv.get('/healthz')).status).toBe(200)
    expect(JSON.parse((await srv.get('/status')).body).sources[0]).toMatchObject({ name: 'EKSConfigMap', synced: true })
    const outageMs = Date.now() - downAt
    kube.setDown(false)
    const took = await applies(v, 12_000)
    console.log(`edit made during a ${outageMs} ms outage applied ${took} ms after the API server came back`)
    expect(took).toBeLessThan(12_000)
  }, 30_000)

  it('API server down while history is compacted: relists after 410 Gone and applies the edit', async () => {
    const listsBefore = kube.lists
    kube.setDown(true)
    await sleep(300)
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('v-compacted'))
    kube.compact()
    // cached and fresh reviews keep working meanwhile
    expect(await currentVersion()).toBe('v-outage')
    kube.setDown(false)
    await applies('v-compacted', 10_000)
    expect(kube.lists).toBeGreaterThan(listsBefore)
  }, 30_000)

  it('API server and STS both down: cached identities are still answered with the last mapping', async () => {
    kube.setDown(true)
    sts.setFault('hang')
    try {
      const answers = await Promise.all(hits.map((t) => srv.review(t)))
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200])
      expect(answers.map((a) => versionOf(a.json().status.user.username))).toEqual([
        'v-compacted',
        'v-compacted',
        'v-compacted',
        'v-compacted',
      ])
      const [fresh] = await distinctTokens([CAROL], 1)
      const started = Date.now()
      expect((await srv.review(fresh!)).status).toBe(503)
      expect(Date.now() - started).toBeLessThan(500 + 300 + 700)
    } finally {
      sts.setFault('none')
      kube.setDown(false)
    }
    expect(await currentVersion()).toBe('v-compacted')
  })
})
