import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { awsAuthDataFromManifest, parseAwsAuthData, type ParsedAwsAuth } from '../../src/mapping/configmap/parse.js'
import { lookupRules } from '../../src/mapping/rules.js'
import type { Problem } from '../../src/shared/problem.js'
import { identityOf, sessionOf, userOf } from '../support/identities.js'

const KNOWN_VARS = '{{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}}'
const err = (path: string, message: string): Problem => ({ path, message, severity: 'error' })
const warn = (path: string, message: string): Problem => ({ path, message, severity: 'warning' })
const errorsOf = (p: ParsedAwsAuth) => p.problems.filter((x) => x.severity === 'error')

function manifest(name: string): string {
  return readFileSync(new URL(`../fixtures/aws-auth/${name}`, import.meta.url), 'utf8')
}

/** A fixture ConfigMap manifest, parsed as the live watcher would parse its `data`. */
function parseFixture(name: string): ParsedAwsAuth {
  const m = awsAuthDataFromManifest(manifest(name))
  expect(m.problems).toEqual([])
  return parseAwsAuthData(m.data)
}

const NODE_ROLE_ARN = 'arn:aws:iam::555555555555:role/devel-worker-nodes-NodeInstanceRole-74RF4UBDUKL6'
const NODE_ROLE = {
  rolearn: NODE_ROLE_ARN,
  username: 'system:node:{{EC2PrivateDNSName}}',
  groups: ['system:bootstrappers', 'system:nodes'],
}
const ADMIN_USER = { userarn: 'arn:aws:iam::555555555555:user/admin', username: 'admin', groups: ['system:masters'] }
const EMPTY_DOC = { mapRoles: [], mapUsers: [], mapAccounts: [] }
const NO_RULES = { roles: 0, users: 0, accounts: 0 }

// upstream's pkg/mapper/configmap/yaml_test.go TestConfigMap with the upstream yaml/ fixtures
describe("aws-auth fixtures (upstream's configmap yaml_test.go)", () => {
  it.each(['aws-auth.yaml', 'aws-auth-crazy-case-keys.yaml', 'aws-auth-open-source-case-keys.yaml'])(
    '%s -> 1 role, 1 user, account 555555555555',
    (name) => {
      const parsed = parseFixture(name)
      expect(parsed.problems).toEqual([])
      expect(parsed.doc).toEqual({ mapRoles: [NODE_ROLE], mapUsers: [ADMIN_USER], mapAccounts: ['555555555555'] })
      expect(parsed.rules.counts).toEqual({ roles: 1, users: 1, accounts: 1 })
      expect(
        lookupRules(
          parsed.rules,
          sessionOf('555555555555', 'devel-worker-nodes-NodeInstanceRole-74RF4UBDUKL6', 'i-0123456789abcdef0'),
        ),
      ).toEqual({
        mapping: { username: NODE_ROLE.username, groups: NODE_ROLE.groups },
        rule: 'mapRoles[0]',
        kind: 'role',
      })
      expect(lookupRules(parsed.rules, userOf('555555555555', 'admin'))).toEqual({
        mapping: { username: 'admin', groups: ['system:masters'] },
        rule: 'mapUsers[0]',
        kind: 'user',
      })
      // `- 555555555555` is an unquoted YAML number: accepted, it still has its 12 digits
      expect([...parsed.rules.accounts]).toEqual([['555555555555', 'mapAccounts[0]']])
    },
  )

  it.each<[string, [string, string, string]]>([
    ['aws-auth-lower-case-top-keys.yaml', ['maproles', 'mapusers', 'mapaccounts']],
    ['aws-auth-crazy-case-top-keys.yaml', ['MaPrOlEs', 'MaPuSeRs', 'MaPaCcOuNtS']],
  ])(
    '%s -> nothing (top-level keys are case-sensitive), with a "did you mean" warning per key',
    (name, [roles, users, accounts]) => {
      const parsed = parseFixture(name)
      expect(parsed.problems).toEqual([
        warn(`data.${roles}`, 'ignored: aws-auth keys are case-sensitive, did you mean "mapRoles"?'),
        warn(`data.${users}`, 'ignored: aws-auth keys are case-sensitive, did you mean "mapUsers"?'),
        warn(`data.${accounts}`, 'ignored: aws-auth keys are case-sensitive, did you mean "mapAccounts"?'),
      ])
      expect(parsed.doc).toEqual(EMPTY_DOC)
      expect(parsed.rules.counts).toEqual(NO_RULES)
      expect(lookupRules(parsed.rules, userOf('555555555555', 'admin'))).toBeUndefined()
    },
  )

  it('aws-auth-space-out-of-place.yaml -> one group "system:bootstrappers - system:nodes"', () => {
    const parsed = parseFixture('aws-auth-space-out-of-place.yaml')
    expect(parsed.problems).toEqual([])
    expect(parsed.doc).toEqual({
      mapRoles: [{ ...NODE_ROLE, groups: ['system:bootstrappers - system:nodes'] }],
      mapUsers: [ADMIN_USER],
      mapAccounts: ['555555555555'],
    })
    expect(lookupRules(parsed.rules, identityOf(NODE_ROLE_ARN))?.mapping.groups).toEqual([
      'system:bootstrappers - system:nodes',
    ])
  })

  it('aws-auth-missing-bar.yaml (mapRoles is a YAML list, not a string) -> an error: the document is invalid', () => {
    const parsed = parseFixture('aws-auth-missing-bar.yaml')
    expect(parsed.problems).toEqual([err('data.mapRoles', 'must be a string holding a YAML list')])
    expect(parsed.doc.mapRoles).toEqual([])
  })

  it.each(['aws-auth-empty-values.yaml', 'aws-auth-empty-single-quotes.yaml'])('%s -> nothing, no problems', (name) => {
    const parsed = parseFixture(name)
    expect(parsed.problems).toEqual([])
    expect(parsed.doc).toEqual(EMPTY_DOC)
    expect(parsed.rules.counts).toEqual(NO_RULES)
  })
})

