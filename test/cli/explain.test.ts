import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, ROOT, runCli, tempDir, type CliResult } from '../support/cli.js'
import { expectResult } from '../support/cli-expect.js'

// Paths relative to the repository root, where runCli starts the CLI, so output lines are stable.
const CONFIG = 'test/fixtures/server-config/chain.yaml'
const AWS_AUTH = 'test/fixtures/aws-auth/aws-auth-chain.yaml'
const DYNAMIC = 'test/fixtures/dynamicfile'
const A = '111122223333'
const B = '444455556666'

const lines = (...l: string[]) => l.map((s) => `${s}\n`).join('')

interface JsonExplanation {
  identity: { arn: string; canonicalArn: string; accountId: string; userId: string; sessionName: string }
  result?: { username: string; groups: string[]; source: string; rule: string; kind: string }
  denial?: string
  trace: string[]
  hints: string[]
  skipped: string[]
  invalidFiles: string[]
}

describe('kube-iam-auth explain', () => {
  let home: string
  let env: Record<string, string>
  const explain = (args: string[], input?: string): Promise<CliResult> =>
    runCli(args, { env, ...(input === undefined ? {} : { input }) })
  /** The server config + aws-auth chain: backendMode [MountedFile, EKSConfigMap]. */
  const explainChain = (arn: string, ...more: string[]) =>
    explain(['-c', CONFIG, 'explain', '--aws-auth', AWS_AUTH, '--arn', arn, ...more])

  beforeAll(async () => {
    await ensureBuilt()
    home = tempDir('kia-cli-explain-')
    env = cliEnv(home)
  }, 120_000)
  afterAll(() => {
    if (home) rmSync(home, { recursive: true, force: true })
  })

  describe('server config + aws-auth chain (MountedFile, then EKSConfigMap)', () => {
    it('both match: the first backend wins; exit 0', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/Admin/alice@example.com`)
      expectResult(
        r,
        0,
        lines(
          `identity: arn:aws:sts::${A}:assumed-role/Admin/alice@example.com`,
          `  canonical ARN: arn:aws:iam::${A}:role/Admin`,
          `  account: ${A}   session name: alice@example.com`,
          'chain:',
          `  1. MountedFile (${CONFIG}): role rule mapRoles[0] matches -> username "file-admin:{{SessionName}}", groups [system:masters]`,
          `  2. EKSConfigMap (${AWS_AUTH}): role rule mapRoles[0] also matches, but an earlier backend already did`,
          'result: AUTHENTICATED as "file-admin:alice-example.com", groups [system:masters]',
          '  matched MountedFile mapRoles[0] (role rule)',
        ),
      )
    })

    it('an explicit rule in the later backend beats the account allow-list of the earlier one', async () => {
      const r = await explainChain(`arn:aws:sts::${B}:assumed-role/Deployer/ci`)
      expectResult(
        r,
        0,
        lines(
          `identity: arn:aws:sts::${B}:assumed-role/Deployer/ci`,
          `  canonical ARN: arn:aws:iam::${B}:role/Deployer`,
          `  account: ${B}   session name: ci`,
          'chain:',
          `  1. MountedFile (${CONFIG}): no user, role or SSO rule for arn:aws:iam::${B}:role/Deployer; account ${B} is allowed by mapAccounts[0]`,
          `  2. EKSConfigMap (${AWS_AUTH}): role rule mapRoles[1] matches -> username "deployer:{{SessionName}}", groups [deployers]`,
          'result: AUTHENTICATED as "deployer:ci", groups [deployers]',
          '  matched EKSConfigMap mapRoles[1] (role rule)',
        ),
      )
    })

    it('account allow-list: username is the canonical ARN', async () => {
      const r = await explainChain(`arn:aws:sts::${B}:assumed-role/Other/ci`)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        lines(
          `result: AUTHENTICATED as "arn:aws:iam::${B}:role/Other", groups []`,
          '  matched MountedFile mapAccounts[0] (account allow-list: username is the canonical ARN)',
        ),
      )
    })

    it('denied, with a near-miss hint (the same role name in another account); exit 1', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/Dev/bob`)
      expectResult(
        r,
        1,
        lines(
          `identity: arn:aws:sts::${A}:assumed-role/Dev/bob`,
          `  canonical ARN: arn:aws:iam::${A}:role/Dev`,
          `  account: ${A}   session name: bob`,
          'chain:',
          `  1. MountedFile (${CONFIG}): no user, role or SSO rule for arn:aws:iam::${A}:role/Dev`,
          `  2. EKSConfigMap (${AWS_AUTH}): no user, role or SSO rule for arn:aws:iam::${A}:role/Dev`,
          'result: DENIED: identity is not mapped',
          `hint: EKSConfigMap mapRoles[2] maps arn:aws:iam::999988887777:role/dev (role): same name as arn:aws:iam::${A}:role/Dev, but a different ARN`,
        ),
      )
    })

    it('an IAM user: no session name line part', async () => {
      const r = await explainChain(`arn:aws:iam::${A}:user/carol`)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`  account: ${A}\nchain:\n`)
      expect(r.stdout).toContain(
        lines(
          'result: AUTHENTICATED as "carol", groups [system:masters]',
          '  matched EKSConfigMap mapUsers[0] (user rule)',
        ),
      )
    })

    it('--session-name overrides the session of the ARN for templates', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/Admin/alice`, '--session-name', 'someone@else')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`  account: ${A}   session name: someone@else\n`)
      expect(r.stdout).toContain('result: AUTHENTICATED as "file-admin:someone-else", groups [system:masters]\n')
    })

    it('{{EC2PrivateDNSName}} is shown as a placeholder (no EC2 call offline)', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/eks-node/i-0123456789abcdef0`)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        'result: AUTHENTICATED as "system:node:{{EC2PrivateDNSName of i-0123456789abcdef0}}", groups [system:bootstrappers, system:nodes]\n',
      )
    })

    it('{{EC2PrivateDNSName}} with a session that is not an instance ID: denied', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/eks-node/not-an-instance`)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        'result: DENIED: mapper EKSConfigMap mapRoles[3]: error rendering username template "system:node:{{EC2PrivateDNSName}}": SessionName did not contain an instance id\n',
      )
    })

    it('without --aws-auth the EKSConfigMap backend is listed as not checked', async () => {
      const r = await explain(['-c', CONFIG, 'explain', '--arn', `arn:aws:iam::${A}:user/carol`])
      expectResult(
        r,
        1,
        lines(
          `identity: arn:aws:iam::${A}:user/carol`,
          `  canonical ARN: arn:aws:iam::${A}:user/carol`,
          `  account: ${A}`,
          'chain:',
          `  1. MountedFile (${CONFIG}): no user, role or SSO rule for arn:aws:iam::${A}:user/carol`,
          '  -  EKSConfigMap (not given: pass --aws-auth): not checked',
          'result: DENIED: identity is not mapped',
        ),
      )
    })
  })

  describe('a server config with clusterIDs', () => {
    it('says which cluster IDs tokens may name (text and JSON); the mapping is the same for all of them', async () => {
      const config = join(home, 'cluster-ids.yaml')
      writeFileSync(
        config,
        readFileSync(join(ROOT, CONFIG), 'utf8').replace(
          'clusterID: explain-cluster\n',
          'clusterID: green\nclusterIDs: [blue, old-green]\n',
        ),
      )
      const arn = `arn:aws:iam::${A}:user/alice`
      const r = await explain(['-c', config, 'explain', '--arn', arn])
      expect(r.code).toBe(0)
      expect(r.stdout.split('\n').slice(0, 5)).toEqual([
        `identity: ${arn}`,
        `  canonical ARN: ${arn}`,
        `  account: ${A}`,
        'cluster IDs: tokens for green (clusterID) or blue, old-green (clusterIDs) are verified; any other is denied',
        'chain:',
      ])
      const json = JSON.parse((await explain(['-c', config, 'explain', '--arn', arn, '-o', 'json'])).stdout) as {
        clusterIds: string[]
      }
      expect(json.clusterIds).toEqual(['green', 'blue', 'old-green'])
    })
  })

  describe('-o json', () => {
    it('authenticated: identity, result, trace; exit 0', async () => {
      const r = await explainChain(`arn:aws:iam::${A}:user/carol`, '-o', 'json')
      expect(r.code).toBe(0)
      expect(r.stderr).toBe('')
      expect(JSON.parse(r.stdout)).toEqual({
        identity: {
          arn: `arn:aws:iam::${A}:user/carol`,
          canonicalArn: `arn:aws:iam::${A}:user/carol`,
          accountId: A,
          userId: '(unknown principal ID)',
          sessionName: '',
          accessKeyId: 'AKIAEXPLAINEXAMPLE00',
          stsEndpoint: 'sts.amazonaws.com',
        },
        result: {
          username: 'carol',
          groups: ['system:masters'],
          source: 'EKSConfigMap',
          rule: 'mapUsers[0]',
          kind: 'user',
        },
        trace: [
          `MountedFile (${CONFIG}): no user, role or SSO rule for arn:aws:iam::${A}:user/carol`,
          `EKSConfigMap (${AWS_AUTH}): user rule mapUsers[0] matches -> username "carol", groups [system:masters]`,
        ],
        hints: [],
        invalidRules: [],
        clusterIds: ['explain-cluster'],
        skipped: [],
        invalidFiles: [],
      })
    })

    it('denied: the denial and hints; exit 1', async () => {
      const r = await explainChain(`arn:aws:sts::${A}:assumed-role/Dev/bob`, '--output', 'json')
      expect(r.code).toBe(1)
      const out = JSON.parse(r.stdout) as JsonExplanation
      expect(out.result).toBeUndefined()
      expect(out.denial).toBe('identity is not mapped')
      expect(out.hints).toHaveLength(1)
      expect(out.trace).toHaveLength(2)
    })

    it('skipped backends and invalid files are listed', async () => {
      const skipped = JSON.parse(
        (await explain(['-c', CONFIG, 'explain', '--arn', `arn:aws:iam::${A}:user/alice`, '-o', 'json'])).stdout,
      ) as JsonExplanation
      expect(skipped.skipped).toEqual(['EKSConfigMap (not given: pass --aws-auth)'])
      expect(skipped.result).toMatchObject({ username: 'alice', source: 'MountedFile', rule: 'mapUsers[0]' })

      const invalid = 'test/fixtures/aws-auth/aws-auth-invalid.yaml'
      const r = await explain([
        'explain',
        '--aws-auth',
        invalid,
        '--arn',
        `arn:aws:sts::${A}:assumed-role/ok/s`,
        '-o',
        'json',
      ])
      expect((JSON.parse(r.stdout) as JsonExplanation).invalidFiles).toEqual([invalid])
    })
  })

  describe('other sources', () => {
    it('"-" reads the aws-auth manifest from stdin', async () => {
      const r = await explain(
        ['explain', '--aws-auth', '-', '--arn', `arn:aws:iam::${A}:user/carol`],
        readFileSync(join(ROOT, AWS_AUTH), 'utf8'),
      )
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(
        '  1. EKSConfigMap ((stdin)): user rule mapUsers[0] matches -> username "carol", groups [system:masters]\n',
      )
    })

    it('an invalid aws-auth: its valid entries are used, with a warning that the server would not apply it', async () => {
      const invalid = 'test/fixtures/aws-auth/aws-auth-invalid.yaml'
      const r = await explain(['explain', '--aws-auth', invalid, '--arn', `arn:aws:sts::${A}:assumed-role/ok/s`])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('result: AUTHENTICATED as "ok", groups [system:nodes]\n')
      expect(
        r.stdout.endsWith(
          `warning: ${invalid} has errors (run kube-iam-auth validate); the server would not apply it, only its valid entries were used here\n`,
        ),
      ).toBe(true)
    })

    it('a strict DynamicFile: matched by principal ID (--user-id) and ARN', async () => {
      const args = [
        'explain',
        '--dynamic-file',
        `${DYNAMIC}/strict.json`,
        '--user-id-strict',
        '--arn',
        `arn:aws:sts::${A}:assumed-role/matt/s`,
      ]
      const hit = await explain([...args, '--user-id', 'AROAMATTROLEID000001'])
      expect(hit.code).toBe(0)
      expect(hit.stdout).toContain(
        lines(
          `  1. DynamicFile (${DYNAMIC}/strict.json): role rule mapRoles[0] matches -> username "matt", groups [devs]`,
          'result: AUTHENTICATED as "matt", groups [devs]',
          '  matched DynamicFile mapRoles[0] (role rule)',
        ),
      )
      const miss = await explain([...args, '--user-id', 'AROASOMEONEELSE00001'])
      expect(miss.code).toBe(1)
      expect(miss.stdout).toContain('result: DENIED: identity is not mapped\n')
    })

    it('the DynamicFile named by a server config is used', async () => {
      const r = await explain([
        '-c',
        'test/fixtures/server-config/dynamic.yaml',
        'explain',
        '--arn',
        `arn:aws:sts::${A}:assumed-role/matt/s`,
        '--user-id',
        'AROAMATTROLEID000001',
      ])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('  matched DynamicFile mapRoles[0] (role rule)\n')
    })
  })

  describe('invalid rules meant for the identity are named', () => {
    // bob's only rule is invalid: explain used to say only "no user, role or SSO rule".
    const BOB = [
      'kind: ConfigMap',
      'data:',
      '  mapUsers: |',
      `    - userarn: arn:aws:iam::${A}:user/carol`,
      '      username: carol',
      `    - userarn: arn:aws:iam::${A}:user/bob`,
      '      username: "bob-{{Nope}}"',
      '  mapRoles: |',
      `    - rolearn: arn:aws:sts::${A}:assumed-role/Admin/alice`,
      '      username: alice',
      '      groups: [system:masters]',
      '',
    ].join('\n')

    it('a user rule refused for its username template', async () => {
      const r = await explain(['explain', '--aws-auth', '-', '--arn', `arn:aws:iam::${A}:user/bob`], BOB)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(
        `  1. EKSConfigMap ((stdin)): no user, role or SSO rule for arn:aws:iam::${A}:user/bob; user rule mapUsers[1] ` +
          'is meant for it but is invalid: data.mapUsers[1].username: unknown template variable {{Nope}}',
      )
      expect(r.stdout).toContain('result: DENIED: identity is not mapped\n')
    })

    it("an assumed-role rolearn: bob's session is denied, and the refused rule is named", async () => {
      const r = await explain(
        ['explain', '--aws-auth', '-', '--arn', `arn:aws:sts::${A}:assumed-role/Admin/bob`, '-o', 'json'],
        BOB,
      )
      expect(r.code).toBe(1)
      const out = JSON.parse(r.stdout) as JsonExplanation & { invalidRules: unknown }
      expect(out.invalidRules).toEqual([
        {
          source: 'EKSConfigMap ((stdin))',
          rule: 'mapRoles[0]',
          problems: [
            `data.mapRoles[0].rolearn: 'arn:aws:sts::${A}:assumed-role/Admin/alice' is an assumed-role (session) ARN: ` +
              `roles are matched by role, so it would map every session of arn:aws:iam::${A}:role/Admin, not only ` +
              'this one; map the role ARN (and use {{SessionName}} in the username to tell sessions apart)',
          ],
        },
      ])
    })
  })

  describe('usage errors', () => {
    it('--arn is required', async () => {
      const r = await explain(['explain', '--aws-auth', AWS_AUTH])
      expectResult(
        r,
        1,
        '',
        "Error: --arn is required (the ARN STS reports, e.g. arn:aws:sts::111122223333:assumed-role/Admin/alice)\nRun 'kube-iam-auth explain --help' for usage.\n",
      )
    })

    it('an invalid ARN', async () => {
      const r = await explain(['explain', '--aws-auth', AWS_AUTH, '--arn', 'nope'])
      expectResult(
        r,
        1,
        '',
        "Error: --arn: arn 'nope' is invalid: 'arn: invalid prefix'\nRun 'kube-iam-auth explain --help' for usage.\n",
      )
    })

    it('a missing aws-auth file', async () => {
      const f = 'test/fixtures/aws-auth/no-such-file.yaml'
      const r = await explain(['explain', '--aws-auth', f, '--arn', `arn:aws:iam::${A}:user/carol`])
      expectResult(
        r,
        1,
        '',
        `Error: could not read ${f}: ENOENT: no such file or directory, open '${f}'\nRun 'kube-iam-auth explain --help' for usage.\n`,
      )
    })

    it('no source at all', async () => {
      const r = await explain(['explain', '--arn', `arn:aws:iam::${A}:user/carol`])
      expectResult(
        r,
        1,
        '',
        "Error: give at least one of --config, --aws-auth or --dynamic-file\nRun 'kube-iam-auth explain --help' for usage.\n",
      )
    })
  })
})
