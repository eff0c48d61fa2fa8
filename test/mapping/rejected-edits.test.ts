// A rejected live edit is loud. The edit that removes an admin and, in the same change, adds one
// invalid entry is rejected as a whole (by design: the last good mapping stays), so the removal does
// not happen: /status says so (healthy: false, the first problem and its path) until a valid edit
// arrives, one error line is logged and the rejection is counted, and a Warning Event on the object
// tells `kubectl describe` why the edit did not apply and which version is in force.
import { execFile } from 'node:child_process'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, tool } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { ALICE, presignedToken } from '../support/tokens.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const run = promisify(execFile)
const KUBECTL = tool('kubectl')

const BOB: FakeStsPrincipal = {
  accessKeyId: 'AKIAKIATESTBOB000001',
  secretAccessKey: 'bob/secret+key/0123456789abcdefghijklmnopq',
  arn: 'arn:aws:iam::111122223333:user/bob',
  account: '111122223333',
  userId: 'AIDAKIATESTBOB000001',
}

/** Polls `check` (bounded) until it is true. */
async function until(ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const INVALID_ENTRY = '- userarn: arn:aws:iam::111122223333:user/mallory\n  username: "mallory-{{Nope}}"\n'
const PROBLEM_MESSAGE =
  'unknown template variable {{Nope}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})'

interface Harness {
  srv: TestServer
  sts: FakeSts
  username(who: FakeStsPrincipal): Promise<string | undefined>
  status(): Promise<Record<string, unknown>>
  metric(name: string): Promise<string | undefined>
}

async function harness(server: Record<string, unknown>): Promise<Harness> {
  const sts = await startFakeSts({ principals: [ALICE, BOB] })
  const srv = await startTestServer({ stsUrl: sts.url, server })
  return {
    srv,
    sts,
    username: async (who) =>
      (await srv.review(await presignedToken({ principal: who, now: new Date(Date.now() - 1000) }))).json().status.user
        ?.username as string | undefined,
    status: async () => JSON.parse((await srv.get('/status')).body).sources[0] as Record<string, unknown>,
    metric: async (line) =>
      (await srv.get('/metrics')).body
        .split('\n')
        .find((l) => l.startsWith(line))
        ?.slice(line.length + 1),
  }
}

describe('EKSConfigMap: an edit that removes the admin and adds an invalid entry', () => {
  let kube: FakeKube
  let h: Harness
  let kubeconfig: string
  const users = (...entries: string[]) => ({ mapUsers: entries.join('') })
  const alice = `- userarn: ${ALICE.arn}\n  username: alice\n  groups: [system:masters]\n`
  const bob = `- userarn: ${BOB.arn}\n  username: bob\n`

  beforeAll(async () => {
    kube = await startFakeKube({ bookmarkIntervalMs: 200 })
    kube.setConfigMap('kube-system', 'aws-auth', users(alice, bob))
    kubeconfig = join(tempDir('kia-rejected-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    h = await harness({ backendMode: ['EKSConfigMap'], kubeconfig })
  }, 60_000)
  afterAll(async () => {
    await h?.srv.close()
    await h?.sts.close()
    await kube?.close()
  })

  it('is rejected as a whole, and says so everywhere until a valid edit arrives', async () => {
    expect(await h.username(ALICE)).toBe('alice')
    const good = kube.resourceVersion
    const bad = kube.setConfigMap('kube-system', 'aws-auth', users(bob, INVALID_ENTRY)).metadata.resourceVersion!
    await until(3000, async () => (await h.status()).healthy === false)

    // by design the last good mapping stays: the removal of alice did not happen
    expect(await h.username(ALICE)).toBe('alice')
    expect(await h.status()).toMatchObject({
      name: 'EKSConfigMap',
      synced: true,
      healthy: false,
      version: good,
      rejected: { version: bad, path: 'data.mapUsers[1].username', message: PROBLEM_MESSAGE, problems: 1 },
    })
    expect(await h.metric('kube_iam_auth_mapping_source_rejected_update{source="EKSConfigMap"}')).toBe('1')
    expect(await h.metric('kube_iam_auth_mapping_source_reloads_total{source="EKSConfigMap",result="rejected"}')).toBe(
      '1',
    )
    const errors = h.srv.logs.filter((l) => l.level === 'error' && String(l.msg).startsWith('aws-auth edit rejected'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ resourceVersion: bad, inForce: good })

    await until(3000, () => kube.events('kube-system').length === 1)
    const [event] = kube.events('kube-system')
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'InvalidMapping',
      involvedObject: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: 'kube-system',
        name: 'aws-auth',
        uid: kube.getObject('configmaps', 'kube-system', 'aws-auth')!.metadata.uid,
        resourceVersion: bad,
      },
      message:
        `version ${bad} of aws-auth was not applied: data.mapUsers[1].username: ${PROBLEM_MESSAGE}. ` +
        `The mapping of version ${good} stays in force. Check an edit with: kube-iam-auth validate --aws-auth FILE`,
      source: { component: 'kube-iam-auth' },
    })

    // a valid edit: applied, healthy again, alice's removal takes effect, and describe says so
    const fixed = kube.setConfigMap('kube-system', 'aws-auth', users(bob)).metadata.resourceVersion!
    await until(3000, async () => (await h.username(ALICE)) === undefined)
    expect(await h.status()).toMatchObject({ healthy: true, version: fixed })
    expect((await h.status()).rejected).toBeUndefined()
    expect(await h.metric('kube_iam_auth_mapping_source_rejected_update{source="EKSConfigMap"}')).toBe('0')
    await until(3000, () => kube.events('kube-system').length === 2)
    expect(kube.events('kube-system')[1]).toMatchObject({
      type: 'Normal',
      reason: 'MappingApplied',
      message: `version ${fixed} of aws-auth is applied (the rejected version ${bad} is superseded)`,
    })
  })

  it.skipIf(KUBECTL.missing)(
    `kubectl describe configmap -n kube-system aws-auth shows why an edit did not apply${KUBECTL.skipNote}`,
    async () => {
      const bad = kube.setConfigMap('kube-system', 'aws-auth', users(bob, INVALID_ENTRY)).metadata.resourceVersion!
      await until(3000, () =>
        kube.events('kube-system').some((e) => e.involvedObject && String(e.message).includes(bad)),
      )
      const { stdout } = await run(
        'kubectl',
        ['--kubeconfig', kubeconfig, 'describe', 'configmap', '-n', 'kube-system', 'aws-auth'],
        {
          timeout: 30_000,
        },
      )
      const events = stdout.slice(stdout.indexOf('Events:'))
      expect(events).toMatch(
        /Warning\s+InvalidMapping\s+\S+\s+kube-iam-auth\s+version \d+ of aws-auth was not applied: data\.mapUsers\[1\]\.username: unknown template variable \{\{Nope\}\}/,
      )
      expect(events).toMatch(/Normal\s+MappingApplied\s+\S+\s+kube-iam-auth\s+version \d+ of aws-auth is applied/)
    },
  )
})

