import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  cliEnv,
  decodeTokenUrl,
  ensureBuilt,
  runCli,
  splitPresignedUrl,
  tempDir,
  type CliResult,
} from '../support/cli.js'
import { verifySigV4Request, type FakeStsPrincipal } from '../support/fake-sts.js'

const ALICE: FakeStsPrincipal = {
  accessKeyId: 'AKIACLITOKENALICE001',
  secretAccessKey: 'cli/token+alice/SECRET-0123456789abcdefghij',
  arn: 'arn:aws:iam::111122223333:user/alice',
  account: '111122223333',
  userId: 'AIDACLITOKENALICE001',
}
const V1 = JSON.stringify({
  kind: 'ExecCredential',
  apiVersion: 'client.authentication.k8s.io/v1',
  spec: { interactive: false },
})

/** True when the token is a valid SigV4 presign by ALICE for exactly this cluster. */
function signedFor(token: string, cluster: string): boolean {
  const { host, pathAndQuery } = splitPresignedUrl(decodeTokenUrl(token))
  const result = verifySigV4Request(
    { method: 'GET', path: pathAndQuery, headers: { host, 'x-k8s-aws-id': cluster }, body: '' },
    (akid) => (akid === ALICE.accessKeyId ? ALICE : undefined),
    new Date(),
  )
  return result.ok
}

function expectOk(r: CliResult): void {
  expect({ code: r.code, stderr: r.stderr, timedOut: r.timedOut }).toEqual({ code: 0, stderr: '', timedOut: false })
}

function expectUsageError(r: CliResult, message: string): void {
  expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
  expect(r.stderr).toBe(`Error: ${message}\nRun 'kube-iam-auth token --help' for usage.\n`)
}

interface ExecCredentialDoc {
  kind: string
  apiVersion?: string
  spec: { interactive: boolean }
  status: { expirationTimestamp: string; token: string }
}

