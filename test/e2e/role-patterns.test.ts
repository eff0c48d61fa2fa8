// Role patterns end to end: the real webhook (TLS, STS over real sockets to the SigV4-verifying
// stand-in, the MountedFile chain) maps sessions of role/dev-alice and role/dev-bob through the
// pattern role/dev-*, with a template username, whichever tool made the token: `kube-iam-auth token`
// with the session's keys or with -r (AssumeRole through the stand-in), `aws eks get-token`, and
// kubectl running the plugin against the kube-apiserver stand-in. Roles the pattern does not cover,
// and the same role name in another account, are definitive denials.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, runCli, runProcess, tempDir, tool } from '../support/cli.js'
import { execKubeconfig, startFakeApiserver, tokenExec, type FakeApiserver } from '../support/fake-apiserver.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const AWS_CLI = tool('aws')
const KUBECTL = tool('kubectl')
const CLUSTER = 'patterns-cluster'
const A = '111122223333'
const B = '444455556666'

/** Temporary keys of a session of role/dev-alice, as `aws sts assume-role` hands them out. */
const DEV_ALICE: FakeStsPrincipal = {
  accessKeyId: 'ASIAPATTERNSALICE001',
  secretAccessKey: 'patterns/alice+SECRET/0123456789abcdefghij',
  sessionToken: 'IQoJb3JpZ2luX2Vj+patterns/alice+session/token+0123456789==',
  arn: `arn:aws:sts::${A}:assumed-role/dev-alice/alice`,
  account: A,
  userId: 'AROAPATTERNSDEVALICE:alice',
}
/** The same role name in another account: never matched by a pattern of account A. */
const OTHER_ACCOUNT: FakeStsPrincipal = {
  accessKeyId: 'ASIAPATTERNSOTHER001',
  secretAccessKey: 'patterns/other+SECRET/0123456789abcdefghij',
  sessionToken: 'IQoJb3JpZ2luX2Vj+patterns/other+session/token+0123456789==',
  arn: `arn:aws:sts::${B}:assumed-role/dev-alice/eve`,
  account: B,
  userId: 'AROAPATTERNSOTHERDEV:eve',
}
const PROD: FakeStsPrincipal = {
  accessKeyId: 'ASIAPATTERNSPROD0001',
  secretAccessKey: 'patterns/prod+SECRET/0123456789abcdefghijk',
  sessionToken: 'IQoJb3JpZ2luX2Vj+patterns/prod+session/token+0123456789==',
  arn: `arn:aws:sts::${A}:assumed-role/prod-alice/alice`,
  account: A,
  userId: 'AROAPATTERNSPRODALIC:alice',
}
/** An IAM user allowed to assume role/dev-bob (for -r). */
const CI_USER: FakeStsPrincipal = {
  accessKeyId: 'AKIAPATTERNSCIUSER01',
  secretAccessKey: 'patterns/ci+SECRET/0123456789abcdefghijklm',
  arn: `arn:aws:iam::${A}:user/ci`,
  account: A,
  userId: 'AIDAPATTERNSCIUSER01',
}
const DEV_BOB_ROLE = `arn:aws:iam::${A}:role/team/dev-bob`

const MAPPINGS = {
  mapRoles: [
    {
      rolearn: `arn:aws:iam::${A}:role/dev-*`,
      username: 'dev:{{SessionName}}',
      groups: ['developers', 'acct-{{AccountID}}'],
    },
    { rolearn: `arn:aws:iam::${A}:role/dev-lead`, username: 'lead:{{SessionName}}', groups: ['leads'] },
  ],
}

