import { describe, expect, it } from 'vitest'
import {
  compileRules,
  invalidRulesFor,
  EMPTY_RULES,
  lookupRules,
  type MappingDocument,
} from '../../src/mapping/rules.js'
import type { Problem } from '../../src/shared/problem.js'
import { stripRolePath as stripPath } from '../../src/sts/arn.js'
import type { RoleMapping, UserMapping } from '../../src/mapping/types.js'
import { identityOf, sessionOf, userOf } from '../support/identities.js'

const KNOWN_VARS = '{{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}}'

function doc(parts: Partial<MappingDocument>): MappingDocument {
  return { mapRoles: [], mapUsers: [], mapAccounts: [], ...parts }
}

function role(rolearn: string, username = 'u', groups: string[] = []): RoleMapping {
  return { rolearn, username, groups }
}

function sso(permissionSetName: string, accountID: string, partition?: string, username = 'sso-user'): RoleMapping {
  return {
    sso: { permissionSetName, accountID, ...(partition === undefined ? {} : { partition }) },
    username,
    groups: [],
  }
}

function user(userarn: string, username = 'u', groups: string[] = []): UserMapping {
  return { userarn, username, groups }
}

/** Compiles, expecting no problems at all. */
function compileClean(d: MappingDocument) {
  const { rules, problems } = compileRules(d)
  expect(problems).toEqual([])
  return rules
}

/** RegExp.source of a pattern written plainly (source escapes `/`). */
const source = (pattern: string) => new RegExp(pattern).source
const err = (path: string, message: string): Problem => ({ path, message, severity: 'error' })
const warn = (path: string, message: string): Problem => ({ path, message, severity: 'warning' })

