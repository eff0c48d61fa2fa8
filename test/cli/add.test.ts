// `kube-iam-auth add` through the built CLI against the Kubernetes API stand-in (real client-node).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseAwsAuthData } from '../../src/mapping/configmap/parse.js'
import { cliEnv, ensureBuilt, runCli, tempDir } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'

const NODE_ROLES = `# worker nodes
- rolearn: arn:aws:iam::555555555555:role/nodes
  username: system:node:{{EC2PrivateDNSName}}
  groups: [system:bootstrappers, system:nodes]
`

describe('kube-iam-auth add user|role', () => {
  let kube: FakeKube
  let kubeconfig: string
  let env: Record<string, string>
  const data = () => kube.getObject('configmaps', 'kube-system', 'aws-auth')!.data as Record<string, string>
  const add = (...args: string[]) =>
    runCli(['add', ...args, '--prompt=false', '--kubeconfig', kubeconfig], { env, timeoutMs: 30_000 })

  beforeAll(async () => {
    await ensureBuilt()
    kube = await startFakeKube()
    const dir = tempDir('kia-add-')
    kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, kube.kubeconfigFor())
    env = cliEnv(dir)
  }, 120_000)
  afterAll(async () => {
    await kube?.close()
  })
  beforeEach(() => {
    kube.setConfigMap('kube-system', 'aws-auth', { mapRoles: NODE_ROLES })
  })

  it('adds a user, keeping the other entries and their comments, and prints the ConfigMap', async () => {
    const r = await add(
      'user',
      '--userarn',
      'arn:aws:iam::555555555555:user/a',
      '--username',
      'a',
      '--groups',
      'devs,ops',
    )
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^updated configmap:\n\napiVersion: v1\nkind: ConfigMap\n/)
    expect(data().mapRoles).toBe(NODE_ROLES)
    expect(load(data().mapUsers!)).toEqual([
      { userarn: 'arn:aws:iam::555555555555:user/a', username: 'a', groups: ['devs', 'ops'] },
    ])
    expect(parseAwsAuthData(data()).problems).toEqual([])
  })

  it('adds a role next to a user of the same name, then refuses the duplicate role', async () => {
    await add('user', '--userarn', 'arn:aws:iam::555555555555:user/a', '--username', 'a')
    const role = await add('role', '--rolearn', 'arn:aws:iam::555555555555:role/a', '--username', 'role-a')
    expect(role.code).toBe(0)
    expect(data().mapRoles).toBe(`${NODE_ROLES}- rolearn: arn:aws:iam::555555555555:role/a\n  username: role-a\n`)
    const dup = await add('role', '--rolearn', 'arn:aws:iam::555555555555:role/team/A', '--username', 'x')
    expect(dup.code).toBe(1)
    expect(dup.stderr).toContain(
      'cannot add duplicate role ARN "arn:aws:iam::555555555555:role/a" (already mapRoles[1]; role paths are ignored)',
    )
  })

  it('adds an SSO permission set mapping (upstream panics here) and refuses it twice', async () => {
    const sso = 'permissionSetName=ViewOnlyAccess,accountID=012345678912,partition=aws'
    const first = await add('role', '--sso', sso, '--username', 'viewer:{{SessionName}}', '--groups', 'view')
    expect(first.code).toBe(0)
    const parsed = parseAwsAuthData(data())
    expect(
      parsed.rules.sso[0]!.pattern.test('arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_0123abcd'),
    ).toBe(true)
    const again = await add('role', '--sso', sso, '--username', 'v2')
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('cannot add duplicate SSO permission set mapping')
  })

  it('retries on a 409 Conflict from a concurrent edit without losing it', async () => {
    kube.conflictNextUpdates(2)
    const r = await add('user', '--userarn', 'arn:aws:iam::555555555555:user/b', '--username', 'b')
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/conflict\); retrying on the new version \(1\/5\)\n.*\(2\/5\)\n$/s)
    expect(data().mapUsers).toContain('user/b')
  })

  it('refuses to write when aws-auth is already invalid, naming every problem', async () => {
    kube.setConfigMap('kube-system', 'aws-auth', { mapRoles: `${NODE_ROLES}- rolearn: nope\n  username: x\n` })
    const rv = kube.resourceVersion
    const r = await add('user', '--userarn', 'arn:aws:iam::555555555555:user/c', '--username', 'c')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      'the current aws-auth ConfigMap is invalid; fix it first:\n  - data.mapRoles[1].rolearn: error canonicalizing ARN',
    )
    expect(kube.resourceVersion).toBe(rv)
  })

  it('refuses an entry that would make aws-auth invalid', async () => {
    const r = await add('user', '--userarn', 'arn:aws:iam::555555555555:user/d', '--username', 'd-{{Nope}}')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('refusing a change that would leave the aws-auth ConfigMap invalid')
  })

  it('asks first, and a "no" changes nothing', async () => {
    const rv = kube.resourceVersion
    const r = await runCli(
      ['add', 'user', '--userarn', 'arn:aws:iam::555555555555:user/e', '--username', 'e', '--kubeconfig', kubeconfig],
      {
        env,
        input: 'n\n',
        timeoutMs: 30_000,
      },
    )
    expect(r.code).toBe(0)
    expect(r.stderr).toBe(
      'Ready to add "user arn:aws:iam::555555555555:user/e as e groups=[]", should we continue? [y/N]: cancelled "user arn:aws:iam::555555555555:user/e as e groups=[]"\n',
    )
    expect(kube.resourceVersion).toBe(rv)
  })
})
