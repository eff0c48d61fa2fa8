// Role patterns through the built CLI, as an operator checks and changes a mapping: `validate`
// (errors from the server's own decoder, the guard-rail warnings, --strict), `explain` (which
// pattern matched, what it beat or lost to), and `add role --rolearn PATTERN` against the
// Kubernetes API stand-in.
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { parseAwsAuthData } from '../../src/mapping/configmap/parse.js'
import { cliEnv, ensureBuilt, runCli, tempDir, type CliResult } from '../support/cli.js'
import { expectResult } from '../support/cli-expect.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'

const PATTERNS = 'test/fixtures/aws-auth/aws-auth-patterns.yaml'
const TIE = 'test/fixtures/aws-auth/aws-auth-patterns-tie.yaml'
const A = '111122223333'
const B = '444455556666'
const lines = (...l: string[]) => l.map((s) => `${s}\n`).join('')

const MASTERS_WARNING = `${PATTERNS}: data.mapRoles[2].rolearn: warning: role pattern arn:aws:iam::${A}:role/admin-* grants system:masters (cluster admin, past every RBAC rule) to every role of account ${A} whose name matches 'admin-*', roles created later included: map admin roles one by one, by exact ARN`
const EVERY_ROLE_WARNING = `${PATTERNS}: data.mapRoles[3].rolearn: warning: role pattern arn:aws:iam::${B}:role/* matches every role of account ${B} (its name is only wildcards): every session of any role there authenticates as "audit:{{SessionName}}" with groups [view]; name the roles, or narrow the pattern (e.g. role/dev-*)`
const TIE_MESSAGE = `ties with mapRoles[0] (arn:aws:iam::${A}:role/dev-*): both patterns have 4 literal characters and both match a role named 'dev-ops', so neither wins; make one more specific, or split them so no role name matches both`