describe('empty values', () => {
  it.each(['', '   ', '\n', '""', ' "" \n', "''", "  ''  ", '``', '\n``\n'])(
    '%j means empty, in every key',
    (value) => {
      const parsed = parseAwsAuthData({ mapRoles: value, mapUsers: value, mapAccounts: value })
      expect(parsed.problems).toEqual([])
      expect(parsed.doc).toEqual(EMPTY_DOC)
    },
  )

  it.each<[string, Record<string, unknown> | undefined]>([
    ['no data at all', undefined],
    ['an empty data map', {}],
    ['null values', { mapRoles: null, mapUsers: null, mapAccounts: null }],
    ['an empty YAML list', { mapRoles: '[]', mapUsers: '[]\n', mapAccounts: '[]' }],
    ['only a comment', { mapRoles: '# nothing yet\n' }],
  ])('%s -> nothing', (_name, data) => {
    const parsed = parseAwsAuthData(data)
    expect(parsed.problems).toEqual([])
    expect(parsed.doc).toEqual(EMPTY_DOC)
  })

  it('other data keys are ignored, with a warning (and a did-you-mean when one is close)', () => {
    expect(parseAwsAuthData({ mapRoles: '', 'some-other-key': 'anything', mapUser: '' }).problems).toEqual([
      warn('data.some-other-key', 'unknown key (ignored: only mapRoles, mapUsers, mapAccounts are read)'),
      warn(
        'data.mapUser',
        'unknown key (ignored: only mapRoles, mapUsers, mapAccounts are read); did you mean "mapUsers"?',
      ),
    ])
  })
})