describe('kube-iam-auth token', () => {
  let home: string
  let env: Record<string, string>

  beforeAll(async () => {
    await ensureBuilt()
  }, 120_000)
  beforeEach(() => {
    home = tempDir('kia-cli-token-')
    env = cliEnv(home, { AWS_ACCESS_KEY_ID: ALICE.accessKeyId, AWS_SECRET_ACCESS_KEY: ALICE.secretAccessKey })
  })
  afterEach(() => {
    rmSync(home, { recursive: true, force: true })
  })

  it('prints an ExecCredential with the apiVersion KUBERNETES_EXEC_INFO asks for (v1)', async () => {
    const before = Date.now()
    const r = await runCli(['token', '-i', 'cli-cluster'], { env: { ...env, KUBERNETES_EXEC_INFO: V1 } })
    const after = Date.now()
    expectOk(r)
    expect(r.stdout.endsWith('}\n')).toBe(true)
    expect(r.stdout.indexOf('\n')).toBe(r.stdout.length - 1)
    const doc = JSON.parse(r.stdout) as ExecCredentialDoc
    expect(Object.keys(doc)).toEqual(['kind', 'apiVersion', 'spec', 'status'])
    expect(doc.kind).toBe('ExecCredential')
    expect(doc.apiVersion).toBe('client.authentication.k8s.io/v1')
    expect(doc.spec).toEqual({ interactive: false })
    expect(Object.keys(doc.status)).toEqual(['expirationTimestamp', 'token'])
    expect(doc.status.expirationTimestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
    const expiry = Date.parse(doc.status.expirationTimestamp)
    expect(expiry).toBeGreaterThanOrEqual(Math.floor((before + 14 * 60_000) / 1000) * 1000)
    expect(expiry).toBeLessThanOrEqual(after + 14 * 60_000)

    const url = decodeTokenUrl(doc.status.token)
    expect(url).toMatch(
      new RegExp(
        '^https://sts\\.us-west-2\\.amazonaws\\.com/\\?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256' +
          `&X-Amz-Credential=${ALICE.accessKeyId}%2F\\d{8}%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=\\d{8}T\\d{6}Z&X-Amz-Expires=60` +
          '&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=[0-9a-f]{64}$',
      ),
    )
    expect(doc.status.token).toMatch(/^k8s-aws-v1\.[A-Za-z0-9_-]+$/)
    expect(signedFor(doc.status.token, 'cli-cluster')).toBe(true)
    expect(signedFor(doc.status.token, 'other-cluster')).toBe(false)
  })

  it('without KUBERNETES_EXEC_INFO prints v1beta1', async () => {
    const r = await runCli(['token', '-i', 'cli-cluster'], { env })
    expectOk(r)
    expect((JSON.parse(r.stdout) as ExecCredentialDoc).apiVersion).toBe('client.authentication.k8s.io/v1beta1')
  })

  it('an ExecCredential version it cannot produce is a usage error', async () => {
    const info = JSON.stringify({ kind: 'ExecCredential', apiVersion: 'client.authentication.k8s.io/v1alpha1' })
    const r = await runCli(['token', '-i', 'cli-cluster'], { env: { ...env, KUBERNETES_EXEC_INFO: info } })
    expectUsageError(
      r,
      'KUBERNETES_EXEC_INFO asks for ExecCredential apiVersion "client.authentication.k8s.io/v1alpha1"; ' +
        'supported: client.authentication.k8s.io/v1beta1, client.authentication.k8s.io/v1 (set apiVersion in the kubeconfig exec section)',
    )
  })

  it('--token-only prints the bare token and a newline', async () => {
    const r = await runCli(['token', '-i', 'cli-cluster', '--token-only'], {
      env: { ...env, KUBERNETES_EXEC_INFO: 'not json' },
    })
    expectOk(r)
    expect(r.stdout).toMatch(/^k8s-aws-v1\.[A-Za-z0-9_-]+\n$/)
    expect(signedFor(r.stdout.trim(), 'cli-cluster')).toBe(true)
  })

  it('--region aws-global signs for sts.amazonaws.com with scope us-east-1', async () => {
    const r = await runCli(['token', '-i', 'cli-cluster', '--token-only', '--region', 'aws-global'], { env })
    expectOk(r)
    const url = decodeTokenUrl(r.stdout.trim())
    expect(url.startsWith('https://sts.amazonaws.com/?')).toBe(true)
    expect(url).toMatch(/%2Fus-east-1%2Fsts%2Faws4_request/)
    expect(signedFor(r.stdout.trim(), 'cli-cluster')).toBe(true)
  })

  it('without a cluster ID: "cluster ID not specified", exit 1', async () => {
    expectUsageError(await runCli(['token'], { env }), 'cluster ID not specified')
  })

  it('--forward-session-name with --session-name is refused', async () => {
    const r = await runCli(
      ['token', '-i', 'c', '-r', 'arn:aws:iam::111122223333:role/r', '--forward-session-name', '-s', 'mine'],
      { env },
    )
    expectUsageError(r, 'cannot specify both --forward-session-name and --session-name parameter')
  })

  it('an unknown flag is a usage error', async () => {
    const r = await runCli(['token', '-i', 'c', '--bogus'], { env })
    expectUsageError(r, 'unknown flag: --bogus')
  })

  it('takes the cluster ID from KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID', async () => {
    const r = await runCli(['token', '--token-only'], {
      env: { ...env, KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: 'env-cluster' },
    })
    expectOk(r)
    expect(signedFor(r.stdout.trim(), 'env-cluster')).toBe(true)
  })

  it('-i wins over KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID', async () => {
    const r = await runCli(['token', '--token-only', '-i', 'flag-cluster'], {
      env: { ...env, KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID: 'env-cluster' },
    })
    expectOk(r)
    expect(signedFor(r.stdout.trim(), 'flag-cluster')).toBe(true)
  })

  it('-c reads clusterID (and region) from an aws-iam-authenticator config file', async () => {
    const config = join(home, 'config.yaml')
    writeFileSync(config, 'clusterID: config-cluster\nregion: eu-west-1\nserver:\n  port: 21362\n')
    const r = await runCli(['token', '-c', config, '--token-only'], { env })
    expectOk(r)
    expect(decodeTokenUrl(r.stdout.trim()).startsWith('https://sts.eu-west-1.amazonaws.com/?')).toBe(true)
    expect(signedFor(r.stdout.trim(), 'config-cluster')).toBe(true)
    // a flag still wins over the file
    const r2 = await runCli(['token', '-c', config, '--token-only', '-i', 'flag-cluster'], { env })
    expectOk(r2)
    expect(signedFor(r2.stdout.trim(), 'flag-cluster')).toBe(true)
  })

  it('global flags before the command are passed on (kube-iam-auth -i C token)', async () => {
    const r = await runCli(['-i', 'global-cluster', 'token', '--token-only'], { env })
    expectOk(r)
    expect(signedFor(r.stdout.trim(), 'global-cluster')).toBe(true)
  })

  it('usage errors after global flags still name the token command', async () => {
    const r = await runCli(['-i', 'global-cluster', 'token', '--forward-session-name', '-s', 'mine'], { env })
    expectUsageError(r, 'cannot specify both --forward-session-name and --session-name parameter')
  })

  it('no credentials anywhere: "could not get token", exit 1, nothing on stdout', async () => {
    const r = await runCli(['token', '-i', 'c'], { env: cliEnv(home), timeoutMs: 15_000 })
    expect(r).toMatchObject({ code: 1, stdout: '', timedOut: false })
    expect(r.stderr).toMatch(/^could not get token: no AWS credentials found: .+\n$/)
  })

  describe('--cache', () => {
    const cacheDir = () => join(home, '.kube', 'cache', 'kube-iam-auth')

    it('creates a private entry; a second run prints the same token', async () => {
      const first = await runCli(['token', '-i', 'cache-cluster', '--cache'], { env })
      expectOk(first)
      const files = readdirSync(cacheDir())
      expect(files).toHaveLength(1)
      expect(files[0]).toMatch(/^token-[0-9a-f]{16}\.json$/)
      expect(statSync(cacheDir()).mode & 0o777).toBe(0o700)
      expect(statSync(join(cacheDir(), files[0]!)).mode & 0o777).toBe(0o600)
      expect(readFileSync(join(cacheDir(), files[0]!), 'utf8')).not.toContain(ALICE.secretAccessKey)

      const second = await runCli(['token', '-i', 'cache-cluster', '--cache'], { env })
      expectOk(second)
      expect(second.stdout).toBe(first.stdout)
      expect(readdirSync(cacheDir())).toEqual(files)
    })

    it('KUBE_IAM_AUTH_CACHE_DIR moves the cache', async () => {
      const dir = join(home, 'elsewhere')
      const r = await runCli(['token', '-i', 'cache-cluster', '--cache'], {
        env: { ...env, KUBE_IAM_AUTH_CACHE_DIR: dir },
      })
      expectOk(r)
      expect(readdirSync(dir)).toHaveLength(1)
    })

    it('eight concurrent runs all succeed with one valid token and leave no temp or lock files', async () => {
      const runs = await Promise.all(
        Array.from({ length: 8 }, () =>
          runCli(['token', '-i', 'cache-cluster', '--cache', '--token-only'], { env, timeoutMs: 20_000 }),
        ),
      )
      for (const r of runs) expectOk(r)
      const tokens = new Set(runs.map((r) => r.stdout.trim()))
      expect(tokens.size).toBe(1)
      const [token] = tokens
      expect(signedFor(token!, 'cache-cluster')).toBe(true)
      // one entry, and perhaps Node's compile cache of a run that found the directory made
      const files = readdirSync(cacheDir()).filter((f) => f !== 'compile-cache')
      expect(files).toHaveLength(1)
      expect(files.filter((f) => f.endsWith('.tmp') || f.includes('.lock'))).toEqual([])
    })

    it("a miss that finds the private cache directory keeps Node's compile cache in it, privately", async () => {
      expectOk(await runCli(['token', '-i', 'cache-cluster', '--cache'], { env }))
      expectOk(await runCli(['token', '-i', 'other-cluster', '--cache'], { env }))
      expect(readdirSync(join(cacheDir(), 'compile-cache')).length).toBeGreaterThan(0)
      expect(statSync(cacheDir()).mode & 0o777).toBe(0o700)
      // a hit loads nothing more, so it has nothing to compile or cache
      rmSync(join(cacheDir(), 'compile-cache'), { recursive: true })
      expectOk(await runCli(['token', '-i', 'cache-cluster', '--cache'], { env }))
      expect(readdirSync(cacheDir()).sort()).toEqual(
        readdirSync(cacheDir())
          .filter((f) => f.startsWith('token-'))
          .sort(),
      )
    })

    it('a non-private cache file: "unable to use cache" on stderr, and still a token', async () => {
      expectOk(await runCli(['token', '-i', 'cache-cluster', '--cache'], { env }))
      const file = join(cacheDir(), readdirSync(cacheDir())[0]!)
      chmodSync(file, 0o644)
      const r = await runCli(['token', '-i', 'cache-cluster', '--cache', '--token-only'], { env })
      expect(r.code).toBe(0)
      expect(signedFor(r.stdout.trim(), 'cache-cluster')).toBe(true)
      const warning = `unable to use cache: cache file ${file} is not private (mode 644); run: chmod 600 ${file}`
      const lines = r.stderr.split('\n').filter((l) => l !== '')
      expect(lines.length).toBeGreaterThanOrEqual(1)
      expect(new Set(lines)).toEqual(new Set([warning]))
    })

    it('a non-private cache directory: warned about, still a token', async () => {
      expectOk(await runCli(['token', '-i', 'cache-cluster', '--cache'], { env }))
      chmodSync(cacheDir(), 0o755)
      const file = join(cacheDir(), readdirSync(cacheDir())[0]!)
      // Make the cached token unusable so the slow path, which checks the directory, runs.
      writeFileSync(file, '{}', { mode: 0o600 })
      const r = await runCli(['token', '-i', 'cache-cluster', '--cache', '--token-only'], { env })
      expect(r.code).toBe(0)
      expect(signedFor(r.stdout.trim(), 'cache-cluster')).toBe(true)
      expect(r.stderr).toBe(
        `unable to use cache: cache directory ${cacheDir()} is not private (mode 755); run: chmod 700 ${cacheDir()}\n`,
      )
    })
  })

  describe('regions, bounds and flags', () => {
    it.each([
      [['--region', 'eu-west1'], {}, 'eu-west1', '--region', 'eu-west-1'],
      [[], { AWS_REGION: 'us-est-1' }, 'us-est-1', 'AWS_REGION', 'us-east-1'],
      [
        [],
        { AWS_REGION: undefined, AWS_DEFAULT_REGION: 'ap-southeast2' },
        'ap-southeast2',
        'AWS_DEFAULT_REGION',
        'ap-southeast-2',
      ],
      [['--region', 'EU-WEST-1'], {}, 'EU-WEST-1', '--region', 'eu-west-1'],
    ])(
      'an unknown region %j %j: one warning naming the closest region, and still a token',
      async (args, extra, region, origin, closest) => {
        const r = await runCli(['token', '-i', 'c', '--token-only', ...args], {
          env: cliEnv(home, { ...env, ...extra }),
        })
        expect(r.code).toBe(0)
        expect(r.stderr).toBe(
          `warning: region "${region}" (${origin}) is not a known AWS region; did you mean "${closest}"? Signing for it anyway\n`,
        )
        expect(decodeTokenUrl(r.stdout.trim()).startsWith(`https://sts.${region}.amazonaws.com/?`)).toBe(true)
      },
    )

    it('an unknown region from the -c config file, and from the profile, are named as such', async () => {
      const config = join(home, 'config.yaml')
      writeFileSync(config, 'clusterID: c\nregion: eu-west1\n')
      const r = await runCli(['token', '-c', config, '--token-only'], { env })
      expect(r.stderr).toBe(
        `warning: region "eu-west1" (region in ${config}) is not a known AWS region; did you mean "eu-west-1"? Signing for it anyway\n`,
      )
      const awsConfig = join(home, 'aws-config')
      writeFileSync(awsConfig, '[default]\nregion = eu-wset-1\n')
      const r2 = await runCli(['token', '-i', 'c', '--token-only'], {
        env: cliEnv(home, { ...env, AWS_REGION: undefined, AWS_CONFIG_FILE: awsConfig }),
      })
      expect(r2.code).toBe(0)
      expect(r2.stderr).toBe(
        'warning: region "eu-wset-1" (profile "default") is not a known AWS region; did you mean "eu-west-1"? Signing for it anyway\n',
      )
    })

    it('known regions, pseudo-global ones included, are signed without a word', async () => {
      for (const region of ['eu-west-1', 'aws-global', 'cn-north-1', 'us-gov-west-1', 'eusc-de-east-1']) {
        const r = await runCli(['token', '-i', 'c', '--token-only', '--region', region], { env })
        expect({ region, code: r.code, stderr: r.stderr }).toEqual({ region, code: 0, stderr: '' })
      }
    })

    it('a cache directory that cannot be created (/proc/nope): one warning, a token, no hang', async () => {
      const started = Date.now()
      const r = await runCli(['token', '-i', 'c', '--cache', '--token-only'], {
        env: { ...env, KUBE_IAM_AUTH_CACHE_DIR: '/proc/nope/cache' },
        timeoutMs: 15_000,
      })
      expect({ code: r.code, timedOut: r.timedOut }).toEqual({ code: 0, timedOut: false })
      expect(r.stderr).toBe(
        'unable to use cache: cannot create cache directory /proc/nope/cache (mkdir /proc/nope: ENOENT)\n',
      )
      expect(signedFor(r.stdout.trim(), 'c')).toBe(true)
      expect(Date.now() - started).toBeLessThan(10_000)
    })

    it('--process-credential-timeout takes a duration; anything else is a usage error', async () => {
      expectOk(await runCli(['token', '-i', 'c', '--token-only', '--process-credential-timeout', '1m30s'], { env }))
      expectOk(await runCli(['token', '-i', 'c', '--token-only', '--process-credential-timeout=500ms'], { env }))
      for (const bad of ['2', 'soon', '0s', '-1s', '2h']) {
        expectUsageError(
          await runCli(['token', '-i', 'c', '--process-credential-timeout', bad], { env }),
          `invalid argument "${bad}" for "--process-credential-timeout" flag: expected a duration such as 30s, 2m or 500ms (at most 1h)`,
        )
      }
    })
  })
})
