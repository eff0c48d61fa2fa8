import { execFileSync, spawn } from 'node:child_process'
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { CacheError } from '../../src/shared/errors.js'
import { cachedToken } from '../../src/client/fast-path.js'
import { getToken, type TokenDeps } from '../../src/client/get-token.js'
import {
  CACHE_FORMAT_VERSION,
  CREDENTIALS_REUSE_MARGIN_MS,
  TOKEN_REUSE_MARGIN_MS,
  cacheDirectory,
  cacheFile,
  cacheKeyString,
  readCacheEntry,
  usableCredentials,
  usableToken,
  type CacheEntry,
  type CacheKey,
} from '../../src/client/token-cache.js'
import { ensurePrivateDirectory, writeCacheEntry } from '../../src/client/token-cache-write.js'
import { createStsTransport } from '../../src/sts/transport.js'
import { verifyToken } from '../../src/sts/verify.js'
import { decodeTokenUrl, tempDir } from '../support/cli.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const KEY: CacheKey = {
  clusterId: 'cache-cluster',
  profile: 'default',
  roleArn: '',
  region: 'us-west-2',
  externalId: '',
  sessionName: '',
  forwardSessionName: false,
  environment: '0123456789abcdef',
  fips: false,
  dualStack: false,
}
const KEY_STRING = cacheKeyString(KEY)
const NOW = Date.parse('2030-01-01T00:00:00Z')

const entry = (over: Partial<CacheEntry> = {}): CacheEntry => ({
  key: KEY_STRING,
  deps: [['/nonexistent/aws/config', 'absent']],
  source: 'environment variables AWS_ACCESS_KEY_ID',
  signingAccessKeyId: 'AKIACACHETEST0000001',
  token: { value: 'k8s-aws-v1.cached', expiresAt: NOW + 14 * 60_000 },
  ...over,
})

const mode = (path: string) => statSync(path).mode & 0o777

function cacheErrorOf(fn: () => unknown): CacheError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(CacheError)
    expect((err as CacheError).code).toBe('ERR_CACHE')
    return err as CacheError
  }
  throw new Error('expected a CacheError')
}

let root: string
beforeEach(() => {
  root = tempDir('kia-cache-')
})
afterEach(() => {
  rmSync(root, { recursive: true, force: true })
})

describe('cache location and names', () => {
  it('KUBE_IAM_AUTH_CACHE_DIR wins, else $HOME/.kube/cache/kube-iam-auth', () => {
    expect(cacheDirectory({ KUBE_IAM_AUTH_CACHE_DIR: '/x/y', HOME: '/home/u' })).toBe('/x/y')
    expect(cacheDirectory({ HOME: '/home/u' })).toBe('/home/u/.kube/cache/kube-iam-auth')
  })

  it('one file per key, named token-<16 hex>.json', () => {
    const a = cacheFile('/d', KEY)
    expect(a).toMatch(/^\/d\/token-[0-9a-f]{16}\.json$/)
    expect(cacheFile('/d', { ...KEY })).toBe(a)
    for (const change of [
      { clusterId: 'other' },
      { roleArn: 'arn:aws:iam::1:role/r' },
      { region: 'eu-west-1' },
      { environment: 'fedcba9876543210' },
      { sessionName: 's' },
      { fips: true },
    ] satisfies Partial<CacheKey>[]) {
      expect(cacheFile('/d', { ...KEY, ...change })).not.toBe(a)
    }
  })
})