// upstream's pkg/mapper/configmap store test cases, through the rules a parsed aws-auth compiles to
describe('ConfigMap store lookups (aws-auth-sso.yaml)', () => {
  const parsed = parseFixture('aws-auth-sso.yaml')

  it('parses without problems', () => {
    expect(parsed.problems).toEqual([])
    expect(parsed.rules.counts).toEqual({ roles: 2, users: 1, accounts: 1 })
  })

  it('user lookup is exact (case-insensitive); an unknown user is not found', () => {
    const matt = {
      mapping: { username: 'matlan', groups: ['system:master', 'dev'] },
      rule: 'mapUsers[0]',
      kind: 'user',
    }
    expect(lookupRules(parsed.rules, userOf('123123123123', 'matt'))).toEqual(matt)
    expect(lookupRules(parsed.rules, userOf('123123123123', 'MATT'))).toEqual(matt)
    expect(lookupRules(parsed.rules, userOf('123123123123', 'nic'))).toBeUndefined()
    expect(lookupRules(parsed.rules, userOf('123123123123', 'matt2'))).toBeUndefined()
    expect(lookupRules(parsed.rules, userOf('999999999999', 'matt'))).toBeUndefined()
  })

  it('a role is matched by its RoleARN, never by a prefix or a wildcard', () => {
    const computer = { mapping: { username: 'computer', groups: ['system:nodes'] }, rule: 'mapRoles[0]', kind: 'role' }
    expect(lookupRules(parsed.rules, identityOf('arn:aws:iam::123123123123:role/computer'))).toEqual(computer)
    expect(lookupRules(parsed.rules, sessionOf('123123123123', 'computer', 'i-0123456789abcdef0'))).toEqual(computer)
    expect(lookupRules(parsed.rules, sessionOf('123123123123', 'comp', 's'))).toBeUndefined()
    expect(lookupRules(parsed.rules, sessionOf('123123123123', 'comp*', 's'))).toBeUndefined()
    expect(lookupRules(parsed.rules, sessionOf('123123123123', 'computers', 's'))).toBeUndefined()
  })

  it('the SSO entry matches its permission set role (..._viewonlyaccess_123123123)', () => {
    const id = sessionOf('012345678912', 'AWSReservedSSO_ViewOnlyAccess_123123123', 'jane@example.com')
    expect(lookupRules(parsed.rules, id)).toEqual({
      mapping: { username: 'viewer:{{SessionName}}', groups: ['view'] },
      rule: 'mapRoles[1]',
      kind: 'sso',
    })
    expect(
      lookupRules(parsed.rules, identityOf('arn:aws:iam::012345678912:role/awsreservedsso_viewonlyaccess_123123123'))
        ?.rule,
    ).toBe('mapRoles[1]')
    expect(
      lookupRules(parsed.rules, sessionOf('012345678912', 'AWSReservedSSO_Billing_123123123', 's')),
    ).toBeUndefined()
    expect(
      lookupRules(parsed.rules, sessionOf('123123123123', 'AWSReservedSSO_ViewOnlyAccess_123123123', 's')),
    ).toBeUndefined()
  })

  it('the accounts are exactly the listed ones', () => {
    expect([...parsed.rules.accounts.keys()]).toEqual(['123123123123'])
    expect(parsed.rules.accounts.get('345345345345')).toBeUndefined()
  })
})

describe('entry fields are case-insensitive', () => {
  it.each(['rolearn', 'roleARN', 'RoLeArN', 'ROLEARN'])('%s', (key) => {
    const parsed = parseAwsAuthData({
      mapRoles: `- ${key}: arn:aws:iam::111122223333:role/a\n  UserName: a\n  GROUPS: [g]\n`,
    })
    expect(parsed.problems).toEqual([])
    expect(parsed.doc.mapRoles).toEqual([{ rolearn: 'arn:aws:iam::111122223333:role/a', username: 'a', groups: ['g'] }])
  })

  it('sso fields too', () => {
    const parsed = parseAwsAuthData({
      mapRoles:
        '- SSO:\n    PermissionSetName: Dev\n    ACCOUNTID: "111122223333"\n    Partition: aws-cn\n  username: dev\n',
    })
    expect(parsed.problems).toEqual([])
    expect(parsed.doc.mapRoles).toEqual([
      { sso: { permissionSetName: 'Dev', accountID: '111122223333', partition: 'aws-cn' }, username: 'dev' },
    ])
    expect(
      lookupRules(parsed.rules, sessionOf('111122223333', 'AWSReservedSSO_Dev_abc', 's', { partition: 'aws-cn' }))
        ?.kind,
    ).toBe('sso')
  })

  it('the same field twice in different case is an error', () => {
    const parsed = parseAwsAuthData({
      mapRoles:
        '- rolearn: arn:aws:iam::111122223333:role/a\n  roleArn: arn:aws:iam::111122223333:role/b\n  username: u\n',
    })
    expect(parsed.problems).toEqual([
      err('data.mapRoles[0].roleArn', 'duplicate key (also written as "rolearn"; keys are case-insensitive)'),
    ])
  })

  it('an unknown field is a warning', () => {
    const parsed = parseAwsAuthData({
      mapUsers: '- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n  team: platform\n',
    })
    expect(parsed.problems).toEqual([warn('data.mapUsers[0].team', 'unknown key (ignored)')])
    expect(parsed.rules.counts.users).toBe(1)
  })
})

