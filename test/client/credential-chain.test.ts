// The chain in-process, where time can be measured without process start-up: every remote step is
// bounded, and the MFA code provider refuses to ask when kubectl says there is no terminal.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { metadataLimits, resolveCredentials, type ChainInput } from '../../src/client/credential-chain.js'
import { assumeRole } from '../../src/client/assume-role.js'
import { mfaCodeProvider } from '../../src/client/mfa-prompt.js'
import { CredentialsError } from '../../src/shared/errors.js'
import { tempDir } from '../support/cli.js'
import { writeAged } from '../support/client-creds.js'
import { startFakeImds, type FakeMetadata } from '../support/fake-metadata.js'
import { startFakeSso, writeSsoTokenCache, type FakeSso } from '../support/fake-sso.js'
import { startFakeSts, type FakeSts } from '../support/fake-sts.js'

let home: string
let sts: FakeSts
beforeAll(async () => {
  sts = await startFakeSts({ roles: [{ roleArn: 'arn:aws:iam::111122223333:role/r', roleId: 'AROACHAINTEST0000001' }] })
})
afterAll(async () => {
  await sts.close()
})
beforeEach(() => {
  home = tempDir('kia-chain-')
  // The SDK reads process.env itself: the environment is stubbed there and passed as env too.
  const env: Record<string, string | undefined> = {
    HOME: home,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_REGION: 'us-west-2',
    AWS_CONFIG_FILE: join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: undefined,
    AWS_METADATA_SERVICE_TIMEOUT: undefined,
    AWS_METADATA_SERVICE_NUM_ATTEMPTS: undefined,
    AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    AWS_ROLE_ARN: undefined,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
    AWS_ENDPOINT_URL: undefined,
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_ENDPOINT_URL_SSO: undefined,
    HTTPS_PROXY: '',
    https_proxy: '',
    HTTP_PROXY: '',
    http_proxy: '',
  }
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v)
})
afterEach(() => {
  vi.unstubAllEnvs()
  rmSync(home, { recursive: true, force: true })
})

const input = (over: Partial<ChainInput> = {}): ChainInput => ({
  env: process.env,
  prompt: async () => {
    throw new Error('no prompt expected')
  },
  processTimeoutMs: 60_000,
  now: () => new Date(),
  ...over,
})

