import { describe, expect, it } from 'vitest'
import { ArnInvalid } from '../../src/shared/errors.js'
import { mapIdentity } from '../../src/mapping/chain.js'
import { parseDynamicFile } from '../../src/mapping/dynamicfile/parse.js'
import { explainIdentity, identityFromArn, type ExplainSource } from '../../src/mapping/explain.js'
import { compileRules, type MappingDocument } from '../../src/mapping/rules.js'
import { snapshotOf, StaticMapper } from '../../src/mapping/static.js'
import type { BackendMode } from '../../src/mapping/types.js'

const A = '111122223333'
const B = '444455556666'
const OTHER = '999988887777'

/** A source as `explain` reads it from a file: compiled rules, a static mapper, and the rules for hints. */
function source(
  name: BackendMode,
  origin: string,
  parts: Partial<MappingDocument>,
  reservedPrefixes: string[] = [],
): ExplainSource {
  const { rules, problems } = compileRules({ mapRoles: [], mapUsers: [], mapAccounts: [], ...parts })
  expect(problems).toEqual([])
  return { mapper: new StaticMapper(name, snapshotOf(rules), { reservedPrefixes }), origin, rules }
}

// MountedFile first, EKSConfigMap second, as in a server config `backendMode: [MountedFile, EKSConfigMap]`
const file = source('MountedFile', 'server.yaml', {
  mapRoles: [
    { rolearn: `arn:aws:iam::${A}:role/Admin`, username: 'file-admin:{{SessionName}}', groups: ['system:masters'] },
  ],
  mapUsers: [{ userarn: `arn:aws:iam::${A}:user/alice`, username: 'alice', groups: ['devs'] }],
  mapAccounts: [B],
})
const configMap = source(
  'EKSConfigMap',
  'aws-auth.yaml',
  {
    mapRoles: [
      { rolearn: `arn:aws:iam::${A}:role/team/Admin`, username: 'cm-admin', groups: ['cm-admins'] },
      { rolearn: `arn:aws:iam::${B}:role/Deployer`, username: 'deployer:{{SessionName}}', groups: ['deployers'] },
      { rolearn: `arn:aws:iam::${OTHER}:role/Dev`, username: 'dev', groups: [] },
      {
        rolearn: `arn:aws:iam::${A}:role/eks-node`,
        username: 'system:node:{{EC2PrivateDNSName}}',
        groups: ['system:nodes'],
      },
      { rolearn: `arn:aws:iam::${A}:role/bob`, username: 'bob-role', groups: [] },
      { rolearn: `arn:aws:iam::${A}:role/reserved`, username: 'eks:reserved', groups: [] },
    ],
    mapUsers: [{ userarn: `arn:aws:iam::${A}:user/carol`, username: 'carol', groups: ['system:masters'] }],
  },
  ['eks:', 'aws:'],
)
const chain = [file, configMap]

