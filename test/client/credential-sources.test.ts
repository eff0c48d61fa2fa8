// Every credential source users have, end to end through the built `kube-iam-auth token`, against
// local stand-ins that check what they receive: the STS stand-in (SigV4, AssumeRole with MFA,
// AssumeRoleWithWebIdentity), an IAM Identity Center portal, a container credentials endpoint and
// IMDSv2. Each token must verify against the STS stand-in as the expected identity, and its
// expirationTimestamp must never outlive the credentials that signed it.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, runCli, tempDir, type ChildEnv } from '../support/cli.js'
import { execCredential, signingKeyOf, tokenIdentity, writeAged } from '../support/client-creds.js'
import { startFakeContainerCredentials, startFakeImds, type FakeMetadata } from '../support/fake-metadata.js'
import { ssoRoleName, startFakeSso, writeSsoTokenCache, type FakeSso } from '../support/fake-sso.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const CLUSTER = 'sources-cluster'
const BOB: FakeStsPrincipal = {
  accessKeyId: 'AKIASOURCESBOB000001',
  secretAccessKey: 'sources/bob+SECRET/0123456789abcdefghij',
  arn: 'arn:aws:iam::111122223333:user/bob',
  account: '111122223333',
  userId: 'AIDASOURCESBOB000001',
}
const WEB_ROLE = 'arn:aws:iam::111122223333:role/ci-deployer'
const WEB_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9yZy9hcHAifQ.c2lnbmF0dXJl'
/** Temporary credentials in this file live 10 minutes: the token (14 minutes) must end with them. */
const LIFETIME_S = 600