/** How long `p` takes to settle, and its error. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error: Error }> {
  const started = performance.now()
  try {
    await p
  } catch (err) {
    return { ms: performance.now() - started, error: err as Error }
  }
  throw new Error('expected a failure')
}

describe('instance metadata is bounded', () => {
  let imds: FakeMetadata
  beforeAll(async () => {
    imds = await startFakeImds({
      sts,
      identity: { roleArn: 'arn:aws:iam::111122223333:role/node', sessionName: 'i-1' },
    })
    imds.setFault('hang')
  })
  afterAll(async () => {
    await imds.close()
  })
  beforeEach(() => {
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', undefined)
    vi.stubEnv('AWS_EC2_METADATA_SERVICE_ENDPOINT', imds.url)
  })

  it('0.5 s per request, one attempt: about a second for the token request and the IMDSv1 fallback', () => {
    expect(metadataLimits({})).toEqual({ timeout: 500, maxRetries: 0 })
  })

  it('a metadata service that never answers costs about a second, never 20', async () => {
    const { ms, error } = await timed(resolveCredentials(input()))
    expect(error).toBeInstanceOf(CredentialsError)
    expect(error.message).toMatch(new RegExp(`instance metadata \\(${imds.url}\\): .*Timeout`))
    expect(ms).toBeGreaterThanOrEqual(900)
    expect(ms).toBeLessThan(2_500)
  })

  it('AWS_METADATA_SERVICE_TIMEOUT and AWS_METADATA_SERVICE_NUM_ATTEMPTS change it, as for botocore', async () => {
    vi.stubEnv('AWS_METADATA_SERVICE_TIMEOUT', '0.2')
    vi.stubEnv('AWS_METADATA_SERVICE_NUM_ATTEMPTS', '2')
    expect(metadataLimits(process.env)).toEqual({ timeout: 200, maxRetries: 1 })
    const { ms } = await timed(resolveCredentials(input()))
    // token request 0.2 s, then two IMDSv1 attempts of 0.2 s
    expect(ms).toBeGreaterThanOrEqual(550)
    expect(ms).toBeLessThan(2_000)
  })

  it.each([
    [{ AWS_METADATA_SERVICE_TIMEOUT: 'soon' }, { timeout: 500, maxRetries: 0 }],
    [{ AWS_METADATA_SERVICE_TIMEOUT: '0' }, { timeout: 500, maxRetries: 0 }],
    [{ AWS_METADATA_SERVICE_TIMEOUT: '3600' }, { timeout: 500, maxRetries: 0 }],
    [{ AWS_METADATA_SERVICE_NUM_ATTEMPTS: '0' }, { timeout: 500, maxRetries: 0 }],
    [{ AWS_METADATA_SERVICE_NUM_ATTEMPTS: '1.5' }, { timeout: 500, maxRetries: 0 }],
  ])('nonsense in %j keeps the defaults', (env, limits) => {
    expect(metadataLimits(env)).toEqual(limits)
  })
})

describe('the SDK’s own STS and SSO calls are bounded', () => {
  let sso: FakeSso
  beforeAll(async () => {
    sso = await startFakeSso({ sts })
    sso.addSession('t', { user: 'u', assignments: [{ accountId: '111122223333', roleName: 'Dev' }] })
  })
  afterAll(async () => {
    await sso.close()
  })

  it('an SSO portal and an STS that never answer: errors naming the profile and the role, after two attempts of 5 s', async () => {
    sso.setFault('hang')
    sts.setFault('hang')
    try {
      vi.stubEnv('AWS_ENDPOINT_URL_SSO', sso.url)
      vi.stubEnv('AWS_PROFILE', 'dev')
      vi.stubEnv(
        'AWS_CONFIG_FILE',
        writeAged(
          join(home, 'config'),
          '[profile dev]\nsso_session = s\nsso_account_id = 111122223333\nsso_role_name = Dev\n' +
            '[sso-session s]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-west-2\n',
        ),
      )
      writeSsoTokenCache(home, 's', {
        accessToken: 't',
        expiresAt: new Date(Date.now() + 3_600_000),
        startUrl: 'https://x.awsapps.com/start',
        region: 'us-west-2',
      })
      const base = { accessKeyId: 'AKIAX', secretAccessKey: 's' }
      const [viaSso, viaRole] = await Promise.all([
        timed(resolveCredentials(input())),
        timed(assumeRole(base, { roleArn: 'arn:aws:iam::111122223333:role/r', region: 'us-west-2', now: new Date() })),
      ])
      expect(viaSso.error.message).toBe('profile "dev" (IAM Identity Center (SSO)): no answer within 5 s')
      expect(viaRole.error.message).toBe('could not assume role arn:aws:iam::111122223333:role/r: no answer within 5 s')
      for (const { ms } of [viaSso, viaRole]) {
        expect(ms).toBeGreaterThanOrEqual(9_000)
        expect(ms).toBeLessThan(20_000)
      }
    } finally {
      sso.setFault('none')
      sts.setFault('none')
    }
  }, 40_000)
})

describe('the MFA code provider', () => {
  const ask = (answer: string) => async () => answer

  it('kubectl says there is no terminal: no prompt, and the fix', async () => {
    let asked = false
    const provider = mfaCodeProvider(
      'admin',
      { KUBERNETES_EXEC_INFO: JSON.stringify({ spec: { interactive: false } }) },
      async () => {
        asked = true
        return '123456'
      },
    )
    await expect(provider('arn:aws:iam::1:mfa/me')).rejects.toThrow(
      'profile "admin" needs an MFA code for arn:aws:iam::1:mfa/me, but kubectl started this plugin without a terminal: ' +
        "set interactiveMode: IfAvailable in the kubeconfig's exec section and run kubectl in a terminal",
    )
    expect(asked).toBe(false)
  })

  it.each([[JSON.stringify({ spec: { interactive: true } })], [undefined], ['not json']])(
    'with KUBERNETES_EXEC_INFO %j it asks',
    async (info) => {
      const provider = mfaCodeProvider(
        'admin',
        info === undefined ? {} : { KUBERNETES_EXEC_INFO: info },
        ask(' 123456 '),
      )
      await expect(provider('s')).resolves.toBe('123456')
    },
  )

  it.each([
    ['', 'profile "admin": no MFA code was entered for s'],
    ['12345', 'profile "admin": what was entered is not an MFA code (six digits) for s'],
    ['abcdef', 'profile "admin": what was entered is not an MFA code (six digits) for s'],
  ])('%j is refused before STS is asked', async (typed, message) => {
    await expect(mfaCodeProvider('admin', {}, ask(typed))('s')).rejects.toThrow(new CredentialsError(message))
  })
})
