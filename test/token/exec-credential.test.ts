import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { UsageError } from '../../src/shared/errors.js'
import {
  EXEC_CREDENTIAL_VERSIONS,
  execCredentialVersion,
  formatExecCredential,
  rfc3339Seconds,
} from '../../src/token/exec-credential.js'

const V1BETA1 = 'client.authentication.k8s.io/v1beta1'
const V1 = 'client.authentication.k8s.io/v1'
// upstream's pkg/token/token_test.go TestFormatJson: expiry 2012-11-01T22:08:41Z, token "token"
const EXPIRY = new Date('2012-11-01T22:08:41Z')

function usageErrorOf(execInfo: string): UsageError {
  try {
    execCredentialVersion(execInfo)
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).code).toBe('ERR_USAGE')
    return err as UsageError
  }
  throw new Error(`expected a UsageError for ${execInfo}`)
}

const unsupported = (shown: string) =>
  `KUBERNETES_EXEC_INFO asks for ExecCredential apiVersion ${shown}; ` +
  `supported: ${V1BETA1}, ${V1} (set apiVersion in the kubeconfig exec section)`

describe('execCredentialVersion (KUBERNETES_EXEC_INFO)', () => {
  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['blank', '  \n'],
  ])('%s -> v1beta1', (_name, env) => {
    expect(execCredentialVersion(env)).toBe(V1BETA1)
  })

  it('a v1beta1 ExecCredential -> v1beta1', () => {
    expect(
      execCredentialVersion(
        JSON.stringify({ kind: 'ExecCredential', apiVersion: V1BETA1, spec: { interactive: false } }),
      ),
    ).toBe(V1BETA1)
  })

  it('a v1 ExecCredential -> v1', () => {
    expect(
      execCredentialVersion(JSON.stringify({ kind: 'ExecCredential', apiVersion: V1, spec: { interactive: true } })),
    ).toBe(V1)
  })

  it('what kubectl sends with provideClusterInfo (spec.cluster.config object) -> v1 (upstream falls back to v1beta1)', () => {
    const info = {
      kind: 'ExecCredential',
      apiVersion: V1,
      spec: {
        interactive: false,
        cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': 'Zm9v', config: { clusterId: 'c' } },
      },
    }
    expect(execCredentialVersion(JSON.stringify(info))).toBe(V1)
  })

  it('the only versions produced are v1beta1 and v1', () => {
    expect(EXEC_CREDENTIAL_VERSIONS).toEqual([V1BETA1, V1])
  })

  // Stricter than upstream, which echoes anything it can decode and falls back to v1beta1 otherwise.
  it('invalid JSON -> UsageError', () => {
    expect(usageErrorOf('{"apiVersion":').message).toBe('KUBERNETES_EXEC_INFO is not valid JSON')
  })

  it.each([
    [
      'v1alpha1',
      JSON.stringify({ kind: 'ExecCredential', apiVersion: 'client.authentication.k8s.io/v1alpha1' }),
      '"client.authentication.k8s.io/v1alpha1"',
    ],
    [
      'a made-up version',
      JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v2' }),
      '"client.authentication.k8s.io/v2"',
    ],
    ['missing apiVersion', JSON.stringify({ kind: 'ExecCredential', spec: {} }), 'null'],
    ['empty apiVersion', JSON.stringify({ apiVersion: '' }), '""'],
    ['a non-string apiVersion', JSON.stringify({ apiVersion: 1 }), '1'],
    ['JSON null', 'null', 'null'],
    ['a JSON array', '[]', 'null'],
    ['a JSON string', '"client.authentication.k8s.io/v1"', 'null'],
  ])('%s -> UsageError naming what was asked and what is supported', (_name, env, shown) => {
    expect(usageErrorOf(env).message).toBe(unsupported(shown))
  })
})

describe('formatExecCredential', () => {
  it("prints upstream's v1beta1 document byte for byte, one line and a newline", () => {
    expect(formatExecCredential(V1BETA1, 'token', EXPIRY)).toBe(
      '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false},' +
        '"status":{"expirationTimestamp":"2012-11-01T22:08:41Z","token":"token"}}\n',
    )
  })

  it('v1 changes only the apiVersion; the body stays v1beta1-shaped', () => {
    expect(formatExecCredential(V1, 'token', EXPIRY)).toBe(
      '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false},' +
        '"status":{"expirationTimestamp":"2012-11-01T22:08:41Z","token":"token"}}\n',
    )
  })

  it.each([
    ['env unset', undefined, V1BETA1],
    ['env empty', '', V1BETA1],
    [
      'env v1beta1',
      JSON.stringify({ kind: 'ExecCredential', apiVersion: V1BETA1, spec: { interactive: false } }),
      V1BETA1,
    ],
    ['env v1', JSON.stringify({ kind: 'ExecCredential', apiVersion: V1, spec: { interactive: false } }), V1],
  ])('round trip with %s (upstream FormatJSON cases)', (_name, env, apiVersion) => {
    const token = 'k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9uPUdldENhbGxlcklkZW50aXR5'
    const out = formatExecCredential(execCredentialVersion(env), token, EXPIRY)
    expect(out.endsWith('\n')).toBe(true)
    expect(out.slice(0, -1)).not.toContain('\n')
    const doc = JSON.parse(out) as Record<string, unknown>
    expect(Object.keys(doc)).toEqual(['kind', 'apiVersion', 'spec', 'status'])
    expect(doc).toEqual({
      kind: 'ExecCredential',
      apiVersion,
      spec: { interactive: false },
      status: { expirationTimestamp: '2012-11-01T22:08:41Z', token },
    })
    expect(Object.keys(doc.status as object)).toEqual(['expirationTimestamp', 'token'])
  })

  it('the expiry is written at second precision, truncated (never later than the real expiry)', () => {
    const out = formatExecCredential(V1BETA1, 't', new Date('2012-11-01T22:08:41.999Z'))
    expect(JSON.parse(out).status.expirationTimestamp).toBe('2012-11-01T22:08:41Z')
  })
})

describe('rfc3339Seconds', () => {
  it.each([
    ['2012-11-01T22:08:41.000Z', '2012-11-01T22:08:41Z'],
    ['2012-11-01T22:08:41.999Z', '2012-11-01T22:08:41Z'],
    ['1970-01-01T00:00:00.000Z', '1970-01-01T00:00:00Z'],
    ['2023-04-28T00:14:00.000Z', '2023-04-28T00:14:00Z'],
    ['2024-02-29T23:59:59.500Z', '2024-02-29T23:59:59Z'],
  ])('%s -> %s', (iso, expected) => {
    expect(rfc3339Seconds(new Date(iso))).toBe(expected)
  })

  it('agrees with toISOString to the second for every instant of years 1000 to 9999', () => {
    const instants = fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) })
    fc.assert(
      fc.property(instants, (t) => rfc3339Seconds(new Date(t)) === `${new Date(t).toISOString().slice(0, 19)}Z`),
    )
  })

  it('is always UTC whatever the local time zone, in the shape client-go parses', () => {
    const s = rfc3339Seconds(new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 6)))
    expect(s).toBe('2030-01-02T03:04:05Z')
    expect(s).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
  })
})
