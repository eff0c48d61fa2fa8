import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, ROOT, runCli, tempDir, type CliResult } from '../support/cli.js'
import { expectResult } from '../support/cli-expect.js'

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

    const WARNING_LINES = (f: string) => [
      `${f}: data.mapusers: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapUsers"?`,
      `${f}: data.mapRoles[0].comment: warning: unknown key (ignored)`,
      `${f}: data.mapRoles[1].rolearn: warning: duplicate of mapRoles[0] (role paths are ignored); the first entry wins`,
      `${f}: data.mapRoles[0].rolearn: warning: aws-iam-authenticator never matched a role ARN with a path; kube-iam-auth does: every session of role arn:aws:iam::111122223333:role/deployer (any path) now authenticates as "deployer" with groups [deployers]`,
    ]

    it('warnings only: listed, the file is valid, exit 0; --strict makes them fail', async () => {
      const f = `${AWS_AUTH}/aws-auth-warnings.yaml`
      expectResult(
        await validate(['validate', '--aws-auth', f]),
        0,
        lines(...WARNING_LINES(f), `${f}: valid`, '0 errors, 4 warnings'),
      )
      expectResult(
        await validate(['validate', '--strict', '--aws-auth', f]),
        1,
        lines(...WARNING_LINES(f), `${f}: valid`, '0 errors, 4 warnings', '--strict: warnings fail'),
      )
      expectResult(
        await validate(['validate', '--no-migration-warnings', '--aws-auth', f]),
        0,
        lines(...WARNING_LINES(f).slice(0, 3), `${f}: valid`, '0 errors, 3 warnings'),
      )
    })

    const MAPS_NOTHING = 'applied, it would remove every aws-auth mapping and lock out every node and user it mapped'

    it.each([
      ['aws-auth-lower-case-top-keys.yaml', ['maproles', 'mapusers', 'mapaccounts']],
      ['aws-auth-crazy-case-top-keys.yaml', ['MaPrOlEs', 'MaPuSeRs', 'MaPaCcOuNtS']],
    ])('%s: a "did you mean" warning per key, and it maps nothing: exit 1', async (name, keys) => {
      const f = `${AWS_AUTH}/${name}`
      const r = await validate(['validate', '--aws-auth', f])
      const [roles, users, accounts] = keys as [string, string, string]
      expectResult(
        r,
        1,
        lines(
          `${f}: data.${roles}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapRoles"?`,
          `${f}: data.${users}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapUsers"?`,
          `${f}: data.${accounts}: warning: ignored: aws-auth keys are case-sensitive, did you mean "mapAccounts"?`,
          `${f}: data: error: maps nothing: data has no mapRoles, mapUsers or mapAccounts (only ${keys.join(', ')}); ${MAPS_NOTHING}`,
          '1 error, 3 warnings',
        ),
      )
    })

    // Each of these used to print "valid" and exit 0.
    it.each<[string, string, string[]]>([
      [
        'not a ConfigMap at all (foo: bar)',
        'foo: bar\n',
        [
          'kind: error: missing: this is not a ConfigMap manifest (expected kind: ConfigMap, as `kubectl get configmap -n kube-system aws-auth -o yaml` prints it)',
          `data: error: maps nothing: the ConfigMap has no data; ${MAPS_NOTHING}`,
        ],
      ],
      [
        'a ConfigMap without data',
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aws-auth\n  namespace: kube-system\n',
        [`data: error: maps nothing: the ConfigMap has no data; ${MAPS_NOTHING}`],
      ],
      [
        'data.mapRole (a typo)',
        'kind: ConfigMap\ndata:\n  mapRole: |\n    - rolearn: arn:aws:iam::111122223333:role/Admin\n      username: admin\n',
        [
          'data.mapRole: warning: unknown key (ignored: only mapRoles, mapUsers, mapAccounts are read); did you mean "mapRoles"?',
          `data: error: maps nothing: data has no mapRoles, mapUsers or mapAccounts (only mapRole); ${MAPS_NOTHING}`,
        ],
      ],
      [
        'empty lists',
        'kind: ConfigMap\ndata:\n  mapRoles: "[]"\n  mapUsers: ""\n',
        [`data: error: maps nothing: mapRoles, mapUsers and mapAccounts are all empty; ${MAPS_NOTHING}`],
      ],
      [
        'an 11-digit account in a userarn (the same ID is refused under mapAccounts)',
        'kind: ConfigMap\ndata:\n  mapUsers: |\n    - userarn: arn:aws:iam::11112222333:user/carol\n      username: carol\n',
        [
          "data.mapUsers[0].userarn: error: '11112222333' in 'arn:aws:iam::11112222333:user/carol' is not a valid AWS account ID (12 digits)",
        ],
      ],
      [
        'an assumed-role (session) ARN under mapRoles: it would grant the whole role',
        'kind: ConfigMap\ndata:\n  mapRoles: |\n    - rolearn: arn:aws:sts::111122223333:assumed-role/Admin/alice\n      username: alice\n      groups: [system:masters]\n',
        [
          "data.mapRoles[0].rolearn: error: 'arn:aws:sts::111122223333:assumed-role/Admin/alice' is an assumed-role (session) ARN: roles are matched by role, so it would map every session of arn:aws:iam::111122223333:role/Admin, not only this one; map the role ARN (and use {{SessionName}} in the username to tell sessions apart)",
        ],
      ],
    ])('%s: errors, exit 1', async (_name, manifest, problems) => {
      const r = await validate(['validate', '--aws-auth', '-'], manifest)
      const errors = problems.filter((p) => p.includes(': error: ')).length
      const warnings = problems.length - errors
      expectResult(
        r,
        1,
        lines(
          ...problems.map((p) => `(stdin): ${p}`),
          `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`,
        ),
      )
    })

    it.each(['aws-auth-empty-values.yaml', 'aws-auth-empty-single-quotes.yaml'])(
      '%s (upstream: parses to nothing) maps nothing: exit 1',
      async (name) => {
        const f = `${AWS_AUTH}/${name}`
        expectResult(
          await validate(['validate', '--aws-auth', f]),
          1,
          lines(
            `${f}: data: error: maps nothing: mapRoles, mapUsers and mapAccounts are all empty; ${MAPS_NOTHING}`,
            '1 error, 0 warnings',
          ),
        )
      },
    )

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
      expectResult(
        r,
        1,
        lines(
          '(stdin): kind: error: expected a ConfigMap, got Secret',
          `(stdin): data: error: maps nothing: the ConfigMap has no data; ${MAPS_NOTHING}`,
          '2 errors, 0 warnings',
        ),
      )
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
        notes: [],
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
        warnings: 4,
      })
      expect(out.problems.map((p) => p.severity)).toEqual(['warning', 'warning', 'warning', 'warning'])
    })

    it('a clean file', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`, '-o', 'json'])
      expectResult(
        r,
        0,
        `${JSON.stringify({ valid: true, errors: 0, warnings: 0, problems: [], notes: [] }, null, 2)}\n`,
      )
    })

    it('an unknown output format is unusable input: exit 2', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`, '-o', 'yaml'])
      expect(r.code).toBe(2)
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
      expectResult(
        r,
        0,
        lines(
          `${AWS_AUTH}/aws-auth-chain.yaml: data.mapRoles[0].rolearn: warning: aws-iam-authenticator never matched a role ARN with a path; kube-iam-auth does: every session of role arn:aws:iam::111122223333:role/Admin (any path) now authenticates as "cm-admin" with groups [cm-admins]`,
          'note: server.stateDir test/fixtures/no-such-state-dir is not on this machine: the serving certificate, caller keys and pre-generated kubeconfig are checked by the server at start (run validate on a control-plane node to check them now)',
          `${SERVER}/chain.yaml, ${AWS_AUTH}/aws-auth-chain.yaml: valid`,
          '0 errors, 1 warning',
        ),
      )
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
        lines(
          `${DYNAMIC}/non-strict.json: mapRoles[0].rolearn: warning: aws-iam-authenticator never matched a role ARN with a path; kube-iam-auth does: every session of role arn:aws:iam::111122223333:role/matt (any path) now authenticates as "matt" with groups [devs]`,
          `${DYNAMIC}/non-strict.json: valid`,
          '0 errors, 1 warning',
        ),
      )
      // strict.json has a userid-only entry, which needs strict mode
      expectResult(
        await validate(['validate', '--dynamic-file', `${DYNAMIC}/strict.json`]),
        1,
        lines(
          `${DYNAMIC}/strict.json: mapRoles[1]: error: one of rolearn or SSO must be supplied`,
          `${DYNAMIC}/strict.json: mapRoles[0].rolearn: warning: aws-iam-authenticator never matched a role ARN with a path; kube-iam-auth does: every session of role arn:aws:iam::111122223333:role/matt (any path) now authenticates as "matt" with groups [devs]`,
          '1 error, 1 warning',
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

  describe('values the server refuses or that make it useless: the same judge as the server', () => {
    // Each of these used to print "valid"; the server then refused to start.
    it.each<[string, string, string]>([
      [
        'address: nonsense',
        'address: nonsense',
        'server.address: error: server.address must be an IP address, got "nonsense"',
      ],
      [
        'hostname: "bad host"',
        'hostname: "bad host"',
        'server.hostname: error: server.hostname must be a DNS name or an IP address, got "bad host"',
      ],
      [
        'master: not a URL',
        'backendMode: [EKSConfigMap]\n  master: kube.example:6443',
        'server.master: error: must be an http(s):// URL of the Kubernetes API server, got "kube.example:6443"',
      ],
    ])(
      '%s: validate reports it, and the server refuses to start with the same message',
      async (_name, line, problem) => {
        const f = join(home, `server-${line.length}.yaml`)
        writeFileSync(
          f,
          `clusterID: c\nserver:\n  port: 0\n  stateDir: ${join(home, 'state')}\n  generateKubeconfig: ${join(home, 'kc.yaml')}\n` +
            `  mapUsers: [{userarn: "arn:aws:iam::111122223333:user/a", username: a}]\n  ${line}\n`,
        )
        const v = await validate(['-c', f, 'validate'])
        expect(v.code).toBe(1)
        expect(v.stdout).toBe(lines(`${f}: ${problem}`, '1 error, 0 warnings'))
        const server = await runCli(['server', '--config', f], { env, timeoutMs: 20_000 })
        expect(server.code).toBe(1)
        expect(server.stderr).toContain(`${problem.split(': error: ')[0]}: ${problem.split(': error: ')[1]}`)
      },
    )

    it('clusterIDs: every entry that is empty, unusable, clusterID itself or a duplicate, and too many', async () => {
      const body = (ids: string) =>
        `clusterID: green\nclusterIDs: ${ids}\nserver:\n  port: 0\n  stateDir: ${join(home, 'state')}\n` +
        `  generateKubeconfig: ${join(home, 'kc.yaml')}\n  mapUsers: [{userarn: "arn:aws:iam::111122223333:user/a", username: a}]\n`
      const good = join(home, 'ids-good.yaml')
      writeFileSync(good, body('[blue, old-green]'))
      const ok = await validate(['-c', good, 'validate'])
      expect(ok.code).toBe(0)
      expect(ok.stdout).not.toContain('clusterIDs')
      expect(ok.stdout).toContain(lines(`${good}: valid`))
      const bad = join(home, 'ids-bad.yaml')
      writeFileSync(bad, body('[blue, "", green, "new green", blue]'))
      const problems = [
        'clusterIDs: error: at most 4 cluster IDs besides clusterID, got 5: a token names its ID only inside its signature, so each one listed costs a token for none of them (a forged one) one more STS call',
        'clusterIDs[1]: error: empty: a cluster ID cannot be empty',
        'clusterIDs[2]: error: "green" is clusterID already: list only the IDs accepted alongside it',
        'clusterIDs[3]: error: "new green" is not a usable cluster ID: only visible ASCII characters, no spaces (tokens carry it signed in the x-k8s-aws-id header)',
        'clusterIDs[4]: error: "blue" is listed twice (also clusterIDs[0])',
      ]
      const v = await validate(['-c', bad, 'validate'])
      expect({ code: v.code, stdout: v.stdout }).toEqual({
        code: 1,
        stdout: lines(...problems.map((p) => `${bad}: ${p}`), '5 errors, 0 warnings'),
      })
      const server = await runCli(['server', '--config', bad], { env, timeoutMs: 20_000 })
      expect(server.code).toBe(1)
      for (const p of problems) expect(server.stderr).toContain(p.replace(': error: ', ': '))
    })

    it('a config whose only backend maps nothing: every review would be denied', async () => {
      const f = join(home, 'empty.yaml')
      writeFileSync(f, `clusterID: c\nserver:\n  stateDir: ${join(home, 'no-state')}\n`)
      const r = await validate(['-c', f, 'validate'])
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `${f}: server: error: maps nothing: backendMode is [MountedFile] and it has no valid mapRoles, mapUsers or mapAccounts: every TokenReview would be denied\n`,
      )
    })
  })

  describe('unusable input: exit 2', () => {
    it('a missing aws-auth file is reported as a problem of that file', async () => {
      const f = `${AWS_AUTH}/no-such-file.yaml`
      const r = await validate(['validate', '--aws-auth', f])
      expectResult(
        r,
        2,
        lines(
          `${f}: (file): error: could not read ${f}: ENOENT: no such file or directory, open '${f}'`,
          '1 error, 0 warnings',
        ),
      )
    })

    it('a missing server config is reported as a problem of that file', async () => {
      const f = `${SERVER}/no-such-file.yaml`
      const r = await validate(['-c', f, 'validate'])
      expectResult(
        r,
        2,
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
        2,
        lines(
          `${f}: (file): error: could not read: ENOENT: no such file or directory, open '${f}'`,
          '1 error, 0 warnings',
        ),
      )
    })

    it.each<[string, string, string]>([
      ['an aws-auth that is not YAML at all', '--aws-auth', 'data: [\n'],
      ['a DynamicFile that is not JSON at all', '--dynamic-file', '{"mapRoles": ['],
    ])('%s', async (_name, flag, content) => {
      const f = join(home, 'broken')
      writeFileSync(f, content)
      const r = await validate(['validate', flag, f])
      expect(r.code).toBe(2)
      expect(r.stdout).toMatch(
        new RegExp(`^${f}: \\(file\\): error: invalid (YAML|JSON): [^\\n]+\\n1 error, 0 warnings\\n$`),
      )
    })

    it('nothing to validate', async () => {
      const r = await validate(['validate'])
      expectResult(
        r,
        2,
        '',
        "Error: give at least one of --config, --aws-auth or --dynamic-file\nRun 'kube-iam-auth validate --help' for usage.\n",
      )
    })

    it('an unknown flag', async () => {
      const r = await validate(['validate', '--aws-auth', `${AWS_AUTH}/aws-auth.yaml`, '--strcit'])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain("error: unknown option '--strcit'")
    })
  })
})