describe('role ARNs are path-stripped', () => {
  const parsed = parseAwsAuthData({
    mapRoles: [
      '- rolearn: arn:aws:iam::111122223333:role/team/x',
      '  username: x',
      '- rolearn: arn:aws:iam::111122223333:role/Y',
      '  username: y',
      '- rolearn: arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/Z',
      '  username: z',
      '',
    ].join('\n'),
  })

  it('is keyed by the lower-cased, path-less role ARN', () => {
    expect(parsed.problems).toEqual([])
    expect([...parsed.rules.roles.keys()]).toEqual([
      'arn:aws:iam::111122223333:role/x',
      'arn:aws:iam::111122223333:role/y',
      'arn:aws:iam::111122223333:role/z',
    ])
  })

  it.each([
    ['arn:aws:sts::111122223333:assumed-role/x/s', 'mapRoles[0]'],
    ['arn:aws:iam::111122223333:role/x', 'mapRoles[0]'],
    ['arn:aws:sts::111122223333:assumed-role/y/other-session', 'mapRoles[1]'],
    ['arn:aws:sts::111122223333:assumed-role/Z/s', 'mapRoles[2]'],
    ['arn:aws:sts::111122223333:assumed-role/team/s', undefined],
    ['arn:aws:sts::222233334444:assumed-role/x/s', undefined],
  ])('%s -> %s', (arn, rule) => {
    expect(lookupRules(parsed.rules, identityOf(arn))?.rule).toBe(rule)
  })

  it('a role written with and without its path is a duplicate (warning; the first wins)', () => {
    const p = parseAwsAuthData({
      mapRoles:
        '- rolearn: arn:aws:iam::111122223333:role/team/x\n  username: first\n- rolearn: arn:aws:iam::111122223333:role/X\n  username: second\n',
    })
    expect(p.problems).toEqual([
      warn('data.mapRoles[1].rolearn', 'duplicate of mapRoles[0] (role paths are ignored); the first entry wins'),
    ])
    expect(lookupRules(p.rules, sessionOf('111122223333', 'x', 's'))?.mapping.username).toBe('first')
  })
})