describe('role patterns through the CLI', () => {
  let home: string
  let env: Record<string, string>
  const cli = (args: string[]): Promise<CliResult> => runCli(args, { env })
  beforeAll(async () => {
    await ensureBuilt()
    home = tempDir('kia-cli-patterns-')
    env = cliEnv(home)
  }, 120_000)
  afterAll(() => {
    if (home) rmSync(home, { recursive: true, force: true })
  })

  describe('validate', () => {
    it('warns about a pattern that grants system:masters and one that matches every role; the file is valid', async () => {
      const r = await cli(['validate', '--aws-auth', PATTERNS, '--no-migration-warnings'])
      expectResult(r, 0, lines(MASTERS_WARNING, EVERY_ROLE_WARNING, `${PATTERNS}: valid`, '0 errors, 2 warnings'))
    })

    it('--strict fails on them', async () => {
      const r = await cli(['validate', '--aws-auth', PATTERNS, '--no-migration-warnings', '--strict'])
      expectResult(
        r,
        1,
        lines(
          MASTERS_WARNING,
          EVERY_ROLE_WARNING,
          `${PATTERNS}: valid`,
          '0 errors, 2 warnings',
          '--strict: warnings fail',
        ),
      )
    })

    it('coming from aws-iam-authenticator (which took * literally and never matched): each pattern says what it now grants', async () => {
      const r = await cli(['validate', '--aws-auth', PATTERNS])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        `${PATTERNS}: data.mapRoles[0].rolearn: warning: aws-iam-authenticator took a role ARN with * or ? literally, so it never matched; kube-iam-auth reads it as a role pattern: every role of account ${A} whose name matches 'dev-*' now authenticates as "dev:{{SessionName}}" with groups [developers]\n`,
      )
      expect(r.stdout).toContain('0 errors, 6 warnings\n')
    })

    it('a tie is an error: exit 1, one line naming both entries and a role both match', async () => {
      const r = await cli(['validate', '--aws-auth', TIE])
      expectResult(r, 1, lines(`${TIE}: data.mapRoles[1].rolearn: error: ${TIE_MESSAGE}`, '1 error, 0 warnings'))
    })

    it("a pattern with a path in the server config: the server's own error, at its field", async () => {
      const config = join(home, 'path-pattern.yaml')
      writeFileSync(
        config,
        `clusterID: c\nserver:\n  mapRoles:\n    - rolearn: arn:aws:iam::${A}:role/teams/*\n      username: team\n`,
      )
      const r = await cli(['validate', '--config', config])
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `${config}: server.mapRoles[0].rolearn: error: a role pattern cannot name a path ('role/teams/*'): STS reports role sessions without their path, so the server cannot tell which path a role has; match on role names instead (e.g. role/team-*)\n`,
      )
      const server = await runCli(['server', '--config', config], { env, timeoutMs: 30_000 })
      expect(server.code).not.toBe(0)
      expect(server.stderr).toContain("server.mapRoles[0].rolearn: a role pattern cannot name a path ('role/teams/*')")
    })
  })

  describe('explain', () => {
    const explain = (file: string, arn: string) => cli(['explain', '--aws-auth', file, '--arn', arn])

    it('a session matched by a pattern: which pattern, and the rendered template', async () => {
      const r = await explain(PATTERNS, `arn:aws:sts::${A}:assumed-role/dev-alice/alice`)
      expectResult(
        r,
        0,
        lines(
          `identity: arn:aws:sts::${A}:assumed-role/dev-alice/alice`,
          `  canonical ARN: arn:aws:iam::${A}:role/dev-alice`,
          `  account: ${A}   session name: alice`,
          'chain:',
          `  1. EKSConfigMap (${PATTERNS}): role pattern mapRoles[0] (arn:aws:iam::${A}:role/dev-*) matches -> username "dev:{{SessionName}}", groups [developers]`,
          'result: AUTHENTICATED as "dev:alice", groups [developers]',
          `  matched EKSConfigMap mapRoles[0] (role pattern arn:aws:iam::${A}:role/dev-*)`,
        ),
      )
    })

    it('an exact entry beats the pattern that also matches, and says so', async () => {
      const r = await explain(PATTERNS, `arn:aws:sts::${A}:assumed-role/dev-lead/lee`)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        `  1. EKSConfigMap (${PATTERNS}): role rule mapRoles[1] matches -> username "lead:{{SessionName}}", groups [developers, leads]; role pattern mapRoles[0] (arn:aws:iam::${A}:role/dev-*) also matches but an exact role rule beats every pattern\n`,
      )
      expect(r.stdout).toContain('result: AUTHENTICATED as "lead:lee", groups [developers, leads]\n')
    })

    it('the most specific pattern wins and names the ones it beat', async () => {
      const file = join(home, 'specific.yaml')
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: ConfigMap',
          'metadata: {name: aws-auth, namespace: kube-system}',
          'data:',
          '  mapRoles: |',
          `    - {rolearn: "arn:aws:iam::${A}:role/*", username: anyone}`,
          `    - {rolearn: "arn:aws:iam::${A}:role/dev-*", username: "dev:{{SessionName}}"}`,
          `    - {rolearn: "arn:aws:iam::${A}:role/dev-lead-*", username: "lead:{{SessionName}}"}`,
          '',
        ].join('\n'),
      )
      const r = await explain(file, `arn:aws:sts::${A}:assumed-role/dev-lead-x/lee`)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        `role pattern mapRoles[2] (arn:aws:iam::${A}:role/dev-lead-*) matches -> username "lead:{{SessionName}}", groups []; it beats the less specific patterns mapRoles[1] (arn:aws:iam::${A}:role/dev-*), mapRoles[0] (arn:aws:iam::${A}:role/*) (9 literal characters against 4, 0)\n`,
      )
    })

    it('the same role name in another account: denied, with a hint that patterns never cross accounts', async () => {
      const r = await explain(PATTERNS, `arn:aws:sts::999988887777:assumed-role/dev-alice/alice`)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `hint: EKSConfigMap mapRoles[0] is role pattern arn:aws:iam::${A}:role/dev-*: it matches the role name, but in account ${A}, not 999988887777 (patterns never match across accounts or partitions)\n`,
      )
      expect(r.stdout).toContain('result: DENIED: identity is not mapped\n')
    })

    it('tied patterns: both named as invalid for the role, nothing applies', async () => {
      const r = await explain(TIE, `arn:aws:sts::${A}:assumed-role/dev-ops/o`)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `; role pattern mapRoles[0] (arn:aws:iam::${A}:role/dev-*) matches it but is invalid: data.mapRoles[1].rolearn: ${TIE_MESSAGE}; role pattern mapRoles[1] (arn:aws:iam::${A}:role/*-ops) matches it but is invalid:`,
      )
    })
  })

  describe('add role --rolearn PATTERN', () => {
    let kube: FakeKube
    let kubeconfig: string
    const data = () => kube.getObject('configmaps', 'kube-system', 'aws-auth')!.data as Record<string, string>
    const add = (...args: string[]) =>
      runCli(['add', 'role', ...args, '--prompt=false', '--kubeconfig', kubeconfig], { env, timeoutMs: 30_000 })

    beforeAll(async () => {
      kube = await startFakeKube()
      kubeconfig = join(home, 'kubeconfig')
      writeFileSync(kubeconfig, kube.kubeconfigFor())
    })
    afterAll(async () => {
      await kube?.close()
    })
    beforeEach(() => {
      kube.setConfigMap('kube-system', 'aws-auth', {
        mapRoles: `- rolearn: arn:aws:iam::${A}:role/dev-*\n  username: dev:{{SessionName}}\n`,
      })
    })

    it('adds a pattern, validated by the same compiler', async () => {
      const r = await add(
        '--rolearn',
        `arn:aws:iam::${A}:role/ops-*`,
        '--username',
        'ops:{{SessionName}}',
        '--groups',
        'ops',
      )
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(load(data().mapRoles!)).toEqual([
        { rolearn: `arn:aws:iam::${A}:role/dev-*`, username: 'dev:{{SessionName}}' },
        { rolearn: `arn:aws:iam::${A}:role/ops-*`, username: 'ops:{{SessionName}}', groups: ['ops'] },
      ])
      expect(parseAwsAuthData(data()).rules.patterns.map((p) => p.rule)).toEqual(['mapRoles[0]', 'mapRoles[1]'])
    })

    it.each([
      [
        'the same pattern',
        `arn:aws:iam::${A}:role/DEV-*`,
        `cannot add duplicate role pattern "arn:aws:iam::${A}:role/DEV-*" (already mapRoles[0])`,
      ],
      [
        'a pattern that ties',
        `arn:aws:iam::${A}:role/*-ops`,
        `refusing a change that would leave the aws-auth ConfigMap invalid:\n  - data.mapRoles[1].rolearn: ${TIE_MESSAGE}`,
      ],
      [
        'a pattern with a path',
        `arn:aws:iam::${A}:role/teams/*`,
        "data.mapRoles[1].rolearn: a role pattern cannot name a path ('role/teams/*')",
      ],
    ])('refuses %s and writes nothing', async (_name, rolearn, message) => {
      const before = data().mapRoles
      const r = await add('--rolearn', rolearn, '--username', 'x')
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(message)
      expect(data().mapRoles).toBe(before)
    })
  })
})
