// The token cache must never hand out a token signed by other credentials than the ones the same
// command would resolve without it. Each row changes one thing between two `kube-iam-auth token
// --cache` runs (the issue's list: which files the credentials come from, their content, the role
// and web identity variables, container variables, `aws sso login` as someone else, cached
// assumed-role credentials) and checks that the cached run signs as the uncached run does (or fails
// as it does), and that the entry written after the change is then reused. Every row failed before
// the cache recorded where its credentials came from.
import { renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, runCli, tempDir, type ChildEnv, type CliResult } from '../support/cli.js'
import { execCredential, signingKeyOf, tokenIdentity, writeAged } from '../support/client-creds.js'
import { startFakeContainerCredentials, startFakeImds, type FakeMetadata } from '../support/fake-metadata.js'
import { startFakeSso, writeSsoTokenCache, type FakeSso } from '../support/fake-sso.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const CLUSTER = 'identity-cluster'
const principal = (name: string, n: number): FakeStsPrincipal => ({
  accessKeyId: `AKIAIDENTITY${name.toUpperCase().padEnd(7, 'X')}${n}`,
  secretAccessKey: `identity/${name}+SECRET/0123456789abcdefghij`.slice(0, 40),
  arn: `arn:aws:iam::111122223333:user/${name}`,
  account: '111122223333',
  userId: `AIDAIDENTITY${name.toUpperCase().padEnd(7, 'X')}${n}`,
})
const ADMIN = principal('admin', 1)
const VIEWER = principal('viewer', 2)
const DEPLOY_ROLE = 'arn:aws:iam::111122223333:role/deploy'
const WEB_ROLE_A = 'arn:aws:iam::111122223333:role/web-a'
const WEB_ROLE_B = 'arn:aws:iam::111122223333:role/web-b'
const WEB_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwIn0.c2ln'

const keys = (p: FakeStsPrincipal) =>
  `[default]\naws_access_key_id = ${p.accessKeyId}\naws_secret_access_key = ${p.secretAccessKey}\n`

interface Ctx {
  readonly home: string
  readonly sts: FakeSts
  readonly sso: FakeSso
  readonly containers: readonly [FakeMetadata, FakeMetadata]
  readonly imds: readonly [FakeMetadata, FakeMetadata]
}

interface Row {
  readonly name: string
  readonly args?: string[]
  /** The environment of the first run (files written aged, as if long before). */
  setup(ctx: Ctx): ChildEnv
  /** The one change; returns the environment of the second run. */
  change(ctx: Ctx, first: ChildEnv): ChildEnv
}

const ssoLogin = (ctx: Ctx, accessToken: string) => {
  const file = writeSsoTokenCache(ctx.home, 'corp', {
    accessToken,
    expiresAt: new Date(Date.now() + 3_600_000),
    startUrl: 'https://corp.awsapps.com/start',
    region: 'eu-west-1',
  })
  const past = new Date(Date.now() - 3_600_000)
  utimesSync(file, past, past)
}

