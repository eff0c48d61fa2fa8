import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, ROOT, runCli, tempDir, type CliResult } from '../support/cli.js'

// Paths relative to the repository root, where runCli starts the CLI, so output lines are stable.
const AWS_AUTH = 'test/fixtures/aws-auth'
const SERVER = 'test/fixtures/server-config'
const DYNAMIC = 'test/fixtures/dynamicfile'
const KNOWN_VARS = '{{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}}'

const INVALID_LINES = [
  `${AWS_AUTH}/aws-auth-invalid.yaml: data.mapAccounts[0]: error: '12345' is not a valid AWS account ID (12 digits; quote account IDs in YAML)`,
  `${AWS_AUTH}/aws-auth-invalid.yaml: data.mapUsers[0].username: error: username must be a non-empty string`,
  `${AWS_AUTH}/aws-auth-invalid.yaml: data.mapRoles[1].rolearn: error: 'arn:aws:iam::111122223333:user/not-a-role' is not a role ARN`,
  `${AWS_AUTH}/aws-auth-invalid.yaml: data.mapRoles[2].username: error: unknown template variable {{Session}} (known: ${KNOWN_VARS})`,
]

const lines = (...l: string[]) => l.map((s) => `${s}\n`).join('')

describe('kube-iam-auth validate', () => {
  let home: string
  let env: Record<string, string>
  const validate = (args: string[], input?: string): Promise<CliResult> =>
    runCli(args, { env, ...(input === undefined ? {} : { input }) })

  function expectResult(r: CliResult, code: number, stdout: string, stderr = ''): void {
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut }).toEqual({
      code,
      stdout,
      stderr,
      timedOut: false,
    })
  }

  beforeAll(async () => {
    await ensureBuilt()
    home = tempDir('kia-cli-validate-')
    env = cliEnv(home)
  }, 120_000)
  afterAll(() => {
    if (home) rmSync(home, { recursive: true, force: true })
  })

  describe('--aws-auth', () => {
    it.each([
      'aws-auth.yaml',
      'aws-auth-crazy-case-keys.yaml',
      'aws-auth-open-source-case-keys.yaml',
      'aws-auth-space-out-of-place.yaml',
      'aws-auth-empty-values.yaml',
      'aws-auth-empty-single-quotes.yaml',
      'aws-auth-sso.yaml',
    ])('%s is valid: exit 0', async (name) => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/${name}`])
      expectResult(r, 0, lines(`${AWS_AUTH}/${name}: valid`, '0 errors, 0 warnings'))
    })

    it('a broken aws-auth: one line per problem, "file: path: severity: message", exit 1', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth-invalid.yaml`])
      expectResult(r, 1, lines(...INVALID_LINES, '4 errors, 0 warnings'))
    })

    it('a missing "|" after mapRoles: one error, exit 1', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth-missing-bar.yaml`])
      expectResult(
        r,
        1,
        lines(
          `${AWS_AUTH}/aws-auth-missing-bar.yaml: data.mapRoles: error: must be a string holding a YAML list`,
          '1 error, 0 warnings',
        ),
      )
    })

    it('warnings only: listed, the file is valid, exit 0', async () => {
      const f = `${AWS_AUTH}/aws-auth-warnings.yaml`
      const r = await validate(['validate', '--aws-auth', f])
      expectResult(
        r,
        0,
        lines(
          `${f}: data.mapusers: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapUsers"?`,
          `${f}: data.mapRoles[0].comment: warning: unknown key (ignored)`,
          `${f}: data.mapRoles[1].rolearn: warning: duplicate of mapRoles[0] (role paths are ignored); the first entry wins`,
          `${f}: valid`,
          '0 errors, 3 warnings',
        ),
      )
    })

    it.each([
      ['aws-auth-lower-case-top-keys.yaml', ['maproles', 'mapusers', 'mapaccounts']],
      ['aws-auth-crazy-case-top-keys.yaml', ['MaPrOlEs', 'MaPuSeRs', 'MaPaCcOuNtS']],
    ])('%s: a "did you mean" warning per key, exit 0', async (name, keys) => {
      const f = `${AWS_AUTH}/${name}`
      const r = await validate(['validate', '--aws-auth', f])
      const [roles, users, accounts] = keys as [string, string, string]
      expectResult(
        r,
        0,
        lines(
          `${f}: data.${roles}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapRoles"?`,
          `${f}: data.${users}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapUsers"?`,
          `${f}: data.${accounts}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapAccounts"?`,
          `${f}: valid`,
          '0 errors, 3 warnings',
        ),
      )
    })

    it('"-" reads the manifest from stdin', async () => {
      const good = await validate(
        ['validate', '--aws-auth', '-'],
        readFileSync(join(ROOT, AWS_AUTH, 'aws-auth.yaml'), 'utf8'),
      )
      expectResult(good, 0, lines('(stdin): valid', '0 errors, 0 warnings'))

      const bad = await validate(
        ['validate', '--aws-auth', '-'],
        readFileSync(join(ROOT, AWS_AUTH, 'aws-auth-invalid.yaml'), 'utf8'),
      )
      expectResult(
        bad,
        1,
        lines(
          ...INVALID_LINES.map((l) => l.replace(`${AWS_AUTH}/aws-auth-invalid.yaml`, '(stdin)')),
          '4 errors, 0 warnings',
        ),
      )
    })

    it('stdin that is not a ConfigMap', async () => {
      const r = await validate(
        ['validate', '--aws-auth', '-'],
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: aws-auth\n  namespace: kube-system\n',
      )
      expectResult(r, 1, lines('(stdin): kind: error: expected a ConfigMap, got Secret', '1 error, 0 warnings'))
    })

    it('empty stdin', async () => {
      const r = await validate(['validate', '--aws-auth', '-'], '')
      expectResult(r, 1, lines('(stdin): (file): error: no ConfigMap found', '1 error, 0 warnings'))
    })
  })

  describe('-o json', () => {
    it('a broken aws-auth: every problem with its file, exit 1', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth-invalid.yaml`, '-o', 'json'])
      expect(r.code).toBe(1)
      expect(r.stderr).toBe('')
      const file = `${AWS_AUTH}/aws-auth-invalid.yaml`
      expect(JSON.parse(r.stdout)).toEqual({
        valid: false,
        errors: 4,
        warnings: 0,
        problems: [
          {
            file,
            path: 'data.mapAccounts[0]',
            message: "'12345' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
            severity: 'error',
          },
          {
            file,
            path: 'data.mapUsers[0].username',
            message: 'username must be a non-empty string',
            severity: 'error',
          },
          {
            file,
            path: 'data.mapRoles[1].rolearn',
            message: "'arn:aws:iam::111122223333:user/not-a-role' is not a role ARN",
            severity: 'error',
          },
          {
            file,
            path: 'data.mapRoles[2].username',
            message: `unknown template variable {{Session}} (known: ${KNOWN_VARS})`,
            severity: 'error',
          },
        ],
      })
    })

    it('a valid aws-auth, warnings only: valid, exit 0', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth-warnings.yaml`, '--output', 'json'])
      expect(r.code).toBe(0)
      const out = JSON.parse(r.stdout) as {
        valid: boolean
        errors: number
        warnings: number
        problems: { severity: string }[]
      }
      expect({ valid: out.valid, errors: out.errors, warnings: out.warnings }).toEqual({
        valid: true,
        errors: 0,
        warnings: 3,
      })
      expect(out.problems.map((p) => p.severity)).toEqual(['warning', 'warning', 'warning'])
    })

    it('a clean file', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`, '-o', 'json'])
      expectResult(r, 0, `${JSON.stringify({ valid: true, errors: 0, warnings: 0, problems: [] }, null, 2)}\n`)
    })

    it('an unknown output format is a usage error', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`, '-o', 'yaml'])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain('Allowed choices are text, json')
    })
  })

  describe('server config and DynamicFile', () => {
    it('a server config with an aws-auth: both valid', async () => {
      const r = await validate([
        '-c',
        `${SERVER}/chain.yaml`,
        'validate',
        '--aws-auth',
        `${AWS_AUTH}/aws-auth-chain.yaml`,
      ])
      expectResult(r, 0, lines(`${SERVER}/chain.yaml, ${AWS_AUTH}/aws-auth-chain.yaml: valid`, '0 errors, 0 warnings'))
    })

    it('problems of several files are listed together and counted once', async () => {
      const r = await validate([
        '--config',
        `${SERVER}/invalid.yaml`,
        'validate',
        '--aws-auth',
        `${AWS_AUTH}/aws-auth-invalid.yaml`,
      ])
      expectResult(
        r,
        1,
        lines(
          `${SERVER}/invalid.yaml: server.backendMode[1]: error: backend-mode "Magic" is not a valid mode (valid: MountedFile, EKSConfigMap, CRD, DynamicFile)`,
          `${SERVER}/invalid.yaml: server.mapRoles[0].username: error: username must be a non-empty string`,
          ...INVALID_LINES,
          '6 errors, 0 warnings',
        ),
      )
    })

    it('a broken server config with a valid aws-auth: exit 1, no "valid" line', async () => {
      const r = await validate(['-c', `${SERVER}/invalid.yaml`, 'validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`])
      expect(r.code).toBe(1)
      expect(r.stdout).not.toContain(': valid')
      expect(r.stdout.endsWith('2 errors, 0 warnings\n')).toBe(true)
    })

    it('a DynamicFile, strict and not', async () => {
      expectResult(
        await validate(['validate', '--dynamic-file', `${DYNAMIC}/strict.json`, '--user-id-strict']),
        0,
        lines(`${DYNAMIC}/strict.json: valid`, '0 errors, 0 warnings'),
      )
      expectResult(
        await validate(['validate', '--dynamic-file', `${DYNAMIC}/non-strict.json`]),
        0,
        lines(`${DYNAMIC}/non-strict.json: valid`, '0 errors, 0 warnings'),
      )
      // strict.json has a userid-only entry, which needs strict mode
      expectResult(
        await validate(['validate', '--dynamic-file', `${DYNAMIC}/strict.json`]),
        1,
        lines(
          `${DYNAMIC}/strict.json: mapRoles[1]: error: one of rolearn or SSO must be supplied`,
          '1 error, 0 warnings',
        ),
      )
    })

    it('a broken DynamicFile', async () => {
      const f = `${DYNAMIC}/invalid.json`
      const r = await validate(['validate', '--dynamic-file', f, '--user-id-strict'])
      expectResult(
        r,
        1,
        lines(
          `${f}: Version: error: must be a string, got number 3`,
          `${f}: mapRoles[0].rolearn: error: error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'`,
          `${f}: mapUsers[0].username: error: username must be a non-empty string`,
          `${f}: mapUsers[0].userarn: error: error canonicalizing ARN: arn 'garbage' is invalid: 'arn: invalid prefix'`,
          '4 errors, 0 warnings',
        ),
      )
    })
  })

  describe('missing files and usage errors', () => {
    it('a missing aws-auth file is an error on stderr, exit 1', async () => {
      const f = `${AWS_AUTH}/no-such-file.yaml`
      const r = await validate(['validate', '--aws-auth', f])
      expectResult(
        r,
        1,
        '',
        `Error: could not read ${f}: ENOENT: no such file or directory, open '${f}'\nRun 'kube-iam-auth validate --help' for usage.\n`,
      )
    })

    it('a missing server config is reported as a problem of that file', async () => {
      const f = `${SERVER}/no-such-file.yaml`
      const r = await validate(['-c', f, 'validate'])
      expectResult(
        r,
        1,
        lines(
          `${f}: (file): error: could not read config file ${f}: ENOENT: no such file or directory, open '${f}'`,
          '1 error, 0 warnings',
        ),
      )
    })

    it('a missing DynamicFile is reported as a problem of that file', async () => {
      const f = `${DYNAMIC}/no-such-file.json`
      const r = await validate(['validate', '--dynamic-file', f])
      expectResult(
        r,
        1,
        lines(
          `${f}: (file): error: could not read: ENOENT: no such file or directory, open '${f}'`,
          '1 error, 0 warnings',
        ),
      )
    })

    it('nothing to validate', async () => {
      const r = await validate(['validate'])
      expectResult(
        r,
        1,
        '',
        "Error: give at least one of --config, --aws-auth or --dynamic-file\nRun 'kube-iam-auth validate --help' for usage.\n",
      )
    })
  })
})