describe('invalid documents: every problem with its path; any error makes the document invalid', () => {
  it('aws-auth-invalid.yaml lists each bad entry and keeps nothing bad', () => {
    const parsed = parseFixture('aws-auth-invalid.yaml')
    expect(parsed.problems).toEqual([
      err('data.mapAccounts[0]', "'12345' is not a valid AWS account ID (12 digits; quote account IDs in YAML)"),
      err('data.mapUsers[0].username', 'username must be a non-empty string'),
      err('data.mapRoles[1].rolearn', "'arn:aws:iam::111122223333:user/not-a-role' is not a role ARN"),
      err('data.mapRoles[2].username', `unknown template variable {{Session}} (known: ${KNOWN_VARS})`),
    ])
    // the valid entry is still compiled (explain shows it) but the errors make callers reject the whole document
    expect([...parsed.rules.roles.keys()]).toEqual(['arn:aws:iam::111122223333:role/ok'])
    expect(parsed.rules.counts).toEqual({ roles: 1, users: 0, accounts: 0 })
  })

  it.each<[string, Record<string, unknown>, Problem[]]>([
    ['a value that is not a string', { mapRoles: 5 }, [err('data.mapRoles', 'must be a string holding a YAML list')]],
    [
      'a mapping instead of a list',
      { mapRoles: 'rolearn: arn:aws:iam::111122223333:role/a\nusername: a\n' },
      [err('data.mapRoles', 'must be a YAML list (each entry starting with "- ")')],
    ],
    [
      'accounts as one whitespace-separated string',
      { mapAccounts: '111122223333 444455556666' },
      [err('data.mapAccounts', 'must be a YAML list (each entry starting with "- ")')],
    ],
    [
      'several YAML documents',
      {
        mapUsers:
          '- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n---\n- userarn: arn:aws:iam::111122223333:user/b\n  username: b\n',
      },
      [err('data.mapUsers', 'must be one YAML list, not several documents')],
    ],
    [
      'an entry that is not a mapping',
      { mapRoles: '- arn:aws:iam::111122223333:role/a\n' },
      [err('data.mapRoles[0]', 'must be a mapping')],
    ],
    [
      'rolearn and sso together',
      {
        mapRoles:
          '- rolearn: arn:aws:iam::111122223333:role/a\n  sso:\n    permissionSetName: A\n    accountID: "111122223333"\n  username: a\n',
      },
      [err('data.mapRoles[0]', 'only one of rolearn or SSO can be supplied')],
    ],
    [
      'neither rolearn nor sso',
      { mapRoles: '- username: a\n  groups: [g]\n' },
      [err('data.mapRoles[0]', 'one of rolearn or SSO must be supplied')],
    ],
    [
      'a user without userarn',
      { mapUsers: '- username: u\n' },
      [err('data.mapUsers[0].userarn', 'value for userarn must be supplied')],
    ],
    [
      'a rolearn that is not an ARN',
      { mapRoles: '- rolearn: not-an-arn\n  username: a\n' },
      [err('data.mapRoles[0].rolearn', "error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'")],
    ],
    [
      'a rolearn with an unknown partition',
      { mapRoles: '- rolearn: arn:aws-nk:iam::111122223333:role/a\n  username: a\n' },
      [
        err(
          'data.mapRoles[0].rolearn',
          "error canonicalizing ARN: arn 'arn:aws-nk:iam::111122223333:role/a' does not have a recognized partition",
        ),
      ],
    ],
    [
      'a userarn that is a role',
      { mapUsers: '- userarn: arn:aws:iam::111122223333:role/a\n  username: a\n' },
      [err('data.mapUsers[0].userarn', "'arn:aws:iam::111122223333:role/a' is a role ARN; map it under mapRoles")],
    ],
    [
      'a userarn that is not an ARN',
      { mapUsers: '- userarn: garbage\n  username: a\n' },
      [err('data.mapUsers[0].userarn', "error canonicalizing ARN: arn 'garbage' is invalid: 'arn: invalid prefix'")],
    ],
    [
      'an empty username',
      { mapRoles: '- rolearn: arn:aws:iam::111122223333:role/a\n  username: "  "\n' },
      [err('data.mapRoles[0].username', 'username must be a non-empty string')],
    ],
    [
      'a username that is not a string',
      { mapRoles: '- rolearn: arn:aws:iam::111122223333:role/a\n  username: 5\n' },
      [err('data.mapRoles[0].username', 'must be a string, got number 5')],
    ],
    [
      'groups as a plain string',
      { mapRoles: '- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n  groups: system:masters\n' },
      [err('data.mapRoles[0].groups', 'must be a list of strings, got string "system:masters"')],
    ],
    [
      'an empty group',
      { mapUsers: '- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n  groups: ["ok", ""]\n' },
      [err('data.mapUsers[0].groups', 'groups must be a list of non-empty strings')],
    ],
    [
      'an unknown template variable in a group',
      { mapUsers: '- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n  groups: [ok, "team-{{Account}}"]\n' },
      [err('data.mapUsers[0].groups[1]', `unknown template variable {{Account}} (known: ${KNOWN_VARS})`)],
    ],
    [
      'an unquoted account ID with a leading zero (YAML reads a number and drops the zero)',
      { mapAccounts: '- 012345678901\n' },
      [
        err(
          'data.mapAccounts[0]',
          "'12345678901' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
        ),
      ],
    ],
    [
      'an unquoted SSO accountID with a leading zero, reported once',
      { mapRoles: '- sso:\n    permissionSetName: X\n    accountID: 012345678912\n  username: u\n' },
      [
        err(
          'data.mapRoles[0].sso.accountID',
          "'12345678912' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
        ),
      ],
    ],
    [
      'an invalid SSO partition',
      {
        mapRoles:
          '- sso:\n    permissionSetName: X\n    accountID: "111122223333"\n    partition: aws-nk\n  username: u\n',
      },
      [err('data.mapRoles[0].sso.partition', "partition 'aws-nk' is not a valid AWS partition")],
    ],
  ])('%s', (_name, data, problems) => {
    const parsed = parseAwsAuthData(data)
    expect(parsed.problems).toEqual(problems)
    expect(errorsOf(parsed).length).toBeGreaterThan(0)
  })

  it('invalid YAML in a value is an error naming the key', () => {
    const parsed = parseAwsAuthData({ mapRoles: '- rolearn: [\n' })
    expect(parsed.problems).toHaveLength(1)
    expect(parsed.problems[0]).toMatchObject({ path: 'data.mapRoles', severity: 'error' })
    expect(parsed.problems[0]!.message).toMatch(/^invalid YAML: /)
  })

  it('one bad entry among good ones is enough to make the document invalid', () => {
    const parsed = parseAwsAuthData({
      mapRoles:
        '- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n- rolearn: arn:aws:iam::111122223333:role/b\n  username: b\n',
      mapUsers: '- userarn: arn:aws:iam::111122223333:user/c\n  username: "{{Nope}}"\n',
    })
    expect(errorsOf(parsed).map((p) => p.path)).toEqual(['data.mapUsers[0].username'])
  })

  it('an unquoted 12-digit account ID is accepted, as is a quoted one', () => {
    const parsed = parseAwsAuthData({ mapAccounts: '- 111122223333\n- "444455556666"\n- \'777788889999\'\n' })
    expect(parsed.problems).toEqual([])
    expect(parsed.doc.mapAccounts).toEqual(['111122223333', '444455556666', '777788889999'])
  })

  it('an unquoted 12-digit SSO accountID is accepted', () => {
    const parsed = parseAwsAuthData({
      mapRoles: '- sso:\n    permissionSetName: X\n    accountID: 111122223333\n  username: u\n',
    })
    expect(parsed.problems).toEqual([])
    expect(parsed.rules.sso).toHaveLength(1)
  })

  it('problem paths follow the given prefix', () => {
    const parsed = parseAwsAuthData({ mapRoles: '- username: a\n' }, 'configmap.data.')
    expect(parsed.problems).toEqual([err('configmap.data.mapRoles[0]', 'one of rolearn or SSO must be supplied')])
  })
})