describe('CRD: an edit that breaks an IAMIdentityMapping', () => {
  let kube: FakeKube
  let h: Harness
  let kubeconfig: string

  beforeAll(async () => {
    kube = await startFakeKube({ bookmarkIntervalMs: 200 })
    kube.putMapping('alice', { arn: ALICE.arn, username: 'alice', groups: ['system:masters'] })
    kubeconfig = join(tempDir('kia-rejected-crd-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    h = await harness({ backendMode: ['CRD'], kubeconfig })
  }, 60_000)
  afterAll(async () => {
    await h?.srv.close()
    await h?.sts.close()
    await kube?.close()
  })

  it("keeps the object's last valid version in force (it used to drop it), and reports it on the object", async () => {
    expect(await h.username(ALICE)).toBe('alice')
    const good = kube.getObject('iamidentitymappings', '', 'alice')!.metadata.resourceVersion
    const bad = kube.putMapping('alice', { arn: ALICE.arn, username: 'alice-{{Nope}}' }).metadata.resourceVersion!
    await until(3000, async () => (await h.status()).healthy === false)
    expect(await h.username(ALICE)).toBe('alice')
    expect((await h.status()).rejected).toMatchObject({
      path: 'IAMIdentityMapping/alice.spec.username',
      message: PROBLEM_MESSAGE,
    })
    expect(await h.metric('kube_iam_auth_mapping_source_reloads_total{source="CRD",result="rejected"}')).toBe('1')
    // cluster-scoped object: its Events live in default, as kube-apiserver requires
    await until(3000, () => kube.events('default').length === 1)
    expect(kube.events('default')[0]).toMatchObject({
      type: 'Warning',
      reason: 'InvalidMapping',
      involvedObject: { kind: 'IAMIdentityMapping', name: 'alice', resourceVersion: bad },
      message: `version ${bad} of IAMIdentityMapping alice was not applied: IAMIdentityMapping/alice.spec.username: ${PROBLEM_MESSAGE}. Its version ${good} stays in force.`,
    })
    expect(kube.events('default')[0]!.involvedObject).not.toHaveProperty('namespace')

    // a new object that was never valid maps nothing, and is reported too; the others still apply
    kube.putMapping('bob', { arn: BOB.arn, username: '' })
    await until(3000, () => kube.events('default').length === 2)
    expect(String(kube.events('default')[1]!.message)).toMatch(
      /IAMIdentityMapping bob was not applied: .*It maps nothing until it is fixed\.$/,
    )
    expect(await h.username(BOB)).toBeUndefined()

    kube.putMapping('alice', { arn: ALICE.arn, username: 'alice-fixed' })
    kube.putMapping('bob', { arn: BOB.arn, username: 'bob' })
    await until(3000, async () => (await h.status()).healthy === true)
    expect(await h.username(ALICE)).toBe('alice-fixed')
    expect(await h.username(BOB)).toBe('bob')
  })

  it.skipIf(KUBECTL.missing)(`kubectl describe iamidentitymapping shows the rejection${KUBECTL.skipNote}`, async () => {
    kube.putMapping('carol', { arn: 'arn:aws:sts::111122223333:assumed-role/Admin/carol', username: 'carol' })
    await until(3000, () =>
      kube.events('default').some((e) => (e.involvedObject as { name?: string }).name === 'carol'),
    )
    const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, 'describe', 'iamidentitymapping', 'carol'], {
      timeout: 30_000,
    })
    expect(stdout.slice(stdout.indexOf('Events:'))).toMatch(
      /Warning\s+InvalidMapping\s+\S+\s+kube-iam-auth\s+version \d+ of IAMIdentityMapping carol was not applied: IAMIdentityMapping\/carol\.spec\.arn: 'arn:aws:sts::111122223333:assumed-role\/Admin\/carol' is an assumed-role \(session\) ARN/,
    )
  })
})

