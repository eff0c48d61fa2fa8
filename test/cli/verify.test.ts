import { rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { presignToken } from '../../src/token/presign.js'
import { cliEnv, ensureBuilt, runCli, tempDir, type CliResult } from '../support/cli.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const ALICE: FakeStsPrincipal = {
  accessKeyId: 'AKIACLIVERIFYALICE01',
  secretAccessKey: 'cli/verify+alice/SECRET-0123456789abcdefghi',
  arn: 'arn:aws:iam::111122223333:user/alice',
  account: '111122223333',
  userId: 'AIDACLIVERIFYALICE01',
}
const SESSION: FakeStsPrincipal = {
  accessKeyId: 'ASIACLIVERIFYSESS001',
  secretAccessKey: 'cli/verify+session/SECRET-0123456789abcdefg',
  sessionToken: 'IQoJb3JpZ2luX2Vj+cli/verify+session/token==',
  arn: 'arn:aws:sts::444455556666:assumed-role/Deployer/bob@example.com',
  account: '444455556666',
  userId: 'AROACLIVERIFYDEPLOY1:bob@example.com',
}
const CLUSTER = 'verify-cluster'
const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

const tokenFor = async (p: FakeStsPrincipal, opts: { cluster?: string; now?: Date; region?: string } = {}) =>
  (
    await presignToken({
      clusterId: opts.cluster ?? CLUSTER,
      region: opts.region ?? 'us-west-2',
      credentials: p,
      now: opts.now ?? new Date(),
    })
  ).token

function expectFailure(r: CliResult, stderr: string): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut }).toEqual({
    code: 1,
    stdout: '',
    stderr,
    timedOut: false,
  })
}

