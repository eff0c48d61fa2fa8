// kubectl runs `kube-iam-auth token --cache` as its exec credential plugin with the credential
// sources of a CI job (web identity, as GitHub Actions and EKS IRSA provide it) and of a developer
// laptop (IAM Identity Center after `aws sso login`), written in the kubeconfig as users write them;
// the kube-apiserver stand-in asks the real webhook, which verifies the token against the STS
// stand-in and maps the role session. The second call is served from the token cache.
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, ensureBuilt, runProcess, tempDir, tool } from '../support/cli.js'
import { writeAged } from '../support/client-creds.js'
import { execKubeconfig, startFakeApiserver, type FakeApiserver } from '../support/fake-apiserver.js'
import { ssoRoleName, startFakeSso, writeSsoTokenCache, type FakeSso } from '../support/fake-sso.js'
import { startFakeSts, type FakeSts } from '../support/fake-sts.js'
import { startTestServer, type TestServer } from '../support/webhook.js'

const KUBECTL = tool('kubectl')
const CLUSTER = 'sources-e2e'
const CI_ROLE = 'arn:aws:iam::210987654321:role/github-deployer'
const CI_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvYXBwOnJlZjpyZWZzL2hlYWRzL21haW4ifQ.c2ln'
const SSO_ROLE = `arn:aws:iam::210987654321:role/aws-reserved/sso.amazonaws.com/eu-west-1/${ssoRoleName('Developer')}`

describe.skipIf(KUBECTL.missing)(`kubectl with web identity and SSO credentials${KUBECTL.skipNote}`, () => {
  let sts: FakeSts
  let sso: FakeSso
  let webhook: TestServer
  let apiserver: FakeApiserver
  const dir = tempDir('kia-e2e-sources-')

  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({
      roles: [{ roleArn: CI_ROLE, roleId: 'AROAE2EGITHUBDEPLOY1', webIdentityTokens: [CI_TOKEN] }],
    })
    sso = await startFakeSso({ sts })
    sso.addSession('sso-token-of-frank', {
      user: 'frank',
      assignments: [{ accountId: '210987654321', roleName: 'Developer' }],
    })
    webhook = await startTestServer({
      stsUrl: sts.url,
      clusterId: CLUSTER,
      server: {
        mapRoles: [
          { rolearn: CI_ROLE, username: 'ci:{{SessionName}}', groups: ['deployers'] },
          { rolearn: SSO_ROLE, username: 'sso:{{SessionName}}', groups: ['developers'] },
        ],
      },
    })
    apiserver = await startFakeApiserver({ webhookKubeconfig: webhook.config.generateKubeconfig })
  }, 120_000)
  afterAll(async () => {
    await apiserver?.close()
    await webhook?.close()
    await sso?.close()
    await sts?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const kubeconfig = (name: string, env: Record<string, string>) => {
    const file = join(dir, `${name}.kubeconfig`)
    const exec = {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: process.execPath,
      args: [BIN, 'token', '-i', CLUSTER, '--cache'],
      env: Object.entries({ AWS_REGION: 'eu-west-1', AWS_EC2_METADATA_DISABLED: 'true', ...env }).map(([n, value]) => ({
        name: n,
        value,
      })),
      interactiveMode: 'IfAvailable',
    }
    writeFileSync(file, execKubeconfig(apiserver, exec))
    return file
  }
  const whoami = (file: string) =>
    runProcess('kubectl', ['auth', 'whoami', '-o', 'json', '--kubeconfig', file], {
      env: { PATH: process.env.PATH ?? '', HOME: dir },
      timeoutMs: 30_000,
    })
  const userInfo = (stdout: string) =>
    (JSON.parse(stdout) as { status: { userInfo: { username: string; groups: string[] } } }).status.userInfo

  it('a CI job with a web identity token: mapped as the role session, the second call from the cache', async () => {
    const home = join(dir, 'ci')
    const file = kubeconfig('ci', {
      HOME: home,
      AWS_WEB_IDENTITY_TOKEN_FILE: writeAged(join(home, 'token'), CI_TOKEN),
      AWS_ROLE_ARN: CI_ROLE,
      AWS_ROLE_SESSION_NAME: 'run-1234',
      AWS_ENDPOINT_URL_STS: sts.url,
    })
    const first = await whoami(file)
    expect(first.stderr).toBe('')
    expect(userInfo(first.stdout)).toMatchObject({ username: 'ci:run-1234', groups: ['deployers'] })
    const calls = sts.webIdentityCalls
    const second = await whoami(file)
    expect(userInfo(second.stdout).username).toBe('ci:run-1234')
    expect(sts.webIdentityCalls).toBe(calls)
  }, 60_000)

  /** A home where `aws sso login` for profile dev left a token that expires in `expiresInMs`. */
  const afterSsoLogin = (name: string, expiresInMs: number) => {
    const home = join(dir, name)
    writeAged(
      join(home, '.aws', 'config'),
      '[profile dev]\nsso_session = corp\nsso_account_id = 210987654321\nsso_role_name = Developer\n' +
        '[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n',
    )
    writeSsoTokenCache(home, 'corp', {
      accessToken: 'sso-token-of-frank',
      expiresAt: new Date(Date.now() + expiresInMs),
      startUrl: 'https://corp.awsapps.com/start',
      region: 'eu-west-1',
    })
    return home
  }

  it('a developer after `aws sso login`: mapped as the permission set’s role session', async () => {
    const home = afterSsoLogin('dev', 3_600_000)
    const file = kubeconfig('dev', { HOME: home, AWS_PROFILE: 'dev', AWS_ENDPOINT_URL_SSO: sso.url })
    const res = await whoami(file)
    expect(res.stderr).toBe('')
    expect(userInfo(res.stdout)).toMatchObject({ username: 'sso:frank', groups: ['developers'] })
  }, 60_000)

  it('an expired SSO session: kubectl shows the plugin’s one line, which says what to run', async () => {
    const home = afterSsoLogin('expired', -60_000)
    const res = await whoami(kubeconfig('expired', { HOME: home, AWS_PROFILE: 'dev', AWS_ENDPOINT_URL_SSO: sso.url }))
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain(
      'could not get token: profile "dev" (IAM Identity Center (SSO)): the IAM Identity Center session has expired ' +
        'or was never started; run: aws sso login --profile dev',
    )
  }, 60_000)
})