describe('DynamicFile: an edit that removes the admin and adds an invalid entry', () => {
  let h: Harness
  let file: string
  let dir: string
  const write = (users: object[]) => {
    // written next to the file and renamed over it, as config management tools do
    writeFileSync(join(dir, 'next.json'), JSON.stringify({ mapUsers: users }))
    renameSync(join(dir, 'next.json'), file)
  }

  beforeAll(async () => {
    dir = tempDir('kia-rejected-dyn-')
    file = join(dir, 'mapping.json')
    write([
      { userarn: ALICE.arn, username: 'alice', groups: ['system:masters'] },
      { userarn: BOB.arn, username: 'bob' },
    ])
    h = await harness({ backendMode: ['DynamicFile'], dynamicfilepath: file })
  }, 60_000)
  afterAll(async () => {
    await h?.srv.close()
    await h?.sts.close()
  })

  it('is rejected as a whole; /status says so with the first problem until a valid edit arrives', async () => {
    expect(await h.username(ALICE)).toBe('alice')
    const good = (await h.status()).version
    write([
      { userarn: BOB.arn, username: 'bob' },
      { userarn: 'arn:aws:iam::111122223333:user/mallory', username: 'mallory-{{Nope}}' },
    ])
    await until(5000, async () => (await h.status()).healthy === false)
    expect(await h.username(ALICE)).toBe('alice')
    expect(await h.status()).toMatchObject({
      healthy: false,
      version: good,
      rejected: { path: 'mapUsers[1].username', message: PROBLEM_MESSAGE, problems: 1 },
    })
    expect(await h.metric('kube_iam_auth_mapping_source_reloads_total{source="DynamicFile",result="rejected"}')).toBe(
      '1',
    )
    expect(
      h.srv.logs.filter((l) => l.level === 'error' && String(l.msg).startsWith('DynamicFile update rejected')),
    ).toHaveLength(1)
    write([{ userarn: BOB.arn, username: 'bob' }])
    await until(5000, async () => (await h.status()).healthy === true)
    expect(await h.username(ALICE)).toBeUndefined()
  })
})