describe('identityFromArn', () => {
  it('an assumed-role ARN: canonical role ARN, account and session name from the ARN', () => {
    expect(identityFromArn(`arn:aws:sts::${A}:assumed-role/Admin/alice@example.com`)).toEqual({
      arn: `arn:aws:sts::${A}:assumed-role/Admin/alice@example.com`,
      canonicalArn: `arn:aws:iam::${A}:role/Admin`,
      accountId: A,
      userId: '(unknown principal ID)',
      sessionName: 'alice@example.com',
      accessKeyId: 'AKIAEXPLAINEXAMPLE00',
      stsEndpoint: 'sts.amazonaws.com',
    })
  })

  it('an IAM user: unchanged, no session name', () => {
    expect(identityFromArn(`arn:aws:iam::${A}:user/path/alice`)).toMatchObject({
      canonicalArn: `arn:aws:iam::${A}:user/path/alice`,
      accountId: A,
      sessionName: '',
    })
  })

  it('session name, principal ID and access key ID can be given', () => {
    expect(
      identityFromArn(`arn:aws-cn:sts::${A}:assumed-role/R/s`, {
        sessionName: 'other',
        userId: 'AROAX',
        accessKeyId: 'ASIAX',
      }),
    ).toMatchObject({
      canonicalArn: `arn:aws-cn:iam::${A}:role/R`,
      sessionName: 'other',
      userId: 'AROAX',
      accessKeyId: 'ASIAX',
    })
  })

  it.each([
    ['not-an-arn', "arn 'not-an-arn' is invalid: 'arn: invalid prefix'"],
    [`arn:aws:s3:::bucket`, 'service s3 in arn arn:aws:s3:::bucket is not a valid service for identities'],
    [
      `arn:aws:sts::${A}:assumed-role/nosession`,
      `assumed-role arn 'arn:aws:sts::${A}:assumed-role/nosession' does not have a role`,
    ],
  ])('%s is refused', (arn, message) => {
    expect(() => identityFromArn(arn)).toThrow(ArnInvalid)
    expect(() => identityFromArn(arn)).toThrow(message)
  })
})

describe('explainIdentity: precedence', () => {
  it('both backends match: the first wins, the trace says the second also matched', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${A}:assumed-role/Admin/alice@example.com`))
    expect(e.result).toEqual({
      username: 'file-admin:alice-example.com',
      groups: ['system:masters'],
      source: 'MountedFile',
      rule: 'mapRoles[0]',
      kind: 'role',
    })
    expect(e.denial).toBeUndefined()
    expect(e.trace).toEqual([
      'MountedFile (server.yaml): role rule mapRoles[0] matches -> username "file-admin:{{SessionName}}", groups [system:masters]',
      'EKSConfigMap (aws-auth.yaml): role rule mapRoles[0] also matches, but an earlier backend already did',
    ])
    expect(e.hints).toEqual([])
  })

  it('the order of the sources decides', async () => {
    const e = await explainIdentity([configMap, file], identityFromArn(`arn:aws:sts::${A}:assumed-role/Admin/alice`))
    expect(e.result).toMatchObject({ username: 'cm-admin', source: 'EKSConfigMap', rule: 'mapRoles[0]' })
    expect(e.trace[1]).toBe(
      'MountedFile (server.yaml): role rule mapRoles[0] also matches, but an earlier backend already did',
    )
  })

  it('an explicit rule in a later backend beats an account allow-list in an earlier one', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${B}:assumed-role/Deployer/ci`))
    expect(e.result).toEqual({
      username: 'deployer:ci',
      groups: ['deployers'],
      source: 'EKSConfigMap',
      rule: 'mapRoles[1]',
      kind: 'role',
    })
    expect(e.trace).toEqual([
      `MountedFile (server.yaml): no user, role or SSO rule for arn:aws:iam::${B}:role/Deployer; account ${B} is allowed by mapAccounts[0]`,
      'EKSConfigMap (aws-auth.yaml): role rule mapRoles[1] matches -> username "deployer:{{SessionName}}", groups [deployers]',
    ])
  })

  it('account allow-list: username is the canonical ARN, no groups', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${B}:assumed-role/Anything/s`))
    expect(e.result).toEqual({
      username: `arn:aws:iam::${B}:role/Anything`,
      groups: [],
      source: 'MountedFile',
      rule: 'mapAccounts[0]',
      kind: 'account',
    })
    expect(e.trace).toEqual([
      `MountedFile (server.yaml): no user, role or SSO rule for arn:aws:iam::${B}:role/Anything; account ${B} is allowed by mapAccounts[0]`,
      `EKSConfigMap (aws-auth.yaml): no user, role or SSO rule for arn:aws:iam::${B}:role/Anything`,
    ])
  })

  it("agrees with the server's chain for every identity", async () => {
    const arns = [
      `arn:aws:sts::${A}:assumed-role/Admin/alice`,
      `arn:aws:iam::${A}:user/alice`,
      `arn:aws:iam::${A}:user/carol`,
      `arn:aws:sts::${B}:assumed-role/Deployer/ci`,
      `arn:aws:sts::${B}:assumed-role/Other/ci`,
    ]
    const dns = async (id: string) => `ip-${id}.ec2.internal`
    for (const arn of arns) {
      const identity = identityFromArn(arn)
      const e = await explainIdentity(chain, identity, dns)
      expect(e.result).toEqual(
        await mapIdentity(
          chain.map((s) => s.mapper),
          identity,
          dns,
        ),
      )
    }
  })
})

describe('explainIdentity: denials', () => {
  it('nothing matches -> "identity is not mapped", one trace line per backend', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:iam::${A}:user/mallory`))
    expect(e.result).toBeUndefined()
    expect(e.denial).toBe('identity is not mapped')
    expect(e.trace).toEqual([
      `MountedFile (server.yaml): no user, role or SSO rule for arn:aws:iam::${A}:user/mallory`,
      `EKSConfigMap (aws-auth.yaml): no user, role or SSO rule for arn:aws:iam::${A}:user/mallory`,
    ])
    expect(e.hints).toEqual([])
  })

  it('a reserved username prefix denies, naming the backend and the rule', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${A}:assumed-role/reserved/s`))
    expect(e.result).toBeUndefined()
    expect(e.denial).toBe(
      "invalid username 'eks:reserved' for mapper EKSConfigMap (mapRoles[5]): username must not begin with the following prefixes: [eks: aws:]",
    )
    expect(e.trace[1]).toBe(
      'EKSConfigMap (aws-auth.yaml): role rule mapRoles[5] matches -> username "eks:reserved", groups []',
    )
  })

  it('{{EC2PrivateDNSName}} for a session that is not an instance ID denies', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${A}:assumed-role/eks-node/not-an-instance`))
    expect(e.denial).toBe(
      'mapper EKSConfigMap mapRoles[3]: error rendering username template "system:node:{{EC2PrivateDNSName}}": SessionName did not contain an instance id',
    )
  })
})