// upstream's pkg/config TestSSOConfigMapping and friends
describe('SSO role mapping {ViewOnlyAccess, 012345678912}', () => {
  const rules = compileClean(doc({ mapRoles: [sso('ViewOnlyAccess', '012345678912')] }))

  it('is keyed by the lower-cased permission set, a suffix without "_" (our "Key")', () => {
    expect(rules.sso).toHaveLength(1)
    expect(rules.sso[0]!.rule).toBe('mapRoles[0]')
    expect(rules.sso[0]!.pattern.source).toBe(
      source('^arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_[a-z0-9]+$'),
    )
    expect(rules.roles.size).toBe(0)
    expect(rules.counts).toEqual({ roles: 1, users: 0, accounts: 0 })
  })

  it.each([
    ['arn:aws:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_abcdefg', true],
    ['arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_abcdefg', true],
    // IAM Identity Center roles live under a path; STS reports the session without it
    [
      'arn:aws:iam::012345678912:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ViewOnlyAccess_0a1b2c3d4e5f6789',
      true,
    ],
    ['arn:aws:iam::012345678912:role/AWSReservedSSO_Billing_hijklmn', false],
    ['arn:aws:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_', false],
    ['arn:aws:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccessX_abcdefg', false],
    ['arn:aws:iam::012345678912:role/XAWSReservedSSO_ViewOnlyAccess_abcdefg', false],
    ['arn:aws:iam::999999999999:role/AWSReservedSSO_ViewOnlyAccess_abcdefg', false],
    ['arn:aws-cn:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_abcdefg', false],
    ['arn:aws:iam::012345678912:user/AWSReservedSSO_ViewOnlyAccess_abcdefg', false],
  ])('canonical %s matches: %s', (canonical, matches) => {
    const m = lookupRules(rules, identityOf(canonical, { sessionName: 'jdoe@example.com' }))
    expect(m).toEqual(
      matches ? { mapping: { username: 'sso-user', groups: [] }, rule: 'mapRoles[0]', kind: 'sso' } : undefined,
    )
  })

  it('matches the assumed-role session STS returns', () => {
    const id = sessionOf('012345678912', 'AWSReservedSSO_ViewOnlyAccess_abcdefg', 'jdoe@example.com')
    expect(lookupRules(rules, id)?.kind).toBe('sso')
  })

  it.each<[string, RoleMapping, Problem[]]>([
    [
      'partition aws-nk',
      sso('ViewOnlyAccess', '012345678912', 'aws-nk'),
      [err('mapRoles[0].sso.partition', "partition 'aws-nk' is not a valid AWS partition")],
    ],
    [
      'accountID 0123456789',
      sso('ViewOnlyAccess', '0123456789'),
      [err('mapRoles[0].sso.accountID', "AccountID '0123456789' is not a valid AWS Account ID")],
    ],
    [
      'permission set ViewOnlyAccess*',
      sso('ViewOnlyAccess*', '012345678912'),
      [
        err(
          'mapRoles[0].sso.permissionSetName',
          "PermissionSetName 'ViewOnlyAccess*' is not a valid AWS SSO PermissionSet Name",
        ),
      ],
    ],
    [
      'permission set longer than 32 characters',
      sso('A'.repeat(33), '012345678912'),
      [
        err(
          'mapRoles[0].sso.permissionSetName',
          `PermissionSetName '${'A'.repeat(33)}' is not a valid AWS SSO PermissionSet Name`,
        ),
      ],
    ],
    [
      'empty permission set',
      sso('', '012345678912'),
      [err('mapRoles[0].sso.permissionSetName', "PermissionSetName '' is not a valid AWS SSO PermissionSet Name")],
    ],
    [
      'every field wrong: all reported',
      sso('a b', '12', 'mars'),
      [
        err('mapRoles[0].sso.accountID', "AccountID '12' is not a valid AWS Account ID"),
        err('mapRoles[0].sso.permissionSetName', "PermissionSetName 'a b' is not a valid AWS SSO PermissionSet Name"),
        err('mapRoles[0].sso.partition', "partition 'mars' is not a valid AWS partition"),
      ],
    ],
    [
      'accountID given as a number (raw documents)',
      { sso: { permissionSetName: 'X', accountID: 12345678901 as unknown as string }, username: 'u', groups: [] },
      [err('mapRoles[0].sso.accountID', "AccountID '12345678901' is not a valid AWS Account ID")],
    ],
  ])('invalid SSO mapping: %s', (_name, mapping, problems) => {
    const { rules: r, problems: got } = compileRules(doc({ mapRoles: [mapping] }))
    expect(got).toEqual(problems)
    expect(r.sso).toEqual([])
  })

  it('accepts the special characters IAM allows in permission set names, literally', () => {
    const r = compileClean(doc({ mapRoles: [sso('a.b+c=d,e@f-g', '012345678912')] }))
    const hit = sessionOf('012345678912', 'AWSReservedSSO_a.b+c=d,e@f-g_abc123', 's')
    expect(lookupRules(r, hit)?.rule).toBe('mapRoles[0]')
    // `.` and `+` are not regular-expression operators here
    expect(lookupRules(r, sessionOf('012345678912', 'AWSReservedSSO_aXb+c=d,e@f-g_abc123', 's'))).toBeUndefined()
    expect(lookupRules(r, sessionOf('012345678912', 'AWSReservedSSO_a.bbc=d,e@f-g_abc123', 's'))).toBeUndefined()
  })
})

describe('SSO "_" boundary: the suffix never contains "_"', () => {
  const rules = compileClean(
    doc({
      mapRoles: [
        sso('Admin', '111122223333', undefined, 'admin'),
        sso('Admin_Extra', '111122223333', undefined, 'extra'),
      ],
    }),
  )

  it.each([
    ['AWSReservedSSO_Admin_0123456789abcdef', 'admin'],
    ['AWSReservedSSO_Admin_Extra_0123456789abcdef', 'extra'],
    ['AWSReservedSSO_Admin_Extra_Other_0123456789abcdef', undefined],
    ['AWSReservedSSO_AdminExtra_0123456789abcdef', undefined],
  ])('%s -> %s', (roleName, username) => {
    expect(lookupRules(rules, sessionOf('111122223333', roleName, 's'))?.mapping.username).toBe(username)
  })

  it('set Admin alone never matches the roles of set Admin_Extra', () => {
    const only = compileClean(doc({ mapRoles: [sso('Admin', '111122223333')] }))
    expect(
      lookupRules(only, sessionOf('111122223333', 'AWSReservedSSO_Admin_Extra_0123456789abcdef', 's')),
    ).toBeUndefined()
  })
})