describe('credential sources through `kube-iam-auth token`', () => {
  let sts: FakeSts
  let home: string
  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({
      principals: [BOB],
      roles: [{ roleArn: WEB_ROLE, roleId: 'AROASOURCESCIDEPLOY1', webIdentityTokens: [WEB_TOKEN] }],
      assumeRoleDurationSeconds: LIFETIME_S,
    })
  }, 120_000)
  afterAll(async () => {
    await sts?.close()
  })
  beforeEach(() => {
    home = tempDir('kia-sources-')
  })
  afterEach(() => {
    rmSync(home, { recursive: true, force: true })
  })

  /** A clean environment (no metadata service, no keys) plus `extra`. */
  const env = (extra: ChildEnv = {}) => cliEnv(home, { AWS_ENDPOINT_URL_STS: sts.url, ...extra })
  const token = (extra: ChildEnv, args: string[] = []) =>
    runCli(['token', '-i', CLUSTER, ...args], { env: env(extra), timeoutMs: 20_000 })

  /** Runs `token`, checks it succeeded quietly, and returns who the token verifies as and its expiry. */
  async function signedAs(extra: ChildEnv, args: string[] = []) {
    const before = Date.now()
    const r = await token(extra, args)
    expect({ code: r.code, stderr: r.stderr, timedOut: r.timedOut }).toEqual({ code: 0, stderr: '', timedOut: false })
    const out = execCredential(r.stdout)
    const identity = await tokenIdentity(sts, out.token, CLUSTER)
    const signer = sts.lookup(signingKeyOf(out.token))!
    // kubectl is told to come back no later than the signing credentials expire, nor after 14 minutes
    expect(out.expiresAt).toBeLessThanOrEqual(
      Math.min(signer.expiresAt?.getTime() ?? Infinity, Date.now() + 14 * 60_000),
    )
    expect(out.expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 60_000)
    return { identity, out, signer }
  }

  /** The credentials expire in LIFETIME_S: the ExecCredential says exactly that second. */
  const endsWithCredentials = (out: { expiresAt: number }, signer: FakeStsPrincipal) =>
    expect(out.expiresAt).toBe(Math.floor(signer.expiresAt!.getTime() / 1000) * 1000)

  it('a profile with access keys in the shared credentials file', async () => {
    const credentials = writeAged(
      join(home, '.aws', 'credentials'),
      `[dev]\naws_access_key_id = ${BOB.accessKeyId}\naws_secret_access_key = ${BOB.secretAccessKey}\n`,
    )
    const { identity, out } = await signedAs({ AWS_PROFILE: 'dev', AWS_SHARED_CREDENTIALS_FILE: credentials })
    expect(identity.arn).toBe(BOB.arn)
    // long-term keys: the token's own 14 minutes
    expect(out.expiresAt).toBeGreaterThan(Date.now() + 13 * 60_000)
  })

  it('temporary keys in the environment with AWS_CREDENTIAL_EXPIRATION: the token ends with them', async () => {
    const p = sts.mintSession({
      arn: 'arn:aws:sts::111122223333:assumed-role/exported/vault',
      account: '111122223333',
      userId: 'AROAEXPORTED00000001:vault',
      expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + 8 * 60_000),
    })
    const { identity, out, signer } = await signedAs({
      AWS_ACCESS_KEY_ID: p.accessKeyId,
      AWS_SECRET_ACCESS_KEY: p.secretAccessKey,
      AWS_SESSION_TOKEN: p.sessionToken,
      AWS_CREDENTIAL_EXPIRATION: p.expiresAt!.toISOString(),
    })
    expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/exported/vault')
    endsWithCredentials(out, signer)
  })

  it('-r on top of a profile: the role session, ending with the assumed credentials', async () => {
    sts.addRole({ roleArn: 'arn:aws:iam::111122223333:role/admin', roleId: 'AROASOURCESADMIN0001' })
    const credentials = writeAged(
      join(home, '.aws', 'credentials'),
      `[dev]\naws_access_key_id = ${BOB.accessKeyId}\naws_secret_access_key = ${BOB.secretAccessKey}\n`,
    )
    const { identity, out, signer } = await signedAs({ AWS_PROFILE: 'dev', AWS_SHARED_CREDENTIALS_FILE: credentials }, [
      '-r',
      'arn:aws:iam::111122223333:role/admin',
      '-s',
      'bob-admin',
    ])
    expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/admin/bob-admin')
    endsWithCredentials(out, signer)
  })

  describe('web identity (EKS IRSA, GitHub Actions): AssumeRoleWithWebIdentity', () => {
    it('from AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN', async () => {
      const file = writeAged(join(home, 'web-identity-token'), WEB_TOKEN)
      const { identity, out, signer } = await signedAs({
        AWS_WEB_IDENTITY_TOKEN_FILE: file,
        AWS_ROLE_ARN: WEB_ROLE,
        AWS_ROLE_SESSION_NAME: 'gha-run-42',
      })
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/ci-deployer/gha-run-42')
      expect(sts.webIdentityCalls).toBeGreaterThanOrEqual(1)
      endsWithCredentials(out, signer)
    })

    it('from a profile with web_identity_token_file', async () => {
      const file = writeAged(join(home, 'token'), WEB_TOKEN)
      const config = writeAged(
        join(home, '.aws', 'config'),
        `[profile ci]\nrole_arn = ${WEB_ROLE}\nweb_identity_token_file = ${file}\nrole_session_name = from-profile\n`,
      )
      const { identity } = await signedAs({ AWS_PROFILE: 'ci', AWS_CONFIG_FILE: config })
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/ci-deployer/from-profile')
    })

    it('a token the role does not trust: the source and STS answer in one line', async () => {
      const file = writeAged(join(home, 'web-identity-token'), 'not-a-trusted-token')
      const r = await token({ AWS_WEB_IDENTITY_TOKEN_FILE: file, AWS_ROLE_ARN: WEB_ROLE })
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toMatch(
        new RegExp(
          `^could not get token: web identity \\(AWS_ROLE_ARN ${WEB_ROLE}\\): InvalidIdentityTokenException: The web identity token that was passed could not be validated by AWS\\.\\n$`,
        ),
      )
    })

    it('a token file that does not exist is named', async () => {
      const r = await token({ AWS_WEB_IDENTITY_TOKEN_FILE: join(home, 'gone'), AWS_ROLE_ARN: WEB_ROLE })
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(
        `could not get token: web identity (AWS_ROLE_ARN ${WEB_ROLE}): ${join(home, 'gone')} does not exist\n`,
      )
    })
  })

  describe('IAM Identity Center (SSO)', () => {
    let sso: FakeSso
    beforeAll(async () => {
      sso = await startFakeSso({ sts, credentialLifetimeSeconds: LIFETIME_S })
      sso.addSession('sso-access-token-carol', {
        user: 'carol@example.com',
        assignments: [{ accountId: '444455556666', roleName: 'PlatformAdmin' }],
      })
    })
    afterAll(async () => {
      await sso?.close()
    })
    const ssoConfig = () =>
      writeAged(
        join(home, '.aws', 'config'),
        [
          '[profile admin]',
          'sso_session = corp',
          'sso_account_id = 444455556666',
          'sso_role_name = PlatformAdmin',
          'region = eu-west-1',
          '[profile legacy]',
          'sso_start_url = https://corp.awsapps.com/start',
          'sso_region = eu-west-1',
          'sso_account_id = 444455556666',
          'sso_role_name = PlatformAdmin',
          '[sso-session corp]',
          'sso_start_url = https://corp.awsapps.com/start',
          'sso_region = eu-west-1',
          'sso_registration_scopes = sso:account:access',
          '',
        ].join('\n'),
      )
    const login = (id: string, expiresInMs: number) =>
      writeSsoTokenCache(home, id, {
        accessToken: 'sso-access-token-carol',
        expiresAt: new Date(Date.now() + expiresInMs),
        startUrl: 'https://corp.awsapps.com/start',
        region: 'eu-west-1',
      })

    it('an sso-session profile, with the token `aws sso login` left', async () => {
      const config = ssoConfig()
      login('corp', 3_600_000)
      const calls = sso.calls
      const { identity, out, signer } = await signedAs({
        AWS_PROFILE: 'admin',
        AWS_CONFIG_FILE: config,
        AWS_ENDPOINT_URL_SSO: sso.url,
      })
      expect(identity.arn).toBe(
        `arn:aws:sts::444455556666:assumed-role/${ssoRoleName('PlatformAdmin')}/carol@example.com`,
      )
      expect(identity.canonicalArn).toBe(`arn:aws:iam::444455556666:role/${ssoRoleName('PlatformAdmin')}`)
      expect(sso.calls).toBe(calls + 1)
      endsWithCredentials(out, signer)
    })

    it('a legacy SSO profile (sso_start_url in the profile)', async () => {
      const config = ssoConfig()
      login('https://corp.awsapps.com/start', 3_600_000)
      const { identity } = await signedAs({
        AWS_PROFILE: 'legacy',
        AWS_CONFIG_FILE: config,
        AWS_ENDPOINT_URL_SSO: sso.url,
      })
      expect(identity.arn).toMatch(/assumed-role\/AWSReservedSSO_PlatformAdmin_\w+\/carol@example\.com$/)
    })

    it.each([
      ['expired', -60_000],
      ['never started', undefined],
    ])('an SSO session that has %s: "run: aws sso login --profile admin"', async (_name, expiresIn) => {
      const config = ssoConfig()
      if (expiresIn !== undefined) login('corp', expiresIn)
      const calls = sso.calls
      const r = await token({ AWS_PROFILE: 'admin', AWS_CONFIG_FILE: config, AWS_ENDPOINT_URL_SSO: sso.url })
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toBe(
        'could not get token: profile "admin" (IAM Identity Center (SSO)): the IAM Identity Center session has ' +
          'expired or was never started; run: aws sso login --profile admin\n',
      )
      expect(sso.calls).toBe(calls)
    })

    it('a session the portal no longer knows (signed out elsewhere): the same advice', async () => {
      const config = ssoConfig()
      writeSsoTokenCache(home, 'corp', {
        accessToken: 'revoked-token',
        expiresAt: new Date(Date.now() + 3_600_000),
        startUrl: 'https://corp.awsapps.com/start',
        region: 'eu-west-1',
      })
      const r = await token({ AWS_PROFILE: 'admin', AWS_CONFIG_FILE: config, AWS_ENDPOINT_URL_SSO: sso.url })
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(
        /the IAM Identity Center session has expired or was never started; run: aws sso login --profile admin\n$/,
      )
    })
  })

  describe('credential_process', () => {
    /** A credential_process that prints credentials minted for `arn` (valid LIFETIME_S). */
    function processPrinting(arn: string): string {
      const p = sts.mintSession({
        arn,
        account: '111122223333',
        userId: 'AROAPROCESS000000001:proc',
        expiresAt: new Date(Math.floor(Date.now() / 1000) * 1000 + LIFETIME_S * 1000),
      })
      const json = JSON.stringify({
        Version: 1,
        AccessKeyId: p.accessKeyId,
        SecretAccessKey: p.secretAccessKey,
        SessionToken: p.sessionToken,
        Expiration: p.expiresAt!.toISOString(),
      })
      return writeAged(join(home, 'creds.json'), json)
    }
    const processProfile = (command: string) =>
      writeAged(join(home, '.aws', 'config'), `[profile tool]\ncredential_process = ${command}\n`)

    it('prints credentials: the token is theirs and ends with them', async () => {
      const file = processPrinting('arn:aws:sts::111122223333:assumed-role/vault-issued/proc')
      const config = processProfile(`cat ${file}`)
      const { identity, out, signer } = await signedAs({ AWS_PROFILE: 'tool', AWS_CONFIG_FILE: config })
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/vault-issued/proc')
      endsWithCredentials(out, signer)
    })

    it('hangs: stopped after --process-credential-timeout, with one line that says so', async () => {
      const config = processProfile('sleep 30')
      const started = Date.now()
      const r = await token({ AWS_PROFILE: 'tool', AWS_CONFIG_FILE: config }, ['--process-credential-timeout', '1s'])
      const elapsed = Date.now() - started
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toBe(
        'could not get token: profile "tool" (credential_process): credential_process did not finish within 1s ' +
          'and was stopped (raise --process-credential-timeout if it needs longer)\n',
      )
      // one second of waiting, plus a busy machine's process start-up; never the 30 s of the command
      expect(elapsed).toBeGreaterThanOrEqual(1_000)
      expect(elapsed).toBeLessThan(10_000)
    })

    it.each([
      [
        'prints garbage',
        'echo hello',
        'printed something that is not JSON (expected {"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...})',
      ],
      [
        'prints JSON without Version 1',
        `echo '{"AccessKeyId":"A","SecretAccessKey":"S"}'`,
        'printed JSON without "Version": 1',
      ],
      [
        'fails',
        `sh -c 'echo "token for alice has expired" >&2; exit 3'`,
        'exited with an error: token for alice has expired',
      ],
      [
        'prints expired credentials',
        `echo '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"2020-01-01T00:00:00Z"}'`,
        'printed credentials that have already expired',
      ],
    ])('%s: the profile and what went wrong, in one line', async (_name, command, detail) => {
      const config = processProfile(command)
      const r = await token({ AWS_PROFILE: 'tool', AWS_CONFIG_FILE: config })
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toBe(`could not get token: profile "tool" (credential_process): credential_process ${detail}\n`)
    })
  })

  describe('container credentials (ECS task roles, EKS Pod Identity)', () => {
    let endpoint: FakeMetadata
    beforeAll(async () => {
      endpoint = await startFakeContainerCredentials({
        sts,
        credentialLifetimeSeconds: LIFETIME_S,
        tokens: {
          'pod-identity-token-of-api': { roleArn: 'arn:aws:iam::111122223333:role/api', sessionName: 'eks-api-pod' },
          'ecs-task-token': { roleArn: 'arn:aws:iam::111122223333:role/task', sessionName: 'ecs-task-1' },
        },
      })
    })
    afterAll(async () => {
      await endpoint?.close()
    })

    it('EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', async () => {
      const tokenFile = writeAged(join(home, 'eks-pod-identity-token'), 'pod-identity-token-of-api')
      const { identity, out, signer } = await signedAs({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
      })
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/api/eks-api-pod')
      endsWithCredentials(out, signer)
    })

    it('AWS_CONTAINER_AUTHORIZATION_TOKEN', async () => {
      const { identity } = await signedAs({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'ecs-task-token',
      })
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/task/ecs-task-1')
    })

    it('a refused token names the endpoint', async () => {
      const r = await token({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'nope',
      })
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(new RegExp(`^could not get token: container credentials \\(${endpoint.url}\\): .+\\n$`))
    })
  })

  describe('instance metadata (IMDSv2)', () => {
    let imds: FakeMetadata
    beforeAll(async () => {
      imds = await startFakeImds({
        sts,
        credentialLifetimeSeconds: LIFETIME_S,
        identity: { roleArn: 'arn:aws:iam::111122223333:role/eks-node', sessionName: 'i-0123456789abcdef0' },
      })
    })
    afterAll(async () => {
      await imds?.close()
    })
    const imdsEnv = () => ({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url })

    it('asks for a session token first, then the role credentials with it', async () => {
      imds.setFault('none')
      const before = { ...imds.calls }
      const { identity, out, signer } = await signedAs(imdsEnv())
      expect(identity.arn).toBe('arn:aws:sts::111122223333:assumed-role/eks-node/i-0123456789abcdef0')
      expect(imds.calls.token).toBe(before.token + 1)
      expect(imds.calls.unauthorized).toBe(before.unauthorized)
      endsWithCredentials(out, signer)
    })

    it('a metadata service that does not answer costs about a second, and the message says what was tried', async () => {
      imds.setFault('hang')
      try {
        const started = Date.now()
        const r = await token(imdsEnv())
        const elapsed = Date.now() - started
        expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
        expect(r.stderr).toMatch(
          new RegExp(
            '^could not get token: no AWS credentials found: environment: AWS_ACCESS_KEY_ID is not set; ' +
              `profile "default": not in \\S+ or \\S+; instance metadata \\(${imds.url}\\): .+\\n$`,
          ),
        )
        // the token request and the IMDSv1 fallback, 0.5 s each (a start-up of a few hundred ms on top)
        expect(elapsed).toBeLessThan(6_000)
      } finally {
        imds.setFault('none')
      }
    })
  })

  describe('errors name the source and the fix', () => {
    it('AWS_PROFILE names a profile that does not exist: the profiles seen are listed', async () => {
      const config = writeAged(
        join(home, '.aws', 'config'),
        '[default]\nregion = eu-west-1\n[profile dev]\nregion = eu-west-1\n[sso-session corp]\nsso_region = eu-west-1\n',
      )
      const credentials = writeAged(
        join(home, '.aws', 'credentials'),
        '[prod]\naws_access_key_id = A\naws_secret_access_key = S\n',
      )
      const r = await token({ AWS_PROFILE: 'dve', AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials })
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toBe(
        `could not get token: profile "dve" (AWS_PROFILE) does not exist in ${config} or ${credentials}; ` +
          'profiles seen: default, dev, prod\n',
      )
    })

    it('AWS_PROFILE set and no files at all', async () => {
      const r = await token({ AWS_PROFILE: 'dve' })
      expect(r.stderr).toBe(
        `could not get token: profile "dve" (AWS_PROFILE) does not exist in ${join(home, 'no-such-aws-config')} or ` +
          `${join(home, 'no-such-aws-credentials')}; no profiles were found in either file\n`,
      )
    })

    it('nothing configured anywhere: every place that was looked at, in one line', async () => {
      const r = await token({})
      expect(r.stderr).toBe(
        'could not get token: no AWS credentials found: environment: AWS_ACCESS_KEY_ID is not set; ' +
          `profile "default": not in ${join(home, 'no-such-aws-config')} or ${join(home, 'no-such-aws-credentials')}; ` +
          'instance metadata: disabled by AWS_EC2_METADATA_DISABLED\n',
      )
    })

    it('a cache directory that cannot be used does not keep the error from naming the source', async () => {
      const file = writeAged(join(home, 'a-file'), '')
      const r = await token({ AWS_PROFILE: 'dve', KUBE_IAM_AUTH_CACHE_DIR: join(file, 'cache') }, ['--cache'])
      expect(r.code).toBe(1)
      expect(r.stderr.split('\n').filter((l) => l !== '')).toEqual([
        `unable to use cache: cannot create cache directory ${join(file, 'cache')} (mkdir ${join(file, 'cache')}: ENOTDIR)`,
        expect.stringMatching(/^could not get token: profile "dve" \(AWS_PROFILE\) does not exist/),
      ])
    })
  })
})