describe('explainIdentity: near-miss hints', () => {
  it('the same role name in another account', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${A}:assumed-role/Dev/bob`))
    expect(e.denial).toBe('identity is not mapped')
    expect(e.hints).toEqual([
      `EKSConfigMap mapRoles[2] maps arn:aws:iam::${OTHER}:role/dev (role): same name as arn:aws:iam::${A}:role/Dev, but a different ARN`,
    ])
  })

  it('a user whose name is mapped as a role', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:iam::${A}:user/bob`))
    expect(e.denial).toBe('identity is not mapped')
    expect(e.hints).toEqual([
      `EKSConfigMap mapRoles[4] maps arn:aws:iam::${A}:role/bob (role): same name as arn:aws:iam::${A}:user/bob, but a different ARN`,
    ])
  })

  it('a role whose name is mapped as a user, and the same user in another account', async () => {
    const e = await explainIdentity(chain, identityFromArn(`arn:aws:sts::${A}:assumed-role/carol/s`))
    expect(e.hints).toEqual([
      `EKSConfigMap mapUsers[0] maps arn:aws:iam::${A}:user/carol (user): same name as arn:aws:iam::${A}:role/carol, but a different ARN`,
    ])
    const other = await explainIdentity(chain, identityFromArn(`arn:aws:iam::${OTHER}:user/alice`))
    expect(other.hints).toEqual([
      `MountedFile mapUsers[0] maps arn:aws:iam::${A}:user/alice (user): same name as arn:aws:iam::${OTHER}:user/alice, but a different ARN`,
    ])
  })

  it('a configured role path is not a near miss: it matches', async () => {
    const e = await explainIdentity([configMap], identityFromArn(`arn:aws:sts::${A}:assumed-role/Admin/s`))
    expect(e.result?.username).toBe('cm-admin')
    expect(e.hints).toEqual([])
  })

  it('sources without rules (DynamicFile) give no hints', async () => {
    const { rules } = parseDynamicFile(
      JSON.stringify({ mapRoles: [{ rolearn: `arn:aws:iam::${OTHER}:role/Dev`, username: 'dev' }] }),
      { userIdStrict: false },
    )
    const dynamic: ExplainSource = { mapper: new StaticMapper('DynamicFile', rules!), origin: 'mapping.json' }
    const e = await explainIdentity([dynamic], identityFromArn(`arn:aws:sts::${A}:assumed-role/Dev/s`))
    expect(e.trace).toEqual([`DynamicFile (mapping.json): no user, role or SSO rule for arn:aws:iam::${A}:role/Dev`])
    expect(e.hints).toEqual([])
  })
})