// upstream's SSO matcher (pkg/config/types.go) bug: a set partition (even "aws") made the pattern `arn::iam::...`, which never matched
describe('SSO partition', () => {
  const aws = sessionOf('111122223333', 'AWSReservedSSO_Dev_abc123', 's')
  const cn = sessionOf('111122223333', 'AWSReservedSSO_Dev_abc123', 's', { partition: 'aws-cn' })
  const gov = sessionOf('111122223333', 'AWSReservedSSO_Dev_abc123', 's', { partition: 'aws-us-gov' })

  it.each<[string, string | undefined, { aws: boolean; cn: boolean; gov: boolean }]>([
    ['absent (defaults to aws)', undefined, { aws: true, cn: false, gov: false }],
    ['empty (upstream treats it as aws)', '', { aws: true, cn: false, gov: false }],
    ['aws', 'aws', { aws: true, cn: false, gov: false }],
    ['aws-cn', 'aws-cn', { aws: false, cn: true, gov: false }],
    ['aws-us-gov', 'aws-us-gov', { aws: false, cn: false, gov: true }],
  ])('partition %s', (_name, partition, expected) => {
    const rules = compileClean(doc({ mapRoles: [sso('Dev', '111122223333', partition)] }))
    expect({
      aws: lookupRules(rules, aws) !== undefined,
      cn: lookupRules(rules, cn) !== undefined,
      gov: lookupRules(rules, gov) !== undefined,
    }).toEqual(expected)
  })
})

describe('role ARN mapping role/KubeAdmin', () => {
  const rules = compileClean(
    doc({ mapRoles: [role('arn:aws:iam::012345678912:role/KubeAdmin', 'admin', ['system:masters'])] }),
  )

  it('is keyed by the lower-cased role ARN', () => {
    expect([...rules.roles.keys()]).toEqual(['arn:aws:iam::012345678912:role/kubeadmin'])
  })

  it.each([
    ['arn:aws:iam::012345678912:role/KubeAdmin', true],
    ['arn:aws:iam::012345678912:role/kubeadmin', true],
    ['arn:aws:sts::012345678912:assumed-role/KubeAdmin/session', true],
    ['arn:aws:sts::012345678912:assumed-role/KUBEADMIN/session', true],
    ['arn:aws:iam::012345678912:role/notKubeAdmin', false],
    ['arn:aws:iam::012345678912:role/KubeAdmin2', false],
    ['arn:aws:iam::012345678913:role/KubeAdmin', false],
    ['arn:aws:iam::012345678912:user/KubeAdmin', false],
  ])('%s matches: %s', (arn, matches) => {
    expect(lookupRules(rules, identityOf(arn))).toEqual(
      matches
        ? { mapping: { username: 'admin', groups: ['system:masters'] }, rule: 'mapRoles[0]', kind: 'role' }
        : undefined,
    )
  })
})

describe('user ARN mapping user/Shanice', () => {
  const rules = compileClean(doc({ mapUsers: [user('arn:aws:iam::012345678912:user/Shanice', 'shanice')] }))

  it('is keyed by the lower-cased user ARN (upstream keeps the case; its lookup ignores it anyway)', () => {
    expect([...rules.users.keys()]).toEqual(['arn:aws:iam::012345678912:user/shanice'])
  })

  it.each([
    ['arn:aws:iam::012345678912:user/Shanice', true],
    ['arn:aws:iam::012345678912:user/shanice', true],
    ['arn:aws:iam::012345678912:user/SHANICE', true],
    ['arn:aws:iam::012345678912:user/notShanice', false],
    ['arn:aws:iam::012345678912:role/Shanice', false],
  ])('%s matches: %s', (arn, matches) => {
    expect(lookupRules(rules, identityOf(arn))).toEqual(
      matches ? { mapping: { username: 'shanice', groups: [] }, rule: 'mapUsers[0]', kind: 'user' } : undefined,
    )
  })
})