describe('cache files', () => {
  it('creates the directory 0700 and the file 0600, even with umask 000', () => {
    const dir = join(root, 'a', 'b', 'cache')
    const file = join(dir, 'token-x.json')
    const old = process.umask(0)
    try {
      writeCacheEntry(file, entry())
    } finally {
      process.umask(old)
    }
    expect(mode(dir)).toBe(0o700)
    expect(mode(file)).toBe(0o600)
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: CACHE_FORMAT_VERSION, ...entry() })
    expect(readdirSync(dir)).toEqual(['token-x.json'])
  })

  it('reads back what it wrote, credentials included', () => {
    const file = join(root, 'c', 'token-x.json')
    const credentials = { accessKeyId: 'ASIAX', secretAccessKey: 's', sessionToken: 't', expiration: NOW + 3_600_000 }
    writeCacheEntry(file, entry({ credentials }))
    expect(readCacheEntry(file, KEY_STRING)).toEqual({ ...entry(), credentials })
  })

  it.each([
    ['a missing file', undefined],
    ['an empty file', ''],
    ['garbage', '{"v":1,"key":'],
    [
      'the previous format (version 1)',
      JSON.stringify({ v: 1, key: KEY_STRING, token: { value: 't', expiresAt: NOW + 1e6 } }),
    ],
    ['a future format version', JSON.stringify({ ...entry(), v: 3 })],
    ['an entry without its dependencies', JSON.stringify({ ...entry(), v: 2, deps: undefined })],
    ['an entry with a malformed dependency', JSON.stringify({ ...entry(), v: 2, deps: [['/x']] })],
    ['an entry without its signing key', JSON.stringify({ ...entry(), v: 2, signingAccessKeyId: undefined })],
    ['no version', JSON.stringify({ key: KEY_STRING, token: { value: 't', expiresAt: NOW + 1e6 } })],
    [
      'an entry written for another key',
      JSON.stringify({ ...entry(), v: CACHE_FORMAT_VERSION, key: cacheKeyString({ ...KEY, clusterId: 'x' }) }),
    ],
  ])('%s is a miss', (_name, content) => {
    const dir = join(root, 'c')
    ensurePrivateDirectory(dir)
    const file = join(dir, 'token-x.json')
    if (content !== undefined) writeFileSync(file, content, { mode: 0o600 })
    expect(readCacheEntry(file, KEY_STRING)).toBeUndefined()
  })

  it('an entry for another key forced into the same file name is a miss for this key', () => {
    const dir = join(root, 'c')
    const file = cacheFile(dir, KEY)
    const other = cacheKeyString({ ...KEY, environment: 'fedcba9876543210' })
    writeCacheEntry(file, entry({ key: other, token: { value: 'k8s-aws-v1.not-yours', expiresAt: NOW + 14 * 60_000 } }))
    expect(readCacheEntry(file, KEY_STRING)).toBeUndefined()
    expect(readCacheEntry(file, other)?.token?.value).toBe('k8s-aws-v1.not-yours')
  })

  it('malformed token or credential fields are dropped, not trusted', () => {
    const dir = join(root, 'c')
    ensurePrivateDirectory(dir)
    const file = join(dir, 'token-x.json')
    writeFileSync(
      file,
      JSON.stringify({
        ...entry(),
        v: CACHE_FORMAT_VERSION,
        token: { value: 1, expiresAt: 'soon' },
        credentials: { accessKeyId: 'A' },
      }),
      { mode: 0o600 },
    )
    expect(readCacheEntry(file, KEY_STRING)).toEqual({ ...entry(), token: undefined, credentials: undefined })
  })

  it.each([0o640, 0o604, 0o660, 0o644, 0o606])('a file with mode %o is refused: "is not private"', (m) => {
    const dir = join(root, 'c')
    const file = join(dir, 'token-x.json')
    writeCacheEntry(file, entry())
    chmodSync(file, m)
    expect(cacheErrorOf(() => readCacheEntry(file, KEY_STRING)).message).toBe(
      `cache file ${file} is not private (mode ${m.toString(8)}); run: chmod 600 ${file}`,
    )
  })

  it.each([0o750, 0o705, 0o755, 0o770, 0o777])('a directory with mode %o is refused: "is not private"', (m) => {
    const dir = join(root, 'c')
    mkdirSync(dir)
    chmodSync(dir, m)
    const message = `cache directory ${dir} is not private (mode ${m.toString(8)}); run: chmod 700 ${dir}`
    expect(cacheErrorOf(() => ensurePrivateDirectory(dir)).message).toBe(message)
    expect(cacheErrorOf(() => writeCacheEntry(join(dir, 'token-x.json'), entry())).message).toBe(message)
    expect(readdirSync(dir)).toEqual([])
    expect(mode(dir)).toBe(m)
  })

  it('a symlinked file is refused, and a write replaces the link without touching its target', () => {
    const dir = join(root, 'c')
    ensurePrivateDirectory(dir)
    const target = join(root, 'elsewhere.json')
    writeFileSync(target, JSON.stringify({ v: CACHE_FORMAT_VERSION, ...entry() }), { mode: 0o600 })
    const file = join(dir, 'token-x.json')
    symlinkSync(target, file)
    expect(cacheErrorOf(() => readCacheEntry(file, KEY_STRING)).message).toBe(
      `cache file ${file} is not a regular file`,
    )

    const before = readFileSync(target, 'utf8')
    writeCacheEntry(file, entry({ token: { value: 'k8s-aws-v1.new', expiresAt: NOW + 1e6 } }))
    expect(readFileSync(target, 'utf8')).toBe(before)
    expect(lstatSync(file).isFile()).toBe(true)
    expect(readCacheEntry(file, KEY_STRING)?.token?.value).toBe('k8s-aws-v1.new')
  })

  it('a symlinked directory is refused', () => {
    const real = join(root, 'real')
    mkdirSync(real, { mode: 0o700 })
    const dir = join(root, 'link')
    symlinkSync(real, dir)
    expect(cacheErrorOf(() => ensurePrivateDirectory(dir)).message).toBe(
      `cache directory ${dir} is not a regular directory`,
    )
  })

  it('a FIFO where the file should be is refused without opening it (it would wait for a writer)', () => {
    const dir = join(root, 'c')
    ensurePrivateDirectory(dir)
    const file = join(dir, 'token-x.json')
    execFileSync('mkfifo', ['-m', '600', file])
    expect(cacheErrorOf(() => readCacheEntry(file, KEY_STRING)).message).toBe(
      `cache file ${file} is not a regular file`,
    )
  })

  it('a file far larger than any entry is a miss, not read', () => {
    const dir = join(root, 'c')
    ensurePrivateDirectory(dir)
    const file = join(dir, 'token-x.json')
    writeFileSync(file, JSON.stringify({ v: CACHE_FORMAT_VERSION, ...entry(), pad: 'x'.repeat(300_000) }), {
      mode: 0o600,
    })
    expect(readCacheEntry(file, KEY_STRING)).toBeUndefined()
  })

  it('a directory where the file should be is refused', () => {
    const dir = join(root, 'c')
    const file = join(dir, 'token-x.json')
    mkdirSync(file, { recursive: true, mode: 0o700 })
    expect(cacheErrorOf(() => readCacheEntry(file, KEY_STRING)).message).toBe(
      `cache file ${file} is not a regular file`,
    )
  })

  it('leaves no temporary files behind', () => {
    const dir = join(root, 'c')
    const file = join(dir, 'token-x.json')
    for (let i = 0; i < 20; i++) writeCacheEntry(file, entry({ token: { value: `t${i}`, expiresAt: NOW + i } }))
    expect(readdirSync(dir)).toEqual(['token-x.json'])
    expect(readCacheEntry(file, KEY_STRING)?.token).toEqual({ value: 't19', expiresAt: NOW + 19 })
  })
})