const ROWS: Row[] = [
  {
    name: 'AWS_SHARED_CREDENTIALS_FILE names another file (both with a [default] profile)',
    setup: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'admin.credentials'), keys(ADMIN)) }),
    change: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'viewer.credentials'), keys(VIEWER)) }),
  },
  {
    name: 'AWS_CONFIG_FILE names another file',
    setup: (c) => ({ AWS_CONFIG_FILE: writeAged(join(c.home, 'admin.config'), keys(ADMIN)) }),
    change: (c) => ({ AWS_CONFIG_FILE: writeAged(join(c.home, 'viewer.config'), keys(VIEWER)) }),
  },
  {
    name: 'the credentials file is edited in place (aws configure), same size, modification time put back',
    setup: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'credentials'), keys(ADMIN)) }),
    change: (_c, first) => {
      const file = first.AWS_SHARED_CREDENTIALS_FILE!
      writeFileSync(file, keys(VIEWER)) // same length: only ctime tells
      const past = new Date(Date.now() - 3_600_000)
      utimesSync(file, past, past)
      return first
    },
  },
  {
    name: 'the credentials file is replaced by another one (rename over it, as editors and tools do)',
    setup: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'credentials'), keys(ADMIN)) }),
    change: (c, first) => {
      renameSync(writeAged(join(c.home, 'credentials.new'), keys(VIEWER)), first.AWS_SHARED_CREDENTIALS_FILE!)
      return first
    },
  },
  {
    name: 'the credentials file is deleted (the uncached command fails)',
    setup: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'credentials'), keys(ADMIN)) }),
    change: (_c, first) => {
      rmSync(first.AWS_SHARED_CREDENTIALS_FILE!)
      return first
    },
  },
  {
    name: 'HOME is another user’s (their ~/.aws)',
    setup: (c) => {
      writeAged(join(c.home, 'u1', '.aws', 'credentials'), keys(ADMIN))
      return { HOME: join(c.home, 'u1'), AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_CONFIG_FILE: undefined }
    },
    change: (c) => {
      writeAged(join(c.home, 'u2', '.aws', 'credentials'), keys(VIEWER))
      return { HOME: join(c.home, 'u2'), AWS_SHARED_CREDENTIALS_FILE: undefined, AWS_CONFIG_FILE: undefined }
    },
  },
  {
    name: 'AWS_ROLE_ARN names another role (web identity)',
    setup: (c) => ({
      AWS_WEB_IDENTITY_TOKEN_FILE: writeAged(join(c.home, 'web-token'), WEB_TOKEN),
      AWS_ROLE_ARN: WEB_ROLE_A,
      AWS_ROLE_SESSION_NAME: 'app',
    }),
    change: (_c, first) => ({ ...first, AWS_ROLE_ARN: WEB_ROLE_B }),
  },
  {
    name: 'the web identity token file now holds a token the role does not trust (the uncached command fails)',
    setup: (c) => ({
      AWS_WEB_IDENTITY_TOKEN_FILE: writeAged(join(c.home, 'web-token'), WEB_TOKEN),
      AWS_ROLE_ARN: WEB_ROLE_A,
      AWS_ROLE_SESSION_NAME: 'app',
    }),
    change: (_c, first) => {
      writeAged(first.AWS_WEB_IDENTITY_TOKEN_FILE!, 'a-token-of-another-service-account')
      return first
    },
  },
  {
    name: 'AWS_WEB_IDENTITY_TOKEN_FILE names the token file of another service account',
    setup: (c) => ({
      AWS_WEB_IDENTITY_TOKEN_FILE: writeAged(join(c.home, 'web-token'), WEB_TOKEN),
      AWS_ROLE_ARN: WEB_ROLE_A,
      AWS_ROLE_SESSION_NAME: 'app',
    }),
    change: (c, first) => ({
      ...first,
      AWS_WEB_IDENTITY_TOKEN_FILE: writeAged(join(c.home, 'other-token'), 'a-token-of-another-service-account'),
    }),
  },
  {
    name: 'the container authorization token file holds another pod’s token (EKS Pod Identity)',
    setup: (c) => ({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: c.containers[0].url,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: writeAged(join(c.home, 'pod-token'), 'token-of-pod-a'),
    }),
    change: (_c, first) => {
      writeAged(first.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE!, 'token-of-pod-b')
      return first
    },
  },
  {
    name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN is another task’s',
    setup: (c) => ({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: c.containers[0].url,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'token-of-pod-a',
    }),
    change: (_c, first) => ({ ...first, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'token-of-pod-b' }),
  },
  {
    name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI names another endpoint',
    setup: (c) => ({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: c.containers[0].url,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'token-of-pod-a',
    }),
    change: (c, first) => ({ ...first, AWS_CONTAINER_CREDENTIALS_FULL_URI: c.containers[1].url }),
  },
  {
    name: 'AWS_EC2_METADATA_SERVICE_ENDPOINT names another instance metadata service',
    setup: (c) => ({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: c.imds[0].url }),
    change: (c, first) => ({ ...first, AWS_EC2_METADATA_SERVICE_ENDPOINT: c.imds[1].url }),
  },
  {
    name: '`aws sso login` as someone else (the SSO token cache file is rewritten)',
    setup: (c) => {
      ssoLogin(c, 'sso-token-of-carol')
      const config = writeAged(
        join(c.home, '.aws', 'config'),
        '[profile admin]\nsso_session = corp\nsso_account_id = 444455556666\nsso_role_name = Admin\n' +
          '[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n',
      )
      return { AWS_PROFILE: 'admin', AWS_CONFIG_FILE: config, AWS_ENDPOINT_URL_SSO: c.sso.url }
    },
    change: (c, first) => {
      ssoLogin(c, 'sso-token-of-dave')
      return first
    },
  },
  {
    name: '-r: cached assumed-role credentials, after the base credentials change to ones the role does not trust',
    args: ['-r', DEPLOY_ROLE],
    setup: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'admin.credentials'), keys(ADMIN)) }),
    change: (c) => ({ AWS_SHARED_CREDENTIALS_FILE: writeAged(join(c.home, 'viewer.credentials'), keys(VIEWER)) }),
  },
]