describe('invalid entries', () => {
  it.each<[string, Partial<MappingDocument>, Problem[]]>([
    [
      'empty role mapping',
      { mapRoles: [{ username: 'u', groups: [] }] },
      [err('mapRoles[0]', 'one of rolearn or SSO must be supplied')],
    ],
    ['empty rolearn', { mapRoles: [role('')] }, [err('mapRoles[0]', 'one of rolearn or SSO must be supplied')]],
    [
      'rolearn and sso',
      {
        mapRoles: [
          {
            rolearn: 'arn:aws:iam::111122223333:role/a',
            sso: { permissionSetName: 'X', accountID: '111122223333' },
            username: 'u',
            groups: [],
          },
        ],
      },
      [err('mapRoles[0]', 'only one of rolearn or SSO can be supplied')],
    ],
    ['empty userarn', { mapUsers: [user('')] }, [err('mapUsers[0].userarn', 'value for userarn must be supplied')]],
    [
      'missing userarn',
      { mapUsers: [{ username: 'u', groups: [] } as unknown as UserMapping] },
      [err('mapUsers[0].userarn', 'value for userarn must be supplied')],
    ],
    [
      'rolearn not an ARN',
      { mapRoles: [role('not-an-arn')] },
      [err('mapRoles[0].rolearn', "error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'")],
    ],
    [
      'rolearn with an unknown partition',
      { mapRoles: [role('arn:aws-nk:iam::111122223333:role/a')] },
      [
        err(
          'mapRoles[0].rolearn',
          "error canonicalizing ARN: arn 'arn:aws-nk:iam::111122223333:role/a' does not have a recognized partition",
        ),
      ],
    ],
    [
      'rolearn that is a user',
      { mapRoles: [role('arn:aws:iam::111122223333:user/bob')] },
      [err('mapRoles[0].rolearn', "'arn:aws:iam::111122223333:user/bob' is not a role ARN")],
    ],
    [
      'userarn that is a role',
      { mapUsers: [user('arn:aws:iam::111122223333:role/bob')] },
      [err('mapUsers[0].userarn', "'arn:aws:iam::111122223333:role/bob' is a role ARN; map it under mapRoles")],
    ],
    [
      'userarn that is an assumed role',
      { mapUsers: [user('arn:aws:sts::111122223333:assumed-role/bob/s')] },
      [
        err(
          'mapUsers[0].userarn',
          "'arn:aws:sts::111122223333:assumed-role/bob/s' is a role ARN; map it under mapRoles",
        ),
      ],
    ],
    [
      'userarn not an ARN',
      { mapUsers: [user('garbage')] },
      [err('mapUsers[0].userarn', "error canonicalizing ARN: arn 'garbage' is invalid: 'arn: invalid prefix'")],
    ],
    [
      'empty username',
      { mapRoles: [role('arn:aws:iam::111122223333:role/a', ' ')] },
      [err('mapRoles[0].username', 'username must be a non-empty string')],
    ],
    [
      'missing username on a user',
      { mapUsers: [{ userarn: 'arn:aws:iam::111122223333:user/a', groups: [] } as unknown as UserMapping] },
      [err('mapUsers[0].username', 'username must be a non-empty string')],
    ],
    [
      'an empty group',
      { mapRoles: [role('arn:aws:iam::111122223333:role/a', 'u', ['ok', ''])] },
      [err('mapRoles[0].groups', 'groups must be a list of non-empty strings')],
    ],
    [
      'groups not a list',
      { mapUsers: [{ ...user('arn:aws:iam::111122223333:user/a'), groups: 'g' as unknown as string[] }] },
      [err('mapUsers[0].groups', 'groups must be a list of non-empty strings')],
    ],
    [
      'unknown template variable in the username',
      { mapRoles: [role('arn:aws:iam::111122223333:role/a', 'u-{{Foo}}')] },
      [err('mapRoles[0].username', `unknown template variable {{Foo}} (known: ${KNOWN_VARS})`)],
    ],
    [
      'unbalanced braces in a group',
      { mapUsers: [user('arn:aws:iam::111122223333:user/a', 'u', ['ok', 'g-{{AccountID}'])] },
      [err('mapUsers[0].groups[1]', `unbalanced "{{" or "}}" in 'g-{{AccountID}'`)],
    ],
    [
      'account IDs of the wrong length',
      { mapAccounts: ['12345678901', '1234567890123', 'abcdefghijkl', ''] },
      [
        err('mapAccounts[0]', "'12345678901' is not a valid AWS account ID (12 digits; quote it in YAML)"),
        err('mapAccounts[1]', "'1234567890123' is not a valid AWS account ID (12 digits; quote it in YAML)"),
        err('mapAccounts[2]', "'abcdefghijkl' is not a valid AWS account ID (12 digits; quote it in YAML)"),
        err('mapAccounts[3]', "'' is not a valid AWS account ID (12 digits; quote it in YAML)"),
      ],
    ],
    [
      'an account ID that is a number (an unquoted YAML value that lost its leading zero)',
      { mapAccounts: [12345678901 as unknown as string] },
      [err('mapAccounts[0]', "'12345678901' is not a valid AWS account ID (12 digits; quote it in YAML)")],
    ],
  ])('%s', (_name, parts, problems) => {
    const { rules, problems: got } = compileRules(doc(parts))
    expect(got).toEqual(problems)
    expect(rules.counts).toEqual({ roles: 0, users: 0, accounts: 0 })
  })

  it('reports every problem of a document at once, each located, and keeps the valid entries', () => {
    const { rules, problems } = compileRules(
      doc({
        mapRoles: [role('arn:aws:iam::111122223333:role/ok'), role('bad'), sso('X', '1')],
        mapUsers: [user(''), user('arn:aws:iam::111122223333:user/ok')],
        mapAccounts: ['111122223333', '1'],
      }),
    )
    expect(problems.map((p) => `${p.severity} ${p.path}`)).toEqual([
      'error mapUsers[0].userarn',
      'error mapRoles[1].rolearn',
      'error mapRoles[2].sso.accountID',
      'error mapAccounts[1]',
    ])
    expect(rules.counts).toEqual({ roles: 1, users: 1, accounts: 1 })
  })

  it('prefixes every path', () => {
    const { problems } = compileRules(
      doc({ mapRoles: [role('arn:aws:iam::111122223333:role/a'), role('')] }),
      'server.',
    )
    expect(problems).toEqual([err('server.mapRoles[1]', 'one of rolearn or SSO must be supplied')])
  })
})