describe('role patterns through the real webhook', () => {
  let sts: FakeSts
  let srv: TestServer
  const dir = tempDir('kia-e2e-patterns-')

  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({
      principals: [DEV_ALICE, OTHER_ACCOUNT, PROD, CI_USER],
      roles: [{ roleArn: DEV_BOB_ROLE, roleId: 'AROAPATTERNSDEVBOB01' }],
    })
    srv = await startTestServer({ stsUrl: sts.url, clusterId: CLUSTER, server: MAPPINGS })
  }, 120_000)
  afterAll(async () => {
    await srv?.close()
    await sts?.close()
  })

  const keys = (p: FakeStsPrincipal, extra: Record<string, string> = {}) =>
    cliEnv(dir, {
      AWS_ACCESS_KEY_ID: p.accessKeyId,
      AWS_SECRET_ACCESS_KEY: p.secretAccessKey,
      AWS_SESSION_TOKEN: p.sessionToken,
      AWS_REGION: 'us-east-1',
      ...extra,
    })
  const ourToken = async (p: FakeStsPrincipal, args: string[] = [], extra: Record<string, string> = {}) => {
    const r = await runCli(['token', '-i', CLUSTER, '--token-only', ...args], {
      env: keys(p, extra),
      timeoutMs: 30_000,
    })
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
    return r.stdout.trim()
  }
  const review = async (token: string) => {
    const res = await srv.review(token)
    expect(res.status).toBe(200)
    return res.json().status as { authenticated: boolean; user?: { username: string; groups: string[] } }
  }
  const metric = async (line: string) =>
    (await srv.get('/metrics')).body
      .split('\n')
      .find((l) => l.startsWith(line))
      ?.slice(line.length + 1)

  it('a token from `kube-iam-auth token` for a session of role/dev-alice is mapped by role/dev-*', async () => {
    const status = await review(await ourToken(DEV_ALICE))
    expect(status).toMatchObject({
      authenticated: true,
      user: { username: 'dev:alice', groups: ['developers', `acct-${A}`] },
    })
    const audit = srv.logs.filter((l) => l.audit === true && l.decision === 'allow').at(-1)
    expect(audit).toMatchObject({ source: 'MountedFile', rule: 'mapRoles[0]', username: 'dev:alice' })
    expect(Number(await metric('kube_iam_auth_reviews_total{decision="allow",reason="role-pattern"}'))).toBeGreaterThan(
      0,
    )
  })

  it('`kube-iam-auth token -r` (AssumeRole of role/team/dev-bob through the stand-in): the path-less session matches too', async () => {
    const token = await ourToken(CI_USER, ['-r', DEV_BOB_ROLE, '-s', 'bob'], { AWS_ENDPOINT_URL_STS: sts.url })
    expect(sts.lastAssumeRole).toEqual({ roleArn: DEV_BOB_ROLE, sessionName: 'bob' })
    expect(await review(token)).toMatchObject({ authenticated: true, user: { username: 'dev:bob' } })
  })

  it.skipIf(AWS_CLI.missing)(
    `a token from \`aws eks get-token\` is mapped the same way${AWS_CLI.skipNote}`,
    async () => {
      const r = await runProcess('aws', ['eks', 'get-token', '--cluster-name', CLUSTER, '--output', 'json'], {
        env: { ...keys(DEV_ALICE), AWS_PAGER: '' },
        timeoutMs: 30_000,
      })
      expect(r.code).toBe(0)
      const token = (JSON.parse(r.stdout) as { status: { token: string } }).status.token
      expect(await review(token)).toMatchObject({
        authenticated: true,
        user: { username: 'dev:alice', groups: ['developers', `acct-${A}`] },
      })
    },
  )

  it('a role the pattern does not cover, and role/dev-alice of another account, are definitive denials (200)', async () => {
    for (const who of [PROD, OTHER_ACCOUNT]) {
      expect(await review(await ourToken(who)), who.arn).toEqual({ authenticated: false, user: {} })
      const audit = srv.logs.filter((l) => l.audit === true).at(-1)
      expect(audit).toMatchObject({ decision: 'deny', arn: who.arn })
    }
  })

  describe.skipIf(KUBECTL.missing)(`kubectl auth whoami with the exec plugin${KUBECTL.skipNote}`, () => {
    let apiserver: FakeApiserver
    beforeAll(async () => {
      apiserver = await startFakeApiserver({ webhookKubeconfig: srv.config.generateKubeconfig })
    })
    afterAll(async () => {
      await apiserver?.close()
    })

    it('prints the username the pattern rendered', async () => {
      const file = join(dir, 'kubeconfig')
      writeFileSync(file, execKubeconfig(apiserver, tokenExec(['-i', CLUSTER], DEV_ALICE, { region: 'us-east-1' })))
      const r = await runProcess('kubectl', ['auth', 'whoami', '-o', 'json', '--kubeconfig', file], {
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        timeoutMs: 30_000,
      })
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
      expect(JSON.parse(r.stdout).status.userInfo).toMatchObject({
        username: 'dev:alice',
        groups: ['developers', `acct-${A}`],
        extra: { arn: [DEV_ALICE.arn], canonicalArn: [`arn:aws:iam::${A}:role/dev-alice`] },
      })
    }, 60_000)
  })
})
