// The live Kubernetes backends through the whole server: the real @kubernetes/client-node watching a
// Kubernetes API stand-in that speaks the real list/watch protocol (chunked events, resourceVersion,
// bookmarks, 410 Gone, dropped connections), and TokenReviews over TLS answered from what it sees.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { tempDir } from '../support/cli.js'
import { ALICE, presignedToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const OPS: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTOPS000001',
  secretAccessKey: 'ops/secret+key/0123456789abcdefghijklmnopq',
  arn: 'arn:aws:sts::111122223333:assumed-role/Operators/olga',
  account: '111122223333',
  userId: 'AROAKIATESTOPS000001:olga',
}

const awsAuth = (opsUsername: string, extra = '') => ({
  mapRoles: `- rolearn: arn:aws:iam::111122223333:role/ops/Operators\n  username: ${opsUsername}\n  groups: [ops]\n${extra}`,
  mapUsers: `- userarn: ${ALICE.arn}\n  username: alice\n  groups:\n    - devs\n`,
})

/** Polls `check` (bounded) and returns how long it took to become true. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`condition not met within ${ms} ms`)
}

describe('EKSConfigMap: kube-system/aws-auth followed live', () => {
  let kube: FakeKube
  let sts: FakeSts
  let srv: TestServer
  const username = async (who: FakeStsPrincipal) => {
    const res = await srv.review(await presignedToken({ principal: who, now: new Date(Date.now() - 1000) }))
    return res.json().status.user?.username as string | undefined
  }

  beforeAll(async () => {
    kube = await startFakeKube({ bookmarkIntervalMs: 200 })
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('ops:{{SessionName}}'))
    sts = await startFakeSts({ principals: [ALICE, OPS] })
    const kubeconfig = join(tempDir('kia-kube-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    srv = await startTestServer({ stsUrl: sts.url, server: { backendMode: ['EKSConfigMap'], kubeconfig } })
  })
  afterAll(async () => {
    await srv?.close()
    await sts?.close()
    await kube?.close()
  })
  afterEach(() => kube.setDown(false))

  it('maps identities from aws-auth once the server has started (path-less role match, templates)', async () => {
    expect(await username(OPS)).toBe('ops:olga')
    expect(await username(ALICE)).toBe('alice')
    const status = JSON.parse((await srv.get('/status')).body)
    expect(status.sources[0]).toMatchObject({
      name: 'EKSConfigMap',
      synced: true,
      counts: { roles: 1, users: 1, accounts: 0 },
    })
  })

  it('applies an edit to the next TokenReview within 2 seconds', async () => {
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('operator:{{SessionName}}'))
    const took = await within(2000, async () => (await username(OPS)) === 'operator:olga')
    expect(took).toBeLessThan(2000)
  })

  it('keeps the last good mapping when an edit has any invalid entry, and says so on /status and in metrics', async () => {
    const before = kube.resourceVersion
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('someone-else', '- rolearn: not-an-arn\n  username: x\n'))
    await within(2000, async () => {
      const s = JSON.parse((await srv.get('/status')).body).sources[0]
      return typeof s.lastError === 'string' && s.lastError.includes('not-an-arn')
    })
    expect(await username(OPS)).toBe('operator:olga')
    const status = JSON.parse((await srv.get('/status')).body).sources[0]
    expect(status.version).toBe(before) // the version in force is still the last good one
    expect(status.lastError).toContain('data.mapRoles[1].rolearn: error canonicalizing ARN')
    const metrics = (await srv.get('/metrics')).body
    expect(metrics).toContain('kube_iam_auth_mapping_source_rejected_update{source="EKSConfigMap"} 1')
    expect(metrics).toMatch(/kube_iam_auth_mapping_source_reloads_total\{source="EKSConfigMap",result="rejected"\} 1/)
    expect(srv.logs.some((l) => l.level === 'error' && String(l.msg).startsWith('aws-auth edit rejected'))).toBe(true)
    // a later valid edit applies and clears the error
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('fixed:{{SessionName}}'))
    await within(2000, async () => (await username(OPS)) === 'fixed:olga')
    expect(JSON.parse((await srv.get('/status')).body).sources[0].lastError).toBeUndefined()
  })

  it('loses no update while the API server is away, and reconnects by itself', async () => {
    kube.setDown(true)
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('while-down:{{SessionName}}'))
    await new Promise((r) => setTimeout(r, 700))
    expect(await username(OPS)).toBe('fixed:olga')
    const away = JSON.parse((await srv.get('/status')).body).sources[0]
    expect(away).toMatchObject({ synced: true, healthy: false })
    kube.setDown(false)
    await within(8000, async () => (await username(OPS)) === 'while-down:olga')
    expect(JSON.parse((await srv.get('/status')).body).sources[0]).toMatchObject({ synced: true, healthy: true })
    const metrics = (await srv.get('/metrics')).body
    expect(metrics).toMatch(/aws_iam_authenticator_configmap_watch_failures_total [1-9]/)
  })

  it('relists after 410 Gone when history was compacted past its resourceVersion', async () => {
    const listsBefore = kube.lists
    kube.setDown(true)
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('after-compaction:{{SessionName}}'))
    kube.compact()
    kube.setDown(false)
    await within(8000, async () => (await username(OPS)) === 'after-compaction:olga')
    expect(kube.lists).toBeGreaterThan(listsBefore)
  })

  it('clears the mapping when aws-auth is deleted (as upstream) and logs it as an error', async () => {
    kube.deleteConfigMap('kube-system', 'aws-auth')
    await within(2000, async () => (await username(OPS)) === undefined)
    expect(
      srv.logs.some((l) => l.level === 'error' && String(l.msg).includes('every aws-auth mapping is cleared')),
    ).toBe(true)
    kube.setConfigMap('kube-system', 'aws-auth', awsAuth('back:{{SessionName}}'))
    await within(2000, async () => (await username(OPS)) === 'back:olga')
  })
})

describe('CRD: IAMIdentityMapping objects followed live', () => {
  let kube: FakeKube
  let sts: FakeSts
  let srv: TestServer

  beforeAll(async () => {
    kube = await startFakeKube()
    sts = await startFakeSts({ principals: [ALICE, OPS] })
    const kubeconfig = join(tempDir('kia-kube-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    kube.putMapping('alice', {
      arn: ALICE.arn.replace('alice', 'Alice').replace('user/', 'user/'),
      username: 'alice-crd',
      groups: ['crd'],
    })
    srv = await startTestServer({ stsUrl: sts.url, server: { backendMode: ['CRD', 'MountedFile'], kubeconfig } })
  })
  afterAll(async () => {
    await srv?.close()
    await sts?.close()
    await kube?.close()
  })

  const username = async (who: FakeStsPrincipal) =>
    (await srv.review(await presignedToken({ principal: who, now: new Date(Date.now() - 1000) }))).json().status.user
      ?.username

  it('maps at once and writes status.canonicalARN as upstream does', async () => {
    expect(await username(ALICE)).toBe('alice-crd')
    await within(
      2000,
      async () =>
        (kube.getObject('iamidentitymappings', '', 'alice')?.status as { canonicalARN?: string } | undefined)
          ?.canonicalARN === ALICE.arn.toLowerCase(),
    )
  })

  it('follows creates and deletes; a role ARN with a path matches the session', async () => {
    expect(await username(OPS)).toBeUndefined()
    kube.putMapping('ops', { arn: 'arn:aws:iam::111122223333:role/ops/Operators', username: 'crd-ops:{{SessionName}}' })
    await within(2000, async () => (await username(OPS)) === 'crd-ops:olga')
    kube.deleteMapping('ops')
    await within(2000, async () => (await username(OPS)) === undefined)
  })

  it('ignores an invalid object without dropping the others, and reports it', async () => {
    kube.putMapping('broken', { arn: 'arn:aws:iam::111122223333:group/nope', username: 'x' })
    await within(2000, async () =>
      JSON.parse((await srv.get('/status')).body).sources[0].lastError?.includes('IAMIdentityMapping/broken'),
    )
    expect(await username(ALICE)).toBe('alice-crd')
  })
})