describe('the token cache never hands out another identity’s token', () => {
  let ctx: Ctx
  let sts: FakeSts
  const stopping: Array<{ close(): Promise<void> }> = []

  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({
      principals: [ADMIN, VIEWER],
      roles: [
        { roleArn: DEPLOY_ROLE, roleId: 'AROAIDENTITYDEPLOY01', trusted: (p) => p.accessKeyId === ADMIN.accessKeyId },
        { roleArn: WEB_ROLE_A, roleId: 'AROAIDENTITYWEBA0001', webIdentityTokens: [WEB_TOKEN] },
        { roleArn: WEB_ROLE_B, roleId: 'AROAIDENTITYWEBB0001', webIdentityTokens: [WEB_TOKEN] },
        {
          roleArn: 'arn:aws:iam::111122223333:role/other',
          roleId: 'AROAIDENTITYOTHER001',
          webIdentityTokens: ['a-token-of-another-service-account'],
        },
      ],
    })
    const sso = await startFakeSso({ sts })
    sso.addSession('sso-token-of-carol', {
      user: 'carol',
      assignments: [{ accountId: '444455556666', roleName: 'Admin' }],
    })
    sso.addSession('sso-token-of-dave', {
      user: 'dave',
      assignments: [{ accountId: '444455556666', roleName: 'Admin' }],
    })
    const tokens = {
      'token-of-pod-a': { roleArn: 'arn:aws:iam::111122223333:role/pod-a', sessionName: 'pod-a' },
      'token-of-pod-b': { roleArn: 'arn:aws:iam::111122223333:role/pod-b', sessionName: 'pod-b' },
    }
    const containers = [
      await startFakeContainerCredentials({ sts, tokens }),
      await startFakeContainerCredentials({
        sts,
        tokens: { 'token-of-pod-a': { roleArn: 'arn:aws:iam::999988887777:role/elsewhere', sessionName: 'pod-a' } },
      }),
    ] as const
    const imds = [
      await startFakeImds({ sts, identity: { roleArn: 'arn:aws:iam::111122223333:role/node-a', sessionName: 'i-a' } }),
      await startFakeImds({ sts, identity: { roleArn: 'arn:aws:iam::111122223333:role/node-b', sessionName: 'i-b' } }),
    ] as const
    stopping.push(sso, ...containers, ...imds, sts)
    ctx = { home: '', sts, sso, containers, imds }
  }, 120_000)
  afterAll(async () => {
    for (const s of stopping) await s.close()
  })
  beforeEach(() => {
    ctx = { ...ctx, home: tempDir('kia-identity-') }
  })
  afterEach(() => {
    rmSync(ctx.home, { recursive: true, force: true })
  })

  const run = (extra: ChildEnv, args: string[]) =>
    runCli(['token', '-i', CLUSTER, ...args], {
      env: cliEnv(ctx.home, {
        AWS_ENDPOINT_URL_STS: sts.url,
        KUBE_IAM_AUTH_CACHE_DIR: join(ctx.home, 'cache'),
        ...extra,
      }),
      timeoutMs: 20_000,
    })

  /** Who the run's token verifies as (ARN and signing key), or its error. */
  async function outcome(r: CliResult): Promise<{ arn: string; key: string; token: string } | { error: string }> {
    if (r.code !== 0) return { error: r.stderr }
    expect(r.stderr).toBe('')
    const { token } = execCredential(r.stdout)
    const identity = await tokenIdentity(sts, token, CLUSTER)
    return { arn: identity.arn, key: signingKeyOf(token), token }
  }
  /** ARN, and the key too for long-term keys (temporary ones are new on every uncached run). */
  const who = (o: { arn: string; key: string } | { error: string }) =>
    'error' in o ? o : { arn: o.arn, ...(o.key.startsWith('AKIA') ? { key: o.key } : {}) }

  it.each(ROWS)(
    '$name',
    async (row) => {
      const args = ['--cache', ...(row.args ?? [])]
      const first = row.setup(ctx)
      const a = await outcome(await run(first, args))
      expect('error' in a, JSON.stringify(a)).toBe(false)

      const second = row.change(ctx, first)
      const cached = await outcome(await run(second, args))
      const uncached = await outcome(await run(second, row.args ?? []))
      // the change matters: without the cache, the command signs as someone else or fails
      expect(who(uncached)).not.toEqual(who(a))
      // and the cache gives what the command gives without it
      expect(who(cached)).toEqual(who(uncached))

      // the entry written after the change is reused as long as nothing changes again
      if (!('error' in cached)) {
        const again = await outcome(await run(second, args))
        expect(again).toEqual(cached)
      }
    },
    60_000,
  )
})