// upstream's pkg/mapper/file TestNewFileMapper / TestMap. Upstream's file mapper rewrites the
// assumed-role rolearn of that fixture into its role, granting every session of the role; here such
// an entry is an error (see 'assumed-role ARNs under mapRoles'), so the fixture is compiled without it.
describe("upstream's file-mapper test document (pkg/mapper/file)", () => {
  const { rules, problems } = compileRules(
    doc({
      mapRoles: [
        role('arn:aws:iam::012345678910:role/test-role', 'shreyas', ['system:masters']),
        sso('CookieCutterPermissions', '012345678910', undefined, 'cookie-cutter'),
        role('arn:aws:iam::012345678910:role/test-assumed-role', 'test', ['system:masters']),
      ],
      mapUsers: [user('arn:aws:iam::012345678910:user/donald', 'donald', ['system:masters'])],
      mapAccounts: ['000000000000'],
    }),
  )

  it('compiles without problems', () => expect(problems).toEqual([]))

  it('keys roles by the iam role ARN and users by ARN', () => {
    expect([...rules.roles.keys()]).toEqual([
      'arn:aws:iam::012345678910:role/test-role',
      'arn:aws:iam::012345678910:role/test-assumed-role',
    ])
    expect(rules.sso.map((s) => s.pattern.source)).toEqual([
      source('^arn:aws:iam::012345678910:role/awsreservedsso_cookiecutterpermissions_[a-z0-9]+$'),
    ])
    expect([...rules.users.keys()]).toEqual(['arn:aws:iam::012345678910:user/donald'])
    expect([...rules.accounts]).toEqual([['000000000000', 'mapAccounts[0]']])
    expect(rules.counts).toEqual({ roles: 3, users: 1, accounts: 1 })
  })

  it.each([
    ['arn:aws:iam::012345678910:role/test-role', 'shreyas', 'mapRoles[0]', 'role'],
    ['arn:aws:sts::012345678910:assumed-role/test-role/s', 'shreyas', 'mapRoles[0]', 'role'],
    [
      'arn:aws:iam::012345678910:role/awsreservedsso_cookiecutterpermissions_123123123',
      'cookie-cutter',
      'mapRoles[1]',
      'sso',
    ],
    ['arn:aws:sts::012345678910:assumed-role/test-assumed-role/another-session', 'test', 'mapRoles[2]', 'role'],
    ['arn:aws:iam::012345678910:user/donald', 'donald', 'mapUsers[0]', 'user'],
  ])('%s -> %s (%s)', (arn, username, rule, kind) => {
    expect(lookupRules(rules, identityOf(arn))).toMatchObject({ mapping: { username }, rule, kind })
  })

  it("does not map the allowed account explicitly (that is the chain's account step)", () => {
    expect(lookupRules(rules, identityOf('arn:aws:iam::000000000000:user/anyone'))).toBeUndefined()
  })
})