describe('awsAuthDataFromManifest', () => {
  it('returns the data of the ConfigMap', () => {
    const m = awsAuthDataFromManifest(manifest('aws-auth.yaml'))
    expect(m.problems).toEqual([])
    expect(Object.keys(m.data!)).toEqual(['mapRoles', 'mapUsers', 'mapAccounts'])
    expect(m.data!.mapAccounts).toBe('- 555555555555\n')
  })

  it('a mapping without kind (not a ConfigMap manifest) is an error', () => {
    expect(awsAuthDataFromManifest('foo: bar\n').problems).toEqual([
      err(
        'kind',
        'missing: this is not a ConfigMap manifest (expected kind: ConfigMap, as `kubectl get configmap -n kube-system aws-auth -o yaml` prints it)',
      ),
    ])
  })

  it('warns about another name or namespace, rejects another kind', () => {
    const m = awsAuthDataFromManifest(
      'kind: Secret\nmetadata:\n  name: other\n  namespace: default\ndata:\n  mapRoles: ""\n',
    )
    expect(m.problems).toEqual([
      err('kind', 'expected a ConfigMap, got Secret'),
      warn('metadata.name', 'the server watches aws-auth, this is other'),
      warn('metadata.namespace', 'the server watches kube-system, this is default'),
    ])
  })

  it('a ConfigMap without data is an empty aws-auth', () => {
    const m = awsAuthDataFromManifest(
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: aws-auth\n  namespace: kube-system\n',
    )
    expect(m).toEqual({ data: {}, problems: [] })
    expect(parseAwsAuthData(m.data).problems).toEqual([])
  })

  it.each<[string, string, Problem[]]>([
    ['data that is a list', 'kind: ConfigMap\ndata: [a]\n', [err('data', 'must be a mapping of strings')]],
    ['an empty file', '', [err('(file)', 'no ConfigMap found')]],
    ['a scalar', 'hello\n', [err('(file)', 'no ConfigMap found')]],
  ])('%s', (_name, text, problems) => {
    expect(awsAuthDataFromManifest(text).problems).toEqual(problems)
  })

  it('invalid YAML', () => {
    const m = awsAuthDataFromManifest('data: [\n')
    expect(m.data).toBeUndefined()
    expect(m.problems).toHaveLength(1)
    expect(m.problems[0]).toMatchObject({ path: '(file)', severity: 'error' })
    expect(m.problems[0]!.message).toMatch(/^invalid YAML: /)
    expect(m.unusable).toBe(m.problems[0]!.message)
  })
})