// With nothing in force yet (the server just started), refusing an invalid aws-auth or DynamicFile
// as a whole would lock out everyone it maps (for example after a migration, where aws-iam-
// authenticator silently skipped entries kube-iam-auth refuses): its valid entries apply, the
// invalid ones never do, and the problem is as loud as for a rejected edit.
describe('at start-up, with nothing in force: the valid entries apply, loudly', () => {
  it('EKSConfigMap', async () => {
    const kube = await startFakeKube({ bookmarkIntervalMs: 200 })
    const cm = kube.setConfigMap('kube-system', 'aws-auth', {
      mapUsers: `- userarn: ${ALICE.arn}\n  username: alice\n`,
      mapRoles:
        '- rolearn: arn:aws:sts::111122223333:assumed-role/Admin/bob\n  username: bob\n  groups: [system:masters]\n',
    })
    const kubeconfig = join(tempDir('kia-partial-'), 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    const h = await harness({ backendMode: ['EKSConfigMap'], kubeconfig })
    try {
      expect(await h.username(ALICE)).toBe('alice')
      expect(await h.status()).toMatchObject({
        synced: true,
        healthy: false,
        version: cm.metadata.resourceVersion,
        rejected: { version: cm.metadata.resourceVersion, path: 'data.mapRoles[0].rolearn', problems: 1 },
      })
      await until(3000, () => kube.events('kube-system').length === 1)
      expect(String(kube.events('kube-system')[0]!.message)).toMatch(
        /^version \d+ of aws-auth has invalid entries, which are ignored: data\.mapRoles\[0\]\.rolearn: .*\. No earlier version was in force, so its valid entries apply\./,
      )
    } finally {
      await h.srv.close()
      await h.sts.close()
      await kube.close()
    }
  })

  it('DynamicFile', async () => {
    const file = join(tempDir('kia-partial-dyn-'), 'mapping.json')
    writeFileSync(
      file,
      JSON.stringify({
        mapUsers: [
          { userarn: ALICE.arn, username: 'alice' },
          { userarn: 'arn:aws:iam::11112222333:user/carol', username: 'carol' },
        ],
      }),
    )
    const h = await harness({ backendMode: ['DynamicFile'], dynamicfilepath: file })
    try {
      expect(await h.username(ALICE)).toBe('alice')
      expect(await h.status()).toMatchObject({
        synced: true,
        healthy: false,
        rejected: { path: 'mapUsers[1].userarn', problems: 1 },
      })
    } finally {
      await h.srv.close()
      await h.sts.close()
    }
  })
})