// upstream's mappers compare the configured role ARN whole: one with a path never matched
describe('role paths', () => {
  it('a configured role/team/x matches the session of role x (STS reports no path)', () => {
    const rules = compileClean(doc({ mapRoles: [role('arn:aws:iam::111122223333:role/team/sub/x', 'x')] }))
    expect([...rules.roles.keys()]).toEqual(['arn:aws:iam::111122223333:role/x'])
    expect(lookupRules(rules, sessionOf('111122223333', 'x', 's'))?.mapping.username).toBe('x')
    expect(lookupRules(rules, identityOf('arn:aws:iam::111122223333:role/x'))?.mapping.username).toBe('x')
    expect(lookupRules(rules, sessionOf('111122223333', 'y', 's'))).toBeUndefined()
  })

  it('a configured role/x matches an identity whose canonical ARN keeps a path', () => {
    const rules = compileClean(doc({ mapRoles: [role('arn:aws:iam::111122223333:role/x', 'x')] }))
    const id = identityOf('arn:aws:sts::111122223333:assumed-role/team/x/s')
    expect(id.canonicalArn).toBe('arn:aws:iam::111122223333:role/team/x')
    expect(lookupRules(rules, id)?.mapping.username).toBe('x')
    expect(lookupRules(rules, identityOf('arn:aws:iam::111122223333:role/team/x'))?.mapping.username).toBe('x')
  })

  it('user ARNs keep their paths', () => {
    const rules = compileClean(doc({ mapUsers: [user('arn:aws:iam::111122223333:user/team/Bob', 'team-bob')] }))
    expect([...rules.users.keys()]).toEqual(['arn:aws:iam::111122223333:user/team/bob'])
    expect(lookupRules(rules, userOf('111122223333', 'team/Bob'))?.mapping.username).toBe('team-bob')
    expect(lookupRules(rules, userOf('111122223333', 'Bob'))).toBeUndefined()
    const plain = compileClean(doc({ mapUsers: [user('arn:aws:iam::111122223333:user/Bob', 'bob')] }))
    expect(lookupRules(plain, userOf('111122223333', 'team/Bob'))).toBeUndefined()
  })
})

