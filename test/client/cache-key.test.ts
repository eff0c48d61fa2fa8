// The pieces a cache hit is judged by: the environment fingerprint in the key, the recorded files,
// the signing key checks, the hash, and the bounded directory creation.
import { rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { credentialVariables, environmentFingerprint } from '../../src/client/credential-environment.js'
import { cacheKeyFor, currentEntry, tokenAccessKeyId } from '../../src/client/fast-path.js'
import { dependenciesUnchanged, fileState, MAX_DEPENDENCIES, recordedState } from '../../src/client/file-state.js'
import { fnv1a64 } from '../../src/client/hash.js'
import { cacheKeyString, type CacheEntry } from '../../src/client/token-cache.js'
import { ensurePrivateDirectory } from '../../src/client/token-cache-write.js'
import { CacheError } from '../../src/shared/errors.js'
import { tempDir } from '../support/cli.js'

let root: string
beforeEach(() => {
  root = tempDir('kia-key-')
})
afterEach(() => {
  rmSync(root, { recursive: true, force: true })
})

/** The reference: 64-bit FNV-1a with BigInt, byte by byte. */
function fnvReference(s: string): string {
  let h = 0xcbf29ce484222325n
  for (const byte of Buffer.from(s, 'utf8')) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return h.toString(16).padStart(16, '0')
}

describe('fnv1a64', () => {
  it('is 64-bit FNV-1a (published test vectors)', () => {
    expect(fnv1a64('')).toBe('cbf29ce484222325')
    expect(fnv1a64('a')).toBe('af63dc4c8601ec8c')
    expect(fnv1a64('foobar')).toBe('85944171f73967e8')
  })

  it('agrees with a BigInt implementation on any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => fnv1a64(s) === fnvReference(s)),
      {
        numRuns: 500,
      },
    )
  })
})

describe('the environment fingerprint', () => {
  const base = { HOME: '/home/u', AWS_REGION: 'us-west-2', PATH: '/bin', TERM: 'xterm' }

  it('takes every AWS_* variable and the home directory variables, nothing else', () => {
    expect(
      credentialVariables({ ...base, AWS_NEW_THING: 'x', USERPROFILE: 'C:\\u', KUBERNETES_EXEC_INFO: '{}' }),
    ).toEqual(['AWS_NEW_THING', 'AWS_REGION', 'HOME', 'USERPROFILE'])
  })

  it.each([
    'AWS_SHARED_CREDENTIALS_FILE',
    'AWS_CONFIG_FILE',
    'AWS_PROFILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_ROLE_ARN',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_AUTHORIZATION_TOKEN',
    'AWS_EC2_METADATA_SERVICE_ENDPOINT',
    'AWS_ENDPOINT_URL_SSO',
    'HOME',
  ])('changes when %s is set or changed', (name) => {
    const fp = environmentFingerprint(base)
    const withIt = environmentFingerprint({ ...base, [name]: 'one' })
    expect(withIt).not.toBe(fp)
    expect(environmentFingerprint({ ...base, [name]: 'two' })).not.toBe(withIt)
  })

  it('does not change for other variables, for empty ones, or for the order', () => {
    const fp = environmentFingerprint(base)
    expect(environmentFingerprint({ ...base, PATH: '/usr/bin', KUBERNETES_EXEC_INFO: '{"spec":{}}' })).toBe(fp)
    expect(environmentFingerprint({ ...base, AWS_PROFILE: '' })).toBe(fp)
    expect(environmentFingerprint({ TERM: 'x', AWS_REGION: 'us-west-2', HOME: '/home/u' })).toBe(fp)
  })

  it('never writes the values: the key holds a hash', () => {
    const key = cacheKeyString(cacheKeyFor({ clusterId: 'c' }, { ...base, AWS_SECRET_ACCESS_KEY: 'very/secret+value' }))
    expect(key).not.toContain('very/secret')
    expect(key).toMatch(/"[0-9a-f]{16}"/)
  })
})

describe('recorded files', () => {
  const aged = (path: string, content: string) => {
    writeFileSync(path, content)
    const past = new Date(Date.now() - 3_600_000)
    utimesSync(path, past, past)
    return path
  }

  it('a file is its device, inode, size and times; a missing one is "absent"', () => {
    const file = aged(join(root, 'f'), 'x')
    const st = statSync(file)
    expect(fileState(file)).toBe(`${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`)
    expect(fileState(join(root, 'missing'))).toBe('absent')
    expect(fileState(join(file, 'under-a-file'))).toBe('absent')
  })

  it('a file modified in the last two seconds is recorded as racy, which never matches', () => {
    const file = join(root, 'f')
    writeFileSync(file, 'x')
    expect(recordedState(file, Date.now())).toBe('racy')
    expect(dependenciesUnchanged([[file, 'racy']])).toBe(false)
    expect(recordedState(file, Date.now() + 2_001)).toBe(fileState(file))
  })

  it('any change is seen: content, replacement, deletion, creation, a restored modification time', () => {
    const file = aged(join(root, 'f'), 'abc')
    const deps = () => [[file, recordedState(file, Date.now())]] as const
    let d = deps()
    expect(dependenciesUnchanged(d)).toBe(true)
    writeFileSync(file, 'xyz') // same size
    const past = new Date(Date.now() - 3_600_000)
    utimesSync(file, past, past) // and the old modification time: ctime still moves
    expect(dependenciesUnchanged(d)).toBe(false)
    d = deps()
    rmSync(file)
    expect(dependenciesUnchanged(d)).toBe(false)
    d = deps()
    expect(d[0][1]).toBe('absent')
    aged(file, 'abc')
    expect(dependenciesUnchanged(d)).toBe(false)
  })

  it(`more than ${MAX_DEPENDENCIES} recorded files never match`, () => {
    const many = Array.from({ length: MAX_DEPENDENCIES + 1 }, (_, i) => [join(root, `m${i}`), 'absent'] as const)
    expect(dependenciesUnchanged(many)).toBe(false)
    expect(dependenciesUnchanged(many.slice(1))).toBe(true)
  })
})

