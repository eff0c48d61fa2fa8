// `kube-iam-auth add` through the built CLI against the Kubernetes API stand-in (real client-node).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { runAdd } from '../../src/cli/add.js'
import type { Io } from '../../src/cli/io.js'
import { parseAwsAuthData } from '../../src/mapping/configmap/parse.js'
import { BIN, cliEnv, ensureBuilt, ROOT, runCli, tempDir } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import { startTerminal, TMUX } from '../support/terminal.js'

const NODE_ROLES = `# worker nodes
- rolearn: arn:aws:iam::555555555555:role/nodes
  username: system:node:{{EC2PrivateDNSName}}
  groups: [system:bootstrappers, system:nodes]
`

describe('kube-iam-auth add user|role', () => {
  let kube: FakeKube
  let kubeconfig: string
  let dir: string
  let env: Record<string, string>
  const data = () => kube.getObject('configmaps', 'kube-system', 'aws-auth')!.data as Record<string, string>
  const add = (...args: string[]) =>
    runCli(['add', ...args, '--prompt=false', '--kubeconfig', kubeconfig], { env, timeoutMs: 30_000 })

  beforeAll(async () => {
    await ensureBuilt()
    kube = await startFakeKube()
    dir = tempDir('kia-add-')
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

  it('a "y" piped to the prompt writes the entry (it used to read as "no")', async () => {
    const r = await runCli(
      ['add', 'user', '--userarn', 'arn:aws:iam::555555555555:user/p', '--username', 'p', '--kubeconfig', kubeconfig],
      { env, input: 'y\n', timeoutMs: 30_000 },
    )
    expect(r.stderr).toBe(
      'Ready to add "user arn:aws:iam::555555555555:user/p as p groups=[]", should we continue? [y/N]: ',
    )
    expect(r.code).toBe(0)
    expect(load(data().mapUsers!)).toEqual([{ userarn: 'arn:aws:iam::555555555555:user/p', username: 'p' }])
  })

  it('--no-prompt skips the question, like --prompt=false', async () => {
    const r = await runCli(
      [
        'add',
        'user',
        '--no-prompt',
        '--userarn',
        'arn:aws:iam::555555555555:user/q',
        '--username',
        'q',
        '--kubeconfig',
        kubeconfig,
      ],
      { env, timeoutMs: 30_000 },
    )
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
    expect(data().mapUsers).toContain('user/q')
  })

  it('a kubeconfig for an http:// server (kubectl proxy) as kubectl users write it: no insecure flag needed', async () => {
    const proxy = join(dir, 'proxy.kubeconfig')
    writeFileSync(
      proxy,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: ${kube.url}\n` +
        'contexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: proxy\nusers:\n- name: proxy\n  user: {}\n' +
        'current-context: proxy\n',
    )
    const r = await runCli(
      [
        'add',
        'role',
        '--rolearn',
        'arn:aws:iam::555555555555:role/viewer',
        '--username',
        'viewer',
        '--prompt=false',
        '--kubeconfig',
        proxy,
      ],
      { env, timeoutMs: 30_000 },
    )
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
    expect(data().mapRoles).toContain('role/viewer')
  })

  it('without any kubeconfig and outside a pod: one line, like upstream\'s "empty kubeconfig"', async () => {
    const home = join(dir, 'home-without-kube')
    mkdirSync(home, { recursive: true })
    const r = await runCli(
      ['add', 'user', '--prompt=false', '--userarn', 'arn:aws:iam::555555555555:user/r', '--username', 'r'],
      { env: cliEnv(home), timeoutMs: 30_000 },
    )
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: empty kubeconfig: ${home}/.kube/config does not exist and this is not a pod; pass --kubeconfig or --master-url\n`,
    })
  })

  it('an API server that cannot be reached: one line naming it and why, nothing written', async () => {
    const gone = await startFakeKube()
    const unreachable = join(dir, 'gone.kubeconfig')
    writeFileSync(unreachable, gone.kubeconfigFor())
    await gone.close()
    const r = await runCli(
      [
        'add',
        'user',
        '--prompt=false',
        '--userarn',
        'arn:aws:iam::555555555555:user/s',
        '--username',
        's',
        '--kubeconfig',
        unreachable,
      ],
      { env, timeoutMs: 30_000 },
    )
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: `error: could not read ConfigMap kube-system/aws-auth: Kubernetes API ${gone.url}: connection refused (is the API server running, and is this its address?)\n`,
    })
  })

  it('a flow list with comments keeps every byte; the entry goes inside it', async () => {
    const users = '[{userarn: arn:aws:iam::555555555555:user/x, username: x}] # managed by the platform team\n'
    kube.setConfigMap('kube-system', 'aws-auth', { mapRoles: NODE_ROLES, mapUsers: users })
    const r = await add('user', '--userarn', 'arn:aws:iam::555555555555:user/t', '--username', 't')
    expect(r.code).toBe(0)
    expect(data().mapUsers).toBe(
      '[{userarn: arn:aws:iam::555555555555:user/x, username: x}, {userarn: arn:aws:iam::555555555555:user/t, username: t}] # managed by the platform team\n',
    )
    expect(data().mapRoles).toBe(NODE_ROLES)
  })

  it('in a pod: the service account is used when there is no kubeconfig', async () => {
    const token = 'pod-service-account-token'
    const secure = await startFakeKube({ tls: true, requireToken: token })
    try {
      secure.setConfigMap('kube-system', 'aws-auth', { mapRoles: NODE_ROLES })
      const sa = join(dir, 'serviceaccount')
      mkdirSync(sa, { recursive: true })
      writeFileSync(join(sa, 'token'), token)
      writeFileSync(join(sa, 'ca.crt'), secure.caPem!)
      const out: string[] = []
      const io: Io = {
        stdout: { write: (s: string) => out.push(s) },
        stderr: { write: (s: string) => out.push(s) },
        env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(secure.url).port },
        now: () => new Date(),
        prompt: async () => 'n',
      }
      const code = await runAdd(
        {
          kind: 'user',
          userarn: 'arn:aws:iam::555555555555:user/pod',
          username: 'pod',
          prompt: false,
          serviceAccountDir: sa,
        },
        io,
      )
      expect(code).toBe(0)
      const cm = secure.getObject('configmaps', 'kube-system', 'aws-auth')!
      expect((cm.data as Record<string, string>).mapUsers).toBe(
        '- userarn: arn:aws:iam::555555555555:user/pod\n  username: pod\n',
      )
    } finally {
      await secure.close()
    }
  })

  describe.skipIf(TMUX.missing)(`on a real terminal${TMUX.skipNote}`, () => {
    const addOnTerminal = async (name: string, answer: string) => {
      const terminal = await startTerminal(
        [
          process.execPath,
          BIN,
          'add',
          'user',
          '--userarn',
          `arn:aws:iam::555555555555:user/${name}`,
          '--username',
          name,
          '--kubeconfig',
          kubeconfig,
        ],
        { env, cwd: ROOT },
      )
      try {
        await terminal.waitFor(/should we continue\? \[y\/N\]:$/m)
        await terminal.type(answer, { enter: true })
        const code = await terminal.exitCode()
        return { code, screen: await terminal.screen() }
      } finally {
        await terminal.close()
      }
    }

    it('typing "y" and Enter at the prompt adds the entry', async () => {
      const { code, screen } = await addOnTerminal('tty-yes', 'y')
      expect(code).toBe(0)
      expect(screen).toContain('should we continue? [y/N]: y\nupdated configmap:')
      expect(data().mapUsers).toContain('user/tty-yes')
    })

    it('typing "n" and Enter cancels and writes nothing', async () => {
      const rv = kube.resourceVersion
      const { code, screen } = await addOnTerminal('tty-no', 'n')
      expect(code).toBe(0)
      expect(screen).toContain(
        'should we continue? [y/N]: n\ncancelled "user arn:aws:iam::555555555555:user/tty-no as tty-no groups=[]"',
      )
      expect(kube.resourceVersion).toBe(rv)
    })
  })
})