describe('reuse windows', () => {
  it(`a token is reused only while more than ${TOKEN_REUSE_MARGIN_MS / 1000} s remain`, () => {
    expect(TOKEN_REUSE_MARGIN_MS).toBe(60_000)
    const at = (left: number) => usableToken(entry({ token: { value: 'v', expiresAt: NOW + left } }), NOW)
    expect(at(14 * 60_000)).toEqual({ value: 'v', expiresAt: new Date(NOW + 14 * 60_000) })
    expect(at(60_001)?.value).toBe('v')
    expect(at(60_000)).toBeUndefined()
    expect(at(1)).toBeUndefined()
    expect(at(-1)).toBeUndefined()
    expect(usableToken(undefined, NOW)).toBeUndefined()
    expect(usableToken(entry({ token: undefined }), NOW)).toBeUndefined()
  })

  it(`credentials are reused only while more than ${CREDENTIALS_REUSE_MARGIN_MS / 60_000} min remain`, () => {
    expect(CREDENTIALS_REUSE_MARGIN_MS).toBe(5 * 60_000)
    const creds = (left: number) => ({
      accessKeyId: 'A',
      secretAccessKey: 'S',
      sessionToken: 'T',
      expiration: NOW + left,
    })
    const at = (left: number) => usableCredentials(entry({ credentials: creds(left) }), NOW)
    expect(at(60 * 60_000)).toEqual(creds(60 * 60_000))
    expect(at(5 * 60_000 + 1)).toEqual(creds(5 * 60_000 + 1))
    expect(at(5 * 60_000)).toBeUndefined()
    expect(at(60_000)).toBeUndefined()
    expect(usableCredentials(undefined, NOW)).toBeUndefined()
  })
})