describe('currentEntry', () => {
  const token = (akid: string) =>
    'k8s-aws-v1.' +
    Buffer.from(
      `https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256` +
        `&X-Amz-Credential=${akid}%2F20300101%2Fus-west-2%2Fsts%2Faws4_request&X-Amz-Date=20300101T000000Z`,
    ).toString('base64url')
  const env = { AWS_ACCESS_KEY_ID: 'AKIAENVKEY0000000001', AWS_SECRET_ACCESS_KEY: 's' }
  const entry = (over: Partial<CacheEntry> = {}): CacheEntry => ({
    key: 'k',
    deps: [],
    source: 'environment variables AWS_ACCESS_KEY_ID',
    signingAccessKeyId: 'AKIAENVKEY0000000001',
    token: { value: token('AKIAENVKEY0000000001'), expiresAt: Date.now() + 600_000 },
    ...over,
  })

  it('reads the access key ID out of a token', () => {
    expect(tokenAccessKeyId(token('AKIAENVKEY0000000001'))).toBe('AKIAENVKEY0000000001')
    expect(tokenAccessKeyId('garbage')).toBe('')
  })

  it('an entry whose token, credentials and recorded files agree is current', () => {
    const e = entry()
    expect(currentEntry(e, { clusterId: 'c' }, env)).toBe(e)
  })

  it('a token signed by another key than the entry records is not', () => {
    expect(currentEntry(entry({ signingAccessKeyId: 'AKIAOTHER00000000001' }), { clusterId: 'c' }, {})).toBeUndefined()
    const creds = { accessKeyId: 'ASIAOTHER', secretAccessKey: 's', expiration: Date.now() + 3_600_000 }
    expect(currentEntry(entry({ credentials: creds }), { clusterId: 'c' }, env)).toBeUndefined()
  })

  it('with keys in the environment, only a token signed by AWS_ACCESS_KEY_ID is current', () => {
    const other = { ...env, AWS_ACCESS_KEY_ID: 'AKIAENVKEY0000000002' }
    expect(currentEntry(entry(), { clusterId: 'c' }, other)).toBeUndefined()
    // AWS_PROFILE set: the chain skips the environment keys, so they say nothing about the signer
    expect(currentEntry(entry(), { clusterId: 'c' }, { ...other, AWS_PROFILE: 'p' })).toBeDefined()
    // -r: the signer is the role session
    expect(currentEntry(entry(), { clusterId: 'c', roleArn: 'arn:aws:iam::1:role/r' }, other)).toBeDefined()
  })

  it('an entry whose recorded files changed is not', () => {
    const file = join(root, 'credentials')
    expect(currentEntry(entry({ deps: [[file, 'absent']] }), { clusterId: 'c' }, env)).toBeDefined()
    writeFileSync(file, '[default]\n')
    expect(currentEntry(entry({ deps: [[file, 'absent']] }), { clusterId: 'c' }, env)).toBeUndefined()
  })
})

describe('ensurePrivateDirectory is bounded', () => {
  it('creates missing parents one level at a time, 0700', () => {
    const dir = join(root, 'a', 'b', 'c')
    ensurePrivateDirectory(dir)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(join(root, 'a')).mode & 0o777).toBe(0o700)
  })

  it('/proc/nope: a CacheError at once (recursive mkdir spins forever there)', () => {
    const started = Date.now()
    expect(() => ensurePrivateDirectory('/proc/nope/cache')).toThrow(
      new CacheError('cannot create cache directory /proc/nope/cache (mkdir /proc/nope: ENOENT)'),
    )
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('under a regular file: a CacheError', () => {
    writeFileSync(join(root, 'file'), '')
    expect(() => ensurePrivateDirectory(join(root, 'file', 'cache'))).toThrow(CacheError)
  })

  it('more than 32 missing levels are refused before anything is created', () => {
    const deep = join(root, ...Array.from({ length: 40 }, (_, i) => `d${i}`))
    expect(() => ensurePrivateDirectory(deep)).toThrow(new CacheError(`cache directory ${deep} is too deep to create`))
    expect(() => statSync(join(root, 'd0'))).toThrow()
  })
})