describe('kube-iam-auth verify', () => {
  let fake: FakeSts
  let home: string
  let env: Record<string, string>

  beforeAll(async () => {
    await ensureBuilt()
    fake = await startFakeSts({ principals: [ALICE, SESSION] })
  }, 120_000)
  afterAll(async () => {
    await fake?.close()
  })
  beforeEach(() => {
    home = tempDir('kia-cli-verify-')
    env = cliEnv(home, { KUBE_IAM_AUTH_STS_ENDPOINT: fake.url })
    fake.setFault('none')
    fake.resetCalls()
  })
  afterEach(() => {
    rmSync(home, { recursive: true, force: true })
  })

  it("-o json prints the identity with upstream's keys, 4-space indented", async () => {
    const token = await tokenFor(ALICE)
    const r = await runCli(['verify', '-t', token, '-i', CLUSTER, '-o', 'json'], { env })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(
      [
        '{',
        `    "ARN": "${ALICE.arn}",`,
        `    "CanonicalARN": "${ALICE.arn}",`,
        `    "AccountID": "${ALICE.account}",`,
        `    "UserID": "${ALICE.userId}",`,
        '    "SessionName": "",',
        `    "AccessKeyID": "${ALICE.accessKeyId}",`,
        '    "STSEndpoint": "sts.us-west-2.amazonaws.com"',
        '}',
        '',
      ].join('\n'),
    )
    expect(fake.calls.getCallerIdentity).toBe(1)
  })

  it("by default prints Go's %+v of the identity", async () => {
    const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-i', CLUSTER], { env })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(
      `&{ARN:${ALICE.arn} CanonicalARN:${ALICE.arn} AccountID:${ALICE.account} UserID:${ALICE.userId} ` +
        `SessionName: AccessKeyID:${ALICE.accessKeyId} STSEndpoint:sts.us-west-2.amazonaws.com}\n`,
    )
  })

  it('an assumed-role session: canonical role ARN, role ID and session name', async () => {
    const r = await runCli(
      ['verify', '-t', await tokenFor(SESSION, { region: 'eu-west-1' }), '-i', CLUSTER, '-o', 'json'],
      { env },
    )
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({
      ARN: SESSION.arn,
      CanonicalARN: 'arn:aws:iam::444455556666:role/Deployer',
      AccountID: '444455556666',
      UserID: 'AROACLIVERIFYDEPLOY1',
      SessionName: 'bob@example.com',
      AccessKeyID: SESSION.accessKeyId,
      STSEndpoint: 'sts.eu-west-1.amazonaws.com',
    })
  })

  it('-t - reads the token from stdin (trailing newline ignored)', async () => {
    const token = await tokenFor(ALICE)
    const r = await runCli(['verify', '-t', '-', '-i', CLUSTER, '-o', 'json'], { env, input: `${token}\n` })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).ARN).toBe(ALICE.arn)
  })

  it('takes the cluster ID from KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID', async () => {
    const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-o', 'json'], {
      env: { ...env, KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: CLUSTER },
    })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout).UserID).toBe(ALICE.userId)
  })

  it('a token for another cluster: STS answers 403, exit 1, the reason on stderr', async () => {
    const r = await runCli(['verify', '-t', await tokenFor(ALICE, { cluster: 'other-cluster' }), '-i', CLUSTER], {
      env,
    })
    expectFailure(
      r,
      'could not verify token: sts getCallerIdentity failed: error from AWS (expected 200, got 403) on us-west-2 endpoint: ' +
        `SignatureDoesNotMatch: ${BAD_SIGNATURE}\n`,
    )
    expect(fake.calls.getCallerIdentity).toBe(1)
  })

  it('a malformed token is refused locally without asking STS', async () => {
    const r = await runCli(['verify', '-t', 'k8s-aws-v2.asdfasdfa', '-i', CLUSTER], { env })
    expectFailure(
      r,
      'could not verify token: input token was not properly formatted: token is missing expected "k8s-aws-v1." prefix\n',
    )
    expect(fake.calls.total).toBe(0)
  })

  it('an expired token is refused locally', async () => {
    const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 16 * 60_000)
    const r = await runCli(['verify', '-t', await tokenFor(ALICE, { now: signedAt }), '-i', CLUSTER], { env })
    const goTime = `${signedAt.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`
    expectFailure(
      r,
      `could not verify token: input token was not properly formatted: X-Amz-Date parameter is expired (15 minute expiration) ${goTime}\n`,
    )
    expect(fake.calls.total).toBe(0)
  })

  it('STS throttling is reported as such', async () => {
    fake.setFault('throttle')
    const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-i', CLUSTER], { env })
    expectFailure(
      r,
      'could not verify token: sts getCallerIdentity was throttled: STS answered 400: Throttling: Rate exceeded on us-west-2 endpoint\n',
    )
  })

  it('--timeout bounds a hung STS', async () => {
    fake.setFault('hang')
    const started = Date.now()
    const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-i', CLUSTER, '--timeout', '300'], { env })
    expect(Date.now() - started).toBeLessThan(5_000)
    expectFailure(
      r,
      'could not verify token: sts getCallerIdentity failed: error during GET: timed out after 300 ms on us-west-2 endpoint\n',
    )
  })

  it('--timeout bounds a TLS handshake that never completes: the process exits at the deadline', async () => {
    const sockets: Array<{ destroy(): void }> = []
    const stall = createServer((s) => {
      sockets.push(s)
      s.on('error', () => {})
    })
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r))
    try {
      const port = (stall.address() as { port: number }).port
      const started = Date.now()
      const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-i', CLUSTER, '--timeout', '500'], {
        env: { ...env, KUBE_IAM_AUTH_STS_ENDPOINT: `https://127.0.0.1:${port}` },
      })
      // the whole process, start-up included; upstream's connect phase alone would take 10 s
      expect(Date.now() - started).toBeLessThan(4_000)
      expect(sockets).toHaveLength(1)
      expectFailure(
        r,
        'could not verify token: sts getCallerIdentity failed: error during GET: timed out after 500 ms on us-west-2 endpoint\n',
      )
    } finally {
      for (const s of sockets) s.destroy()
      stall.close()
    }
  })

  it('STS unreachable is reported with the network error', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer()
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const r = await runCli(['verify', '-t', await tokenFor(ALICE), '-i', CLUSTER], {
      env: { ...env, KUBE_IAM_AUTH_STS_ENDPOINT: `http://127.0.0.1:${port}` },
    })
    expectFailure(
      r,
      `could not verify token: sts getCallerIdentity failed: error during GET: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port} on us-west-2 endpoint\n`,
    )
  })

  it('global flags before the command work too (kube-iam-auth -i C verify ...)', async () => {
    const ok = await runCli(['-i', CLUSTER, 'verify', '-t', await tokenFor(ALICE), '-o', 'json'], { env })
    expect(ok.stderr).toBe('')
    expect(JSON.parse(ok.stdout).ARN).toBe(ALICE.arn)
    const bad = await runCli(['-i', CLUSTER, 'verify', '-t', 'k8s-aws-v2.x'], { env })
    expectFailure(
      bad,
      'could not verify token: input token was not properly formatted: token is missing expected "k8s-aws-v1." prefix\n',
    )
  })

  it.each([
    ['no token', ['verify', '-i', CLUSTER], 'token not specified'],
    ['an empty token', ['verify', '-t', '', '-i', CLUSTER], 'token not specified'],
    ['no cluster ID', ['verify', '-t', 'k8s-aws-v1.x'], 'cluster ID not specified'],
    [
      'an unknown output format',
      ['verify', '-t', 'k8s-aws-v1.x', '-i', CLUSTER, '-o', 'yaml'],
      'unknown output format "yaml" (only "json" is supported)',
    ],
    [
      'a bad --timeout',
      ['verify', '-t', 'k8s-aws-v1.x', '-i', CLUSTER, '--timeout', '0'],
      '--timeout must be a positive integer',
    ],
  ])('%s: usage error, exit 1', async (_name, args, message) => {
    const r = await runCli(args, { env })
    expectFailure(r, `Error: ${message}\nRun 'kube-iam-auth verify --help' for usage.\n`)
    expect(fake.calls.total).toBe(0)
  })
})