// A reader in another process polls the file while this process rewrites it with entries of very
// different sizes; every read must be one complete entry (temp file + rename), never a torn one.
const READER = `
const fs = require('node:fs')
const [file, stop] = process.argv.slice(1)
let reads = 0, missing = 0, torn = 0, sample = ''
process.stdout.write('ready\\n')
const deadline = Date.now() + 10000
while (!fs.existsSync(stop) && Date.now() < deadline) {
  let text
  try { text = fs.readFileSync(file, 'utf8') } catch (e) { if (e.code === 'ENOENT') { missing++; continue } throw e }
  reads++
  try {
    const j = JSON.parse(text)
    if (j.v !== 2 || j.token.value.length !== j.token.expiresAt) throw new Error('inconsistent')
  } catch (e) { torn++; if (!sample) sample = text.length + ' bytes: ' + e.message }
}
process.stdout.write(JSON.stringify({ reads, missing, torn, sample }) + '\\n')
`

describe('atomic writes', () => {
  it('concurrent readers never see a partial file', async () => {
    const dir = join(root, 'c')
    const file = join(dir, 'token-x.json')
    const stop = join(root, 'stop')
    const readers = Array.from({ length: 3 }, () =>
      spawn(process.execPath, ['-e', READER, file, stop], { stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    const outputs = readers.map(
      (child) =>
        new Promise<string>((resolve) => {
          let out = ''
          const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
          child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
          child.on('close', () => {
            clearTimeout(kill)
            resolve(out)
          })
        }),
    )
    await Promise.all(
      readers.map(
        (child) =>
          new Promise<void>((resolve) => {
            const onData = (s: Buffer) => {
              if (s.toString().includes('ready')) {
                child.stdout.off('data', onData)
                resolve()
              }
            }
            child.stdout.on('data', onData)
          }),
      ),
    )
    let writes = 0
    const until = Date.now() + 700
    while (Date.now() < until || writes < 20) {
      const size = [10, 200_000, 3, 90_000, 400_000][writes % 5]!
      writeCacheEntry(file, entry({ token: { value: 'x'.repeat(size), expiresAt: size } }))
      writes++
      if (writes >= 2_000) break
      await new Promise((r) => setImmediate(r))
    }
    writeFileSync(stop, '')
    const results = (await Promise.all(outputs)).map(
      (o) =>
        JSON.parse(o.trim().split('\n').at(-1)!) as {
          reads: number
          missing: number
          torn: number
          sample: string
        },
    )
    expect(results.map((r) => r.sample)).toEqual(['', '', ''])
    expect(results.map((r) => r.torn)).toEqual([0, 0, 0])
    expect(results.reduce((n, r) => n + r.reads, 0)).toBeGreaterThan(20)
    expect(readdirSync(dir)).toEqual(['token-x.json'])
  })
})

// ------------------------------------------------------------------------------------------------
// getToken end to end. The SDK reads process.env itself, so the environment is stubbed there and
// the same object is passed as deps.env.

const BASE: FakeStsPrincipal = {
  accessKeyId: 'AKIACACHEBASE0000001',
  secretAccessKey: 'cache/base+SECRET/do-not-write-to-disk-0001',
  arn: 'arn:aws:iam::111122223333:user/cache-base',
  account: '111122223333',
  userId: 'AIDACACHEBASE0000001',
}
const ROLE_ARN = 'arn:aws:iam::444455556666:role/team/Deployer'
const ROLE_ID = 'AROACACHEDEPLOYER001'
const CLUSTER = 'cache-e2e'

describe('getToken with the cache', () => {
  let fake: FakeSts
  let transport: ReturnType<typeof createStsTransport>
  let home: string
  let cacheDir: string

  beforeAll(async () => {
    fake = await startFakeSts({ principals: [BASE], roles: [{ roleArn: ROLE_ARN, roleId: ROLE_ID }] })
  })
  afterAll(async () => {
    await fake.close()
  })
  beforeEach(() => {
    home = tempDir('kia-cache-home-')
    cacheDir = join(home, 'cache')
    const env: Record<string, string | undefined> = {
      HOME: home,
      KUBE_IAM_AUTH_CACHE_DIR: cacheDir,
      AWS_ACCESS_KEY_ID: BASE.accessKeyId,
      AWS_SECRET_ACCESS_KEY: BASE.secretAccessKey,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_DEFAULT_PROFILE: undefined,
      AWS_REGION: 'us-west-2',
      AWS_DEFAULT_REGION: undefined,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(home, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
      AWS_ENDPOINT_URL: undefined,
      AWS_ENDPOINT_URL_STS: fake.url,
      AWS_USE_FIPS_ENDPOINT: undefined,
      AWS_USE_DUALSTACK_ENDPOINT: undefined,
      DEFAULT_ROLE: undefined,
      HTTPS_PROXY: '',
      https_proxy: '',
      HTTP_PROXY: '',
      http_proxy: '',
    }
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v)
    transport = createStsTransport()
    fake.resetCalls()
  })
  afterEach(async () => {
    vi.unstubAllEnvs()
    await transport.close()
    rmSync(home, { recursive: true, force: true })
  })

  const depsAt = (clock: { t: number }, warnings: string[] = []): TokenDeps => ({
    env: process.env,
    now: () => new Date(clock.t),
    prompt: async () => {
      throw new Error('no prompt expected')
    },
    warn: (m) => warnings.push(m),
  })

  /** Every byte written under the cache directory. */
  const cacheBytes = () =>
    readdirSync(cacheDir)
      .map((f) => readFileSync(join(cacheDir, f), 'utf8'))
      .join('\n')

  it('static keys: the token is cached, the keys are not', async () => {
    const clock = { t: Date.now() }
    const warnings: string[] = []
    const first = await getToken({ clusterId: CLUSTER, cache: true }, depsAt(clock, warnings))
    expect(first.fromCache).toBe(false)
    clock.t += 60_000
    const second = await getToken({ clusterId: CLUSTER, cache: true }, depsAt(clock, warnings))
    expect(second).toEqual({ token: first.token, expiresAt: first.expiresAt, fromCache: true })
    expect(
      cachedToken({ clusterId: CLUSTER, cache: true }, process.env, new Date(clock.t), (m) => warnings.push(m)),
    ).toEqual(second)
    expect(warnings).toEqual([])

    const files = readdirSync(cacheDir)
    expect(files).toHaveLength(1)
    expect(mode(cacheDir)).toBe(0o700)
    expect(mode(join(cacheDir, files[0]!))).toBe(0o600)
    const stored = JSON.parse(cacheBytes()) as Record<string, unknown>
    expect(Object.keys(stored).sort()).toEqual(['deps', 'key', 'signingAccessKeyId', 'source', 'token', 'v'])
    expect(stored.signingAccessKeyId).toBe(BASE.accessKeyId)
    expect(stored.source).toBe('environment variables AWS_ACCESS_KEY_ID')
    // the shared files the chain would read, in the state they had before it ran (absent here)
    expect(stored.deps).toEqual([
      [join(home, 'no-config'), 'absent'],
      [join(home, 'no-credentials'), 'absent'],
    ])
    expect(cacheBytes()).not.toContain(BASE.secretAccessKey)
    expect(decodeTokenUrl(first.token)).toContain(`X-Amz-Credential=${BASE.accessKeyId}%2F`)
  })

  it('other static keys do not get the cached token of the first ones', async () => {
    const clock = { t: Date.now() }
    const first = await getToken({ clusterId: CLUSTER, cache: true }, depsAt(clock))
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIACACHEOTHER000001')
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'other/secret')
    const second = await getToken({ clusterId: CLUSTER, cache: true }, depsAt(clock))
    expect(second.fromCache).toBe(false)
    expect(second.token).not.toBe(first.token)
    expect(decodeTokenUrl(second.token)).toContain('X-Amz-Credential=AKIACACHEOTHER000001%2F')
    expect(readdirSync(cacheDir)).toHaveLength(2)
  })

  it('-r: AssumeRole once, token reused, re-signed from cached credentials, AssumeRole again near their expiry', async () => {
    const t0 = Date.now()
    const clock = { t: t0 }
    const warnings: string[] = []
    const req = { clusterId: CLUSTER, roleArn: ROLE_ARN, cache: true }

    // 1. nothing cached: AssumeRole, sign
    const first = await getToken(req, depsAt(clock, warnings))
    expect(first.fromCache).toBe(false)
    expect(fake.calls.assumeRole).toBe(1)
    expect(fake.lastAssumeRole).toEqual({ roleArn: ROLE_ARN, sessionName: `kube-iam-auth-${t0}` })
    expect(first.expiresAt.getTime()).toBe(t0 + 14 * 60_000)
    const firstUrl = decodeTokenUrl(first.token)
    const assumedKey = /X-Amz-Credential=(ASIA[A-Z0-9]{16})%2F/.exec(firstUrl)?.[1]
    expect(assumedKey).toBeDefined()
    expect(firstUrl).toContain('X-Amz-Security-Token=')

    // The cache holds the temporary credentials, never the long-term ones.
    const stored = JSON.parse(cacheBytes()) as {
      credentials: { accessKeyId: string; sessionToken: string; expiration: number }
    }
    expect(stored.credentials.accessKeyId).toBe(assumedKey)
    expect(stored.credentials.sessionToken).toMatch(/^IQoJb3JpZ2luX2Vj/)
    const credsExpire = stored.credentials.expiration
    expect(credsExpire).toBeGreaterThan(t0 + 59 * 60_000)
    expect(cacheBytes()).not.toContain(BASE.secretAccessKey)

    // 2. within the token's life: served from the cache, no STS call at all
    clock.t = t0 + 60_000
    const second = await getToken(req, depsAt(clock, warnings))
    expect(second).toEqual({ token: first.token, expiresAt: first.expiresAt, fromCache: true })
    expect(fake.calls.total).toBe(1)

    // 3. token within a minute of expiry: a new token from the cached credentials, no AssumeRole
    clock.t = t0 + 13 * 60_000 + 1_000
    const third = await getToken(req, depsAt(clock, warnings))
    expect(third.fromCache).toBe(false)
    expect(third.token).not.toBe(first.token)
    expect(fake.calls.total).toBe(1)
    expect(decodeTokenUrl(third.token)).toContain(`X-Amz-Credential=${assumedKey}%2F`)
    // ...and STS accepts it: the cached session token is the real one.
    const id = await verifyToken(
      third.token,
      { clusterId: CLUSTER, stsEndpoint: fake.url },
      { now: () => new Date(clock.t), sts: transport.send },
    )
    expect(id).toMatchObject({
      arn: `arn:aws:sts::444455556666:assumed-role/Deployer/kube-iam-auth-${t0}`,
      canonicalArn: 'arn:aws:iam::444455556666:role/Deployer',
      userId: ROLE_ID,
      sessionName: `kube-iam-auth-${t0}`,
      accessKeyId: assumedKey,
    })

    // 4. credentials within five minutes of expiry (and the token expired): AssumeRole again
    clock.t = credsExpire - 5 * 60_000 + 1_000
    const fourth = await getToken(req, depsAt(clock, warnings))
    expect(fourth.fromCache).toBe(false)
    expect(fake.calls.assumeRole).toBe(2)
    expect(fake.lastAssumeRole?.sessionName).toBe(`kube-iam-auth-${clock.t}`)
    const newKey = /X-Amz-Credential=(ASIA[A-Z0-9]{16})%2F/.exec(decodeTokenUrl(fourth.token))?.[1]
    expect(newKey).toBeDefined()
    expect(newKey).not.toBe(assumedKey)

    expect(warnings).toEqual([])
    expect(cacheBytes()).not.toContain(BASE.secretAccessKey)
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([])
  })

  it('a non-private cache directory: warned about, token made without the cache', async () => {
    mkdirSync(cacheDir, { mode: 0o755 })
    chmodSync(cacheDir, 0o755)
    const warnings: string[] = []
    const issued = await getToken({ clusterId: CLUSTER, cache: true }, depsAt({ t: Date.now() }, warnings))
    expect(issued.fromCache).toBe(false)
    expect(warnings).toEqual([
      `unable to use cache: cache directory ${cacheDir} is not private (mode 755); run: chmod 700 ${cacheDir}`,
    ])
    expect(readdirSync(cacheDir)).toEqual([])
  })
})