describe('explainIdentity: templates', () => {
  it('{{EC2PrivateDNSName}} is shown as a placeholder when no EC2 lookup is given', async () => {
    const e = await explainIdentity(
      chain,
      identityFromArn(`arn:aws:sts::${A}:assumed-role/eks-node/i-0123456789abcdef0`),
    )
    expect(e.result).toEqual({
      username: 'system:node:{{EC2PrivateDNSName of i-0123456789abcdef0}}',
      groups: ['system:nodes'],
      source: 'EKSConfigMap',
      rule: 'mapRoles[3]',
      kind: 'role',
    })
  })

  it('a given EC2 lookup is used', async () => {
    const looked: string[] = []
    const e = await explainIdentity(
      chain,
      identityFromArn(`arn:aws:sts::${A}:assumed-role/eks-node/i-0123456789abcdef0`),
      async (id) => {
        looked.push(id)
        return 'ip-10-0-0-1.ec2.internal'
      },
    )
    expect(e.result?.username).toBe('system:node:ip-10-0-0-1.ec2.internal')
    expect(looked).toEqual(['i-0123456789abcdef0'])
  })

  it('SSO rules are traced as sso rules', async () => {
    const sso = source('MountedFile', 'server.yaml', {
      mapRoles: [
        { sso: { permissionSetName: 'ReadOnly', accountID: A }, username: 'ro:{{SessionName}}', groups: ['view'] },
      ],
    })
    const e = await explainIdentity(
      [sso],
      identityFromArn(`arn:aws:sts::${A}:assumed-role/AWSReservedSSO_ReadOnly_0123abcd/jane@example.com`),
    )
    expect(e.trace).toEqual([
      'MountedFile (server.yaml): sso rule mapRoles[0] matches -> username "ro:{{SessionName}}", groups [view]',
    ])
    expect(e.result).toEqual({
      username: 'ro:jane-example.com',
      groups: ['view'],
      source: 'MountedFile',
      rule: 'mapRoles[0]',
      kind: 'sso',
    })
  })

  it('an empty chain denies', async () => {
    const e = await explainIdentity([], identityFromArn(`arn:aws:iam::${A}:user/alice`))
    expect(e).toMatchObject({ denial: 'identity is not mapped', trace: [], hints: [] })
  })
})