describe('duplicates: a warning, and the first entry wins', () => {
  it('roles, including the same role written with a path or another case', () => {
    const { rules, problems } = compileRules(
      doc({
        mapRoles: [
          role('arn:aws:iam::111122223333:role/Admin', 'first'),
          role('arn:aws:iam::111122223333:role/ops/admin', 'second'),
          role('arn:aws:iam::111122223333:role/ADMIN', 'third'),
        ],
      }),
    )
    expect(problems).toEqual([
      warn('mapRoles[1].rolearn', 'duplicate of mapRoles[0] (role paths are ignored); the first entry wins'),
      warn('mapRoles[2].rolearn', 'duplicate of mapRoles[0] (role paths are ignored); the first entry wins'),
    ])
    expect(lookupRules(rules, sessionOf('111122223333', 'Admin', 's'))).toMatchObject({
      mapping: { username: 'first' },
      rule: 'mapRoles[0]',
    })
    expect(rules.counts.roles).toBe(1)
  })

  it('users, case-insensitively', () => {
    const { rules, problems } = compileRules(
      doc({
        mapUsers: [
          user('arn:aws:iam::111122223333:user/Bob', 'first'),
          user('arn:aws:iam::111122223333:user/bob', 'second'),
        ],
      }),
    )
    expect(problems).toEqual([warn('mapUsers[1].userarn', 'duplicate of mapUsers[0]; the first entry wins')])
    expect(lookupRules(rules, userOf('111122223333', 'BOB'))).toMatchObject({
      mapping: { username: 'first' },
      rule: 'mapUsers[0]',
    })
  })

  it('SSO permission sets, case-insensitively', () => {
    const { rules, problems } = compileRules(
      doc({ mapRoles: [sso('Dev', '111122223333', undefined, 'first'), sso('DEV', '111122223333', 'aws', 'second')] }),
    )
    expect(problems).toEqual([warn('mapRoles[1].sso', 'duplicate of mapRoles[0]; the first entry wins')])
    expect(lookupRules(rules, sessionOf('111122223333', 'AWSReservedSSO_Dev_abc', 's'))).toMatchObject({
      mapping: { username: 'first' },
    })
  })

  it('SSO sets of different partitions are not duplicates', () => {
    const { problems } = compileRules(
      doc({ mapRoles: [sso('Dev', '111122223333'), sso('Dev', '111122223333', 'aws-cn')] }),
    )
    expect(problems).toEqual([])
  })

  it('accounts: deduplicated silently, the first index kept', () => {
    const { rules, problems } = compileRules(doc({ mapAccounts: ['111122223333', '444455556666', '111122223333'] }))
    expect(problems).toEqual([])
    expect([...rules.accounts]).toEqual([
      ['111122223333', 'mapAccounts[0]'],
      ['444455556666', 'mapAccounts[1]'],
    ])
  })
})

describe('precedence inside one rule set', () => {
  it('an explicit role beats an SSO permission set, whatever the order', () => {
    const rules = compileClean(
      doc({
        mapRoles: [
          sso('Dev', '111122223333', undefined, 'by-sso'),
          role('arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_abc123', 'by-role'),
        ],
      }),
    )
    expect(lookupRules(rules, sessionOf('111122223333', 'AWSReservedSSO_Dev_abc123', 's'))).toMatchObject({
      mapping: { username: 'by-role' },
      rule: 'mapRoles[1]',
      kind: 'role',
    })
    expect(lookupRules(rules, sessionOf('111122223333', 'AWSReservedSSO_Dev_fff', 's'))).toMatchObject({
      rule: 'mapRoles[0]',
      kind: 'sso',
    })
  })

  it('among SSO rules the first listed wins (distinct sets cannot both match one role)', () => {
    const rules = compileClean(
      doc({ mapRoles: [sso('A', '111122223333', undefined, 'a'), sso('B', '111122223333', undefined, 'b')] }),
    )
    expect(lookupRules(rules, sessionOf('111122223333', 'AWSReservedSSO_B_1', 's'))?.mapping.username).toBe('b')
  })

  it('the empty rule set maps nothing', () => {
    expect(lookupRules(EMPTY_RULES, userOf('111122223333', 'bob'))).toBeUndefined()
    expect(EMPTY_RULES.counts).toEqual({ roles: 0, users: 0, accounts: 0 })
  })
})

