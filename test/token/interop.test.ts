// Interop in both directions, through verifyToken with the real transport against the STS
// stand-in (which really verifies SigV4): tokens made by the AWS CLI verify with our verifier,
// and tokens made by our CLI (static keys, or after AssumeRole through the stand-in) verify too.

import { rmSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { StsRejected } from '../../src/shared/errors.js'
import { createStsTransport } from '../../src/sts/transport.js'
import { verifyToken } from '../../src/sts/verify.js'
import {
  cliEnv,
  decodeTokenUrl,
  ensureBuilt,
  tool,
  runCli,
  runProcess,
  tempDir,
  type CliResult,
} from '../support/cli.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const ALICE: FakeStsPrincipal = {
  accessKeyId: 'AKIAINTEROPALICE0001',
  secretAccessKey: 'interop/alice+SECRET/0123456789abcdefghijk',
  arn: 'arn:aws:iam::111122223333:user/alice',
  account: '111122223333',
  userId: 'AIDAINTEROPALICE0001',
}
/** Temporary credentials of an assumed-role session (session token with + / =, as real ones have). */
const BOB_SESSION: FakeStsPrincipal = {
  accessKeyId: 'ASIAINTEROPBOBSESS01',
  secretAccessKey: 'interop/bob+SECRET/0123456789abcdefghijklm',
  sessionToken: 'IQoJb3JpZ2luX2Vj+interop/bob+session/token+0123456789==',
  arn: 'arn:aws:sts::111122223333:assumed-role/Developer/bob-session',
  account: '111122223333',
  userId: 'AROAINTEROPDEVELOPER:bob-session',
}
const ROLE_ARN = 'arn:aws:iam::444455556666:role/team/Deployer'
const ROLE_ID = 'AROAINTEROPDEPLOYER1'
const CLUSTER = 'interop-cluster'
const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

const AWS_CLI = tool('aws')