describe('explainIdentity: role patterns', () => {
  /** A source whose document may have errors, as `explain` reads an invalid file (its valid entries apply). */
  function withErrors(parts: Partial<MappingDocument>): ExplainSource {
    const { rules, invalid } = compileRules({ mapRoles: [], mapUsers: [], mapAccounts: [], ...parts })
    return { mapper: new StaticMapper('EKSConfigMap', snapshotOf(rules)), origin: 'aws-auth.yaml', rules, invalid }
  }
  const arn = (name: string, account = A) => `arn:aws:iam::${account}:role/${name}`

  it('an SSO permission-set rule that beats a pattern says so', async () => {
    const s = source('EKSConfigMap', 'aws-auth.yaml', {
      mapRoles: [
        { rolearn: arn('awsreservedsso_*'), username: 'any-sso', groups: [] },
        { sso: { permissionSetName: 'ReadOnly', accountID: A }, username: 'ro', groups: [] },
      ],
    })
    const e = await explainIdentity(
      [s],
      identityFromArn(`arn:aws:sts::${A}:assumed-role/AWSReservedSSO_ReadOnly_0123abcd/jane`),
    )
    expect(e.trace).toEqual([
      `EKSConfigMap (aws-auth.yaml): sso rule mapRoles[1] matches -> username "ro", groups []; role pattern mapRoles[0] (${arn('awsreservedsso_*')}) also matches but an SSO permission-set rule beats every pattern`,
    ])
  })

  it('a pattern in a later backend is traced like any explicit match there', async () => {
    const later = source('EKSConfigMap', 'aws-auth.yaml', {
      mapRoles: [{ rolearn: arn('*'), username: 'x', groups: [] }],
    })
    const e = await explainIdentity([file, later], identityFromArn(`arn:aws:sts::${A}:assumed-role/Admin/a`))
    expect(e.trace[1]).toBe(
      `EKSConfigMap (aws-auth.yaml): role pattern mapRoles[0] (${arn('*')}) also matches, but an earlier backend already did`,
    )
  })

  it('an invalid exact entry for the role: the matching patterns are named, none applies', async () => {
    const s = withErrors({
      mapRoles: [
        { rolearn: arn('dev-*'), username: 'dev', groups: [] },
        { rolearn: arn('dev-alice'), username: 'alice-{{Nope}}', groups: [] },
      ],
    })
    const e = await explainIdentity([s], identityFromArn(`arn:aws:sts::${A}:assumed-role/dev-alice/a`))
    expect(e.denial).toBe('identity is not mapped')
    expect(e.trace[0]).toMatch(
      new RegExp(
        `; role rule mapRoles\\[1\\] is meant for it but is invalid: mapRoles\\[1\\]\\.username: unknown template variable \\{\\{Nope\\}\\} .*; role pattern mapRoles\\[0\\] \\(${arn('dev-\\*')}\\) matches its name, but no pattern applies while the exact entry for this role is invalid$`,
      ),
    )
  })

  it('an invalid, more specific pattern: the weaker valid one that also matches is named, and why it does not stand in', async () => {
    const s = withErrors({
      mapRoles: [
        { rolearn: arn('*'), username: 'anyone', groups: [] },
        { rolearn: arn('dev-*'), username: 'dev-{{Nope}}', groups: [] },
      ],
    })
    const e = await explainIdentity([s], identityFromArn(`arn:aws:sts::${A}:assumed-role/dev-alice/a`))
    expect(e.denial).toBe('identity is not mapped')
    expect(e.trace[0]).toContain(
      `; role pattern mapRoles[1] (${arn('dev-*')}) matches it but is invalid: mapRoles[1].username:`,
    )
    expect(e.trace[0]).toMatch(
      /; role pattern mapRoles\[0\] \(arn:aws:iam::111122223333:role\/\*\) also matches, but a weaker pattern never stands in for an invalid, more specific one$/,
    )
    expect(e.invalidRules.map((r) => r.rule)).toEqual(['mapRoles[1]'])
  })

  it('a pattern of another partition is a near miss; one of wildcards only is not worth a hint', async () => {
    const s = source('EKSConfigMap', 'aws-auth.yaml', {
      mapRoles: [
        { rolearn: `arn:aws-cn:iam::${A}:role/dev-*`, username: 'cn', groups: [] },
        { rolearn: arn('*', B), username: 'b', groups: [] },
      ],
    })
    const e = await explainIdentity([s], identityFromArn(`arn:aws:sts::${A}:assumed-role/dev-alice/a`))
    expect(e.hints).toEqual([
      `EKSConfigMap mapRoles[0] is role pattern arn:aws-cn:iam::${A}:role/dev-*: it matches the role name, but in partition aws-cn, not aws (patterns never match across accounts or partitions)`,
    ])
  })
})