// An assumed-role ARN names one session, but roles are matched by role: such an entry would map
// every session of the role (bob's session would get alice's username and groups). Upstream's
// ConfigMap never matched it, so after a migration it would silently become a broad grant.
describe('assumed-role ARNs under mapRoles are errors', () => {
  const admin = 'arn:aws:sts::111122223333:assumed-role/Admin/alice'

  it.each([
    ['a session', admin, 'arn:aws:iam::111122223333:role/Admin'],
    [
      'a session of a role with middle segments',
      'arn:aws:sts::111122223333:assumed-role/team/x/s',
      'arn:aws:iam::111122223333:role/team/x',
    ],
  ])('%s: refused, naming the whole role it would grant', (_name, arn, grants) => {
    const { rules, problems, invalid } = compileRules(doc({ mapRoles: [role(arn, 'alice', ['system:masters'])] }))
    expect(problems).toEqual([
      err(
        'mapRoles[0].rolearn',
        `'${arn}' is an assumed-role (session) ARN: roles are matched by role, so it would map every session of ` +
          `${grants}, not only this one; map the role ARN (and use {{SessionName}} in the username to tell sessions apart)`,
      ),
    ])
    expect(rules.counts.roles).toBe(0)
    expect(lookupRules(rules, sessionOf('111122223333', arn.split('/').at(-2)!, 'bob'))).toBeUndefined()
    expect(invalid).toEqual([
      { rule: 'mapRoles[0]', kind: 'role', wouldMatch: stripPath(grants).toLowerCase(), problems },
    ])
  })

  it('under mapUsers it stays "a role ARN; map it under mapRoles"', () => {
    expect(compileRules(doc({ mapUsers: [user(admin, 'alice')] })).problems).toEqual([
      err('mapUsers[0].userarn', `'${admin}' is a role ARN; map it under mapRoles`),
    ])
  })
})

describe('account IDs in ARNs must have 12 digits, as mapAccounts do', () => {
  it.each([
    ['mapUsers', 'userarn', 'arn:aws:iam::11112222333:user/carol', '11112222333'],
    ['mapRoles', 'rolearn', 'arn:aws:iam::1111222233334:role/admin', '1111222233334'],
    ['mapRoles', 'rolearn', 'arn:aws:iam::11112222333a:role/admin', '11112222333a'],
  ] as const)('%s %s %s', (list, field, arn, account) => {
    const entry = list === 'mapUsers' ? { mapUsers: [user(arn, 'x')] } : { mapRoles: [role(arn, 'x')] }
    const { problems, invalid } = compileRules(doc(entry))
    expect(problems).toEqual([
      err(`${list}[0].${field}`, `'${account}' in '${arn}' is not a valid AWS account ID (12 digits)`),
    ])
    expect(invalid.map((i) => i.rule)).toEqual([`${list}[0]`])
  })
})

describe('invalid entries are remembered with the identity they were meant for', () => {
  it('an entry refused for its username still says which ARN it would have matched', () => {
    const { invalid } = compileRules(
      doc({
        mapUsers: [
          user('arn:aws:iam::111122223333:user/Bob', 'bob-{{Nope}}'),
          user('arn:aws:iam::111122223333:user/ok', 'ok'),
        ],
      }),
    )
    expect(invalid).toMatchObject([
      { rule: 'mapUsers[0]', kind: 'user', wouldMatch: 'arn:aws:iam::111122223333:user/bob' },
    ])
    expect(invalidRulesFor(invalid, userOf('111122223333', 'bob')).map((r) => r.rule)).toEqual(['mapUsers[0]'])
    expect(invalidRulesFor(invalid, userOf('111122223333', 'ok'))).toEqual([])
  })
})