describe('token interop through verifyToken and the STS stand-in', () => {
  let fake: FakeSts
  let transport: ReturnType<typeof createStsTransport>
  let home: string

  beforeAll(async () => {
    await ensureBuilt()
    fake = await startFakeSts({ principals: [ALICE, BOB_SESSION], roles: [{ roleArn: ROLE_ARN, roleId: ROLE_ID }] })
  }, 120_000)
  afterAll(async () => {
    await fake?.close()
  })
  beforeEach(() => {
    for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy']) vi.stubEnv(k, '')
    transport = createStsTransport()
    home = tempDir('kia-interop-')
    fake.resetCalls()
  })
  afterEach(async () => {
    vi.unstubAllEnvs()
    await transport.close()
    rmSync(home, { recursive: true, force: true })
  })

  const verify = (token: string, clusterId = CLUSTER) =>
    verifyToken(token, { clusterId, stsEndpoint: fake.url }, { now: () => new Date(), sts: transport.send })

  const credsEnv = (p: FakeStsPrincipal, extra: Record<string, string | undefined> = {}) =>
    cliEnv(home, {
      AWS_ACCESS_KEY_ID: p.accessKeyId,
      AWS_SECRET_ACCESS_KEY: p.secretAccessKey,
      AWS_SESSION_TOKEN: p.sessionToken,
      ...extra,
    })

  function tokenFrom(r: CliResult): string {
    expect({ code: r.code, stderr: r.stderr, timedOut: r.timedOut }).toEqual({ code: 0, stderr: '', timedOut: false })
    return r.stdout.trim()
  }

  it.skipIf(AWS_CLI.missing)(
    `(a) tokens from \`aws eks get-token\` verify; for another cluster STS rejects them${AWS_CLI.skipNote}`,
    async () => {
      const awsToken = async (p: FakeStsPrincipal) => {
        const r = await runProcess('aws', ['eks', 'get-token', '--cluster-name', CLUSTER, '--output', 'json'], {
          env: credsEnv(p, { AWS_REGION: 'us-east-1', AWS_PAGER: '' }),
          timeoutMs: 20_000,
        })
        expect({ code: r.code, timedOut: r.timedOut }).toEqual({ code: 0, timedOut: false })
        const doc = JSON.parse(r.stdout) as { kind: string; status: { token: string } }
        expect(doc.kind).toBe('ExecCredential')
        return doc.status.token
      }
      // Two invocations, in parallel: static keys, and temporary ones (X-Amz-Security-Token as botocore encodes it).
      const [staticToken, sessionToken] = await Promise.all([awsToken(ALICE), awsToken(BOB_SESSION)])
      expect(decodeTokenUrl(staticToken)).toMatch(/^https:\/\/sts(\.us-east-1)?\.amazonaws\.com\/\?/)
      expect(decodeTokenUrl(sessionToken)).toContain('X-Amz-Security-Token=')

      const host = new URL(decodeTokenUrl(staticToken)).host
      expect(await verify(staticToken)).toEqual({
        arn: ALICE.arn,
        canonicalArn: ALICE.arn,
        accountId: ALICE.account,
        userId: ALICE.userId,
        sessionName: '',
        accessKeyId: ALICE.accessKeyId,
        stsEndpoint: host,
      })
      expect(await verify(sessionToken)).toEqual({
        arn: BOB_SESSION.arn,
        canonicalArn: 'arn:aws:iam::111122223333:role/Developer',
        accountId: BOB_SESSION.account,
        userId: 'AROAINTEROPDEVELOPER',
        sessionName: 'bob-session',
        accessKeyId: BOB_SESSION.accessKeyId,
        stsEndpoint: host,
      })

      const err = await verify(staticToken, 'another-cluster').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(StsRejected)
      expect(err).toMatchObject({ status: 403, stsCode: 'SignatureDoesNotMatch' })
      expect((err as StsRejected).message).toMatch(
        /^sts getCallerIdentity failed: error from AWS \(expected 200, got 403\) on (global|us-east-1) endpoint: SignatureDoesNotMatch: /,
      )
      expect((err as StsRejected).message.endsWith(BAD_SIGNATURE)).toBe(true)
    },
  )

  it('(b) a token from `kube-iam-auth token` with env credentials verifies', async () => {
    const token = tokenFrom(await runCli(['token', '-i', CLUSTER, '--token-only'], { env: credsEnv(ALICE) }))
    expect(await verify(token)).toEqual({
      arn: ALICE.arn,
      canonicalArn: ALICE.arn,
      accountId: ALICE.account,
      userId: ALICE.userId,
      sessionName: '',
      accessKeyId: ALICE.accessKeyId,
      stsEndpoint: 'sts.us-west-2.amazonaws.com',
    })
    const err = await verify(token, 'another-cluster').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StsRejected)
    expect(err).toMatchObject({ status: 403, stsCode: 'SignatureDoesNotMatch' })
  })

  it('(b) ... and with temporary env credentials (session token in the URL)', async () => {
    const token = tokenFrom(
      await runCli(['token', '-i', CLUSTER, '--token-only', '--region', 'aws-global'], { env: credsEnv(BOB_SESSION) }),
    )
    expect(await verify(token)).toMatchObject({
      arn: BOB_SESSION.arn,
      sessionName: 'bob-session',
      accessKeyId: BOB_SESSION.accessKeyId,
      stsEndpoint: 'sts.amazonaws.com',
    })
  })

  describe("(c) -r through the stand-in's AssumeRole (AWS_ENDPOINT_URL_STS)", () => {
    const roleToken = async (args: string[], base: FakeStsPrincipal = ALICE) =>
      tokenFrom(
        await runCli(['token', '-i', CLUSTER, '--token-only', '-r', ROLE_ARN, ...args], {
          env: credsEnv(base, { AWS_ENDPOINT_URL_STS: fake.url }),
          timeoutMs: 20_000,
        }),
      )

    it('verifies as the assumed role with the default session name and an ASIA key', async () => {
      const token = await roleToken([])
      expect(fake.calls.assumeRole).toBe(1)
      const session = fake.lastAssumeRole?.sessionName
      expect(session).toMatch(/^kube-iam-auth-\d{13}$/)
      expect(fake.lastAssumeRole?.externalId).toBeUndefined()
      const id = await verify(token)
      expect(id).toEqual({
        arn: `arn:aws:sts::444455556666:assumed-role/Deployer/${session}`,
        canonicalArn: 'arn:aws:iam::444455556666:role/Deployer',
        accountId: '444455556666',
        userId: ROLE_ID,
        sessionName: session,
        accessKeyId: expect.stringMatching(/^ASIA[A-Z0-9]{16}$/),
        stsEndpoint: 'sts.us-west-2.amazonaws.com',
      })
      expect(decodeTokenUrl(token)).toContain(`X-Amz-Credential=${id.accessKeyId}%2F`)
      expect(decodeTokenUrl(token)).toContain('X-Amz-Security-Token=')
    })

    it('-s mysession sets the session name', async () => {
      const id = await verify(await roleToken(['-s', 'mysession']))
      expect(fake.lastAssumeRole).toEqual({ roleArn: ROLE_ARN, sessionName: 'mysession' })
      expect(id.sessionName).toBe('mysession')
      expect(id.arn).toBe('arn:aws:sts::444455556666:assumed-role/Deployer/mysession')
    })

    it('--forward-session-name forwards the session name of assumed-role base credentials', async () => {
      const id = await verify(await roleToken(['--forward-session-name'], BOB_SESSION))
      expect(fake.lastAssumeRole?.sessionName).toBe('bob-session')
      expect(id.sessionName).toBe('bob-session')
      expect(id.canonicalArn).toBe('arn:aws:iam::444455556666:role/Deployer')
      // one GetCallerIdentity by the CLI to learn the session name, one by the verifier
      expect(fake.calls.getCallerIdentity).toBe(2)
      expect(fake.calls.assumeRole).toBe(1)
    })

    it('-e ext is sent as ExternalId', async () => {
      const id = await verify(await roleToken(['-e', 'ext']))
      expect(fake.lastAssumeRole?.externalId).toBe('ext')
      expect(id.canonicalArn).toBe('arn:aws:iam::444455556666:role/Deployer')
    })

    it('a role the caller may not assume: "could not get token", exit 1', async () => {
      const r = await runCli(['token', '-i', CLUSTER, '-r', 'arn:aws:iam::444455556666:role/Nope'], {
        env: credsEnv(ALICE, { AWS_ENDPOINT_URL_STS: fake.url }),
        timeoutMs: 20_000,
      })
      expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
      expect(r.stderr).toBe(
        'could not get token: could not assume role arn:aws:iam::444455556666:role/Nope: AccessDenied: ' +
          `User: ${ALICE.arn} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/Nope\n`,
      )
    })
  })
})
