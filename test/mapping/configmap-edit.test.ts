import { describe, expect, it } from 'vitest'
import { UsageError } from '../../src/shared/errors.js'
import { addToAwsAuth, type AwsAuthAddition } from '../../src/mapping/configmap/edit.js'
import { parseAwsAuthData } from '../../src/mapping/configmap/parse.js'
import { lookupRules } from '../../src/mapping/rules.js'
import type { RoleMapping, UserMapping } from '../../src/mapping/types.js'
import { sessionOf } from '../support/identities.js'

const ACCOUNT = '111122223333'
const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`
const userArn = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`

const addRole = (entry: RoleMapping): AwsAuthAddition => ({ kind: 'role', entry })
const addUser = (entry: UserMapping): AwsAuthAddition => ({ kind: 'user', entry })

/** Parses an edited aws-auth back, expecting it to be valid without warnings. */
function parseBack(data: Record<string, string>) {
  const parsed = parseAwsAuthData(data)
  expect(parsed.problems).toEqual([])
  return parsed
}

/** The UsageError an edit throws. */
function refusal(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error('expected the edit to be refused')
}

/** aws-auth data as upstream's EncodeMap writes it: 2-space-indented list items, no leading indent. */
function encoded(roles: string[], users: string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  if (roles.length > 0) out.mapRoles = roles.join('')
  if (users.length > 0) out.mapUsers = users.join('')
  return out
}
const roleItem = (arn: string, username: string, groups: string[]) =>
  `- rolearn: ${arn}\n  username: ${username}\n  groups:\n${groups.map((g) => `  - ${g}\n`).join('')}`
const userItem = (arn: string, username: string, groups: string[]) =>
  `- userarn: ${arn}\n  username: ${username}\n  groups:\n${groups.map((g) => `  - ${g}\n`).join('')}`

// upstream's pkg/mapper/configmap/client/client_test.go, adapted to full ARNs
describe("add (upstream's configmap client_test.go cases)", () => {
  it('adding user a when role a exists works; then adding role a is a duplicate', () => {
    const data = encoded([roleItem(roleArn('a'), 'a', ['a'])])
    const newUser = { userarn: userArn('a'), username: 'a', groups: ['a'] }
    const updated = addToAwsAuth(data, addUser(newUser))
    const parsed = parseBack(updated)
    expect(parsed.doc.mapUsers).toEqual([newUser])
    expect(parsed.doc.mapRoles).toEqual([{ rolearn: roleArn('a'), username: 'a', groups: ['a'] }])

    expect(
      refusal(() => addToAwsAuth(updated, addRole({ rolearn: roleArn('a'), username: 'other', groups: [] }))),
    ).toBe(
      `cannot add duplicate role ARN "arn:aws:iam::${ACCOUNT}:role/a" (already mapRoles[0]; role paths are ignored)`,
    )
  })

  it('adding role a when user a exists works; then adding user a is a duplicate', () => {
    const data = encoded([], [userItem(userArn('a'), 'a', ['a'])])
    const newRole = { rolearn: roleArn('a'), username: 'a', groups: ['a'] }
    const updated = addToAwsAuth(data, addRole(newRole))
    const parsed = parseBack(updated)
    expect(parsed.doc.mapRoles).toEqual([newRole])
    expect(parsed.doc.mapUsers).toEqual([{ userarn: userArn('a'), username: 'a', groups: ['a'] }])

    expect(
      refusal(() => addToAwsAuth(updated, addUser({ userarn: userArn('a'), username: 'other', groups: [] }))),
    ).toBe(`cannot add duplicate user ARN "arn:aws:iam::${ACCOUNT}:user/a" (already mapUsers[0])`)
  })

  it('an SSO role added to an empty aws-auth round-trips', () => {
    const newSsoRole: RoleMapping = {
      sso: { permissionSetName: 'ViewOnlyAccess', accountID: '012345678912' },
      username: 'b',
      groups: ['b'],
    }
    const updated = addToAwsAuth({}, addRole(newSsoRole))
    expect(updated).toEqual({
      mapRoles:
        "- sso:\n    permissionSetName: ViewOnlyAccess\n    accountID: '012345678912'\n  username: b\n  groups:\n    - b\n",
    })
    const parsed = parseBack(updated)
    expect(parsed.doc.mapRoles).toEqual([newSsoRole])
    expect(
      lookupRules(parsed.rules, sessionOf('012345678912', 'AWSReservedSSO_ViewOnlyAccess_0123abcd', 'jane'))?.kind,
    ).toBe('sso')
  })

  it('an SSO role with a partition round-trips and matches in that partition', () => {
    const newSsoRole: RoleMapping = {
      sso: { permissionSetName: 'ViewOnlyAccess', accountID: '012345678912', partition: 'aws-cn' },
      username: 'b',
      groups: ['b'],
    }
    const parsed = parseBack(addToAwsAuth({}, addRole(newSsoRole)))
    expect(parsed.doc.mapRoles).toEqual([newSsoRole])
    const cn = sessionOf('012345678912', 'AWSReservedSSO_ViewOnlyAccess_0123abcd', 'jane', { partition: 'aws-cn' })
    expect(lookupRules(parsed.rules, cn)?.kind).toBe('sso')
    expect(
      lookupRules(parsed.rules, sessionOf('012345678912', 'AWSReservedSSO_ViewOnlyAccess_0123abcd', 'jane')),
    ).toBeUndefined()
  })

  it('adding the same SSO mapping twice is a duplicate', () => {
    const sso: RoleMapping = {
      sso: { permissionSetName: 'ViewOnlyAccess', accountID: '012345678912' },
      username: 'b',
      groups: ['b'],
    }
    const once = addToAwsAuth({}, addRole(sso))
    expect(refusal(() => addToAwsAuth(once, addRole(sso)))).toBe(
      'cannot add duplicate SSO permission set mapping (already mapRoles[0])',
    )
    // permission set names match case-insensitively, so another case is the same mapping
    const lower: RoleMapping = {
      sso: { permissionSetName: 'viewonlyaccess', accountID: '012345678912' },
      username: 'c',
      groups: [],
    }
    expect(refusal(() => addToAwsAuth(once, addRole(lower)))).toBe(
      'cannot add duplicate SSO permission set mapping (already mapRoles[0])',
    )
  })

  it('the same permission set in another account or partition is not a duplicate', () => {
    const once = addToAwsAuth(
      {},
      addRole({ sso: { permissionSetName: 'Dev', accountID: '012345678912' }, username: 'a', groups: [] }),
    )
    const twice = addToAwsAuth(
      once,
      addRole({ sso: { permissionSetName: 'Dev', accountID: '999999999999' }, username: 'b', groups: [] }),
    )
    const thrice = addToAwsAuth(
      twice,
      addRole({
        sso: { permissionSetName: 'Dev', accountID: '012345678912', partition: 'aws-cn' },
        username: 'c',
        groups: [],
      }),
    )
    expect(parseBack(thrice).rules.sso).toHaveLength(3)
  })
})

describe('duplicates', () => {
  it('a role is the same role whatever its path or ARN form', () => {
    const data = { mapRoles: `- rolearn: ${roleArn('team/Deployer')}\n  username: deployer\n` }
    for (const arn of [roleArn('Deployer'), roleArn('deployer'), roleArn('other-team/deployer')]) {
      expect(refusal(() => addToAwsAuth(data, addRole({ rolearn: arn, username: 'x', groups: [] })))).toBe(
        `cannot add duplicate role ARN "arn:aws:iam::${ACCOUNT}:role/deployer" (already mapRoles[0]; role paths are ignored)`,
      )
    }
  })

  it('an assumed-role (session) ARN is refused: it would grant every session of the role', () => {
    expect(
      refusal(() =>
        addToAwsAuth(
          {},
          addRole({ rolearn: `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/s`, username: 'x', groups: [] }),
        ),
      ),
    ).toMatch(
      /^refusing a change that would leave the aws-auth ConfigMap invalid:\n {2}- data\.mapRoles\[0\]\.rolearn: '.*' is an assumed-role \(session\) ARN/,
    )
  })

  it('user ARNs are compared case-insensitively, as lookups are', () => {
    const data = { mapUsers: `- userarn: ${userArn('Alice')}\n  username: alice\n` }
    expect(refusal(() => addToAwsAuth(data, addUser({ userarn: userArn('alice'), username: 'x', groups: [] })))).toBe(
      `cannot add duplicate user ARN "arn:aws:iam::${ACCOUNT}:user/alice" (already mapUsers[0])`,
    )
  })

  it('the same role name in another account is not a duplicate', () => {
    const data = { mapRoles: `- rolearn: ${roleArn('a')}\n  username: a\n` }
    const updated = addToAwsAuth(
      data,
      addRole({ rolearn: 'arn:aws:iam::444455556666:role/a', username: 'b', groups: [] }),
    )
    expect(parseBack(updated).rules.counts.roles).toBe(2)
  })
})

describe('the existing text is kept; the new entry matches its indentation', () => {
  it.each([
    ['no indentation', ''],
    ['indented by 2', '  '],
    ['indented by 4', '    '],
  ])('existing list %s', (_name, indent) => {
    const existing = [
      `${indent}# worker nodes`,
      `${indent}- rolearn: ${roleArn('node')}  # created by eksctl`,
      `${indent}  username: system:node:{{EC2PrivateDNSName}}`,
      `${indent}  groups:`,
      `${indent}    - system:bootstrappers`,
      `${indent}    - system:nodes`,
      '',
    ].join('\n')
    const updated = addToAwsAuth(
      { mapRoles: existing },
      addRole({ rolearn: roleArn('admin'), username: 'admin', groups: ['system:masters'] }),
    )
    expect(updated.mapRoles).toBe(
      `${existing}${indent}- rolearn: ${roleArn('admin')}\n${indent}  username: admin\n${indent}  groups:\n${indent}    - system:masters\n`,
    )
    const parsed = parseBack(updated)
    expect(parsed.doc.mapRoles.map((r) => r.username)).toEqual(['system:node:{{EC2PrivateDNSName}}', 'admin'])
    expect(lookupRules(parsed.rules, sessionOf(ACCOUNT, 'admin', 'alice'))).toEqual({
      mapping: { username: 'admin', groups: ['system:masters'] },
      rule: 'mapRoles[1]',
      kind: 'role',
    })
  })

  it('comments anywhere in the value survive', () => {
    const existing = [
      '# managed by hand; ask #platform before editing',
      `- userarn: ${userArn('alice')} # Alice`,
      '  # she is an admin',
      '  username: alice',
      '  groups: [system:masters]  # flow style is fine',
      '# end of list',
      '',
    ].join('\n')
    const updated = addToAwsAuth(
      { mapUsers: existing },
      addUser({ userarn: userArn('bob'), username: 'bob', groups: ['devs'] }),
    )
    // inserted after the last entry: the closing comment stays last, every other byte stays
    const tail = '# end of list\n'
    expect(updated.mapUsers).toBe(
      `${existing.slice(0, -tail.length)}- userarn: ${userArn('bob')}\n  username: bob\n  groups:\n    - devs\n${tail}`,
    )
    expect(parseBack(updated).doc.mapUsers.map((u) => u.username)).toEqual(['alice', 'bob'])
  })

  it('a value without a final newline gets one before the new entry', () => {
    const updated = addToAwsAuth(
      { mapUsers: `- userarn: ${userArn('a')}\n  username: a` },
      addUser({ userarn: userArn('b'), username: 'b', groups: [] }),
    )
    expect(updated.mapUsers).toBe(
      `- userarn: ${userArn('a')}\n  username: a\n- userarn: ${userArn('b')}\n  username: b\n`,
    )
  })

  it('list items written as "-" alone on their line (upstream test style) set the indentation, not a nested list', () => {
    const existing = `\n-\n  userarn: "${userArn('matlan')}"\n  username: matlan\n  groups:\n    - loadedfromconfigmap\n    - "system:master"\n`
    const updated = addToAwsAuth(
      { mapUsers: existing },
      addUser({ userarn: userArn('nic'), username: 'nic', groups: ['system:master'] }),
    )
    expect(updated.mapUsers).toBe(
      `${existing}- userarn: ${userArn('nic')}\n  username: nic\n  groups:\n    - system:master\n`,
    )
    expect(parseBack(updated).doc.mapUsers.map((u) => u.username)).toEqual(['matlan', 'nic'])
  })

  it('other keys are kept as they are and the input is not modified', () => {
    const data = Object.freeze({
      mapRoles: `- rolearn: ${roleArn('a')}\n  username: a\n`,
      mapAccounts: '- "444455556666"\n',
      other: 'left alone',
    })
    const updated = addToAwsAuth(data, addUser({ userarn: userArn('b'), username: 'b', groups: [] }))
    expect(updated).toEqual({ ...data, mapUsers: `- userarn: ${userArn('b')}\n  username: b\n` })
    expect(data.mapRoles).toBe(`- rolearn: ${roleArn('a')}\n  username: a\n`)
  })

  it('warnings in the current document do not block an addition', () => {
    const data = { maproles: 'ignored', mapRoles: `- rolearn: ${roleArn('a')}\n  username: a\n  team: x\n` }
    const updated = addToAwsAuth(data, addRole({ rolearn: roleArn('b'), username: 'b', groups: [] }))
    expect(parseAwsAuthData(updated).problems.map((p) => p.severity)).toEqual(['warning', 'warning'])
    expect(parseAwsAuthData(updated).rules.counts.roles).toBe(2)
  })
})

describe('flow lists keep every byte of the existing text', () => {
  const bob = { userarn: userArn('bob'), username: 'bob', groups: ['devs'] }
  const bobFlow = `{userarn: ${userArn('bob')}, username: bob, groups: [devs]}`

  it.each<[string, string, string]>([
    [
      'one line with a trailing comment',
      `[{userarn: ${userArn('alice')}, username: alice}] # managed by hand\n`,
      `[{userarn: ${userArn('alice')}, username: alice}, ${bobFlow}] # managed by hand\n`,
    ],
    [
      'one entry per line, comments inside, trailing comma',
      `[\n  # the admin\n  {userarn: ${userArn('alice')}, username: alice}, # Alice\n]\n`,
      `[\n  # the admin\n  {userarn: ${userArn('alice')}, username: alice}, ${bobFlow}, # Alice\n]\n`,
    ],
    ['an empty list with a comment', '[] # nobody yet\n', `[${bobFlow}] # nobody yet\n`],
  ])('%s', (_name, existing, expected) => {
    const updated = addToAwsAuth({ mapUsers: existing }, addUser(bob))
    expect(updated.mapUsers).toBe(expected)
    expect(parseBack(updated).doc.mapUsers.map((u) => u.username)).toEqual(
      existing.includes('alice') ? ['alice', 'bob'] : ['bob'],
    )
  })

  it('a block list between document markers and comments keeps them all', () => {
    const existing = `# header\n---\n- userarn: ${userArn('alice')} # first\n  username: alice\n\n# trailer\n...\n`
    const updated = addToAwsAuth({ mapUsers: existing }, addUser(bob))
    expect(updated.mapUsers).toBe(
      `# header\n---\n- userarn: ${userArn('alice')} # first\n  username: alice\n` +
        `- userarn: ${userArn('bob')}\n  username: bob\n  groups:\n    - devs\n\n# trailer\n...\n`,
    )
    expect(parseBack(updated).doc.mapUsers.map((u) => u.username)).toEqual(['alice', 'bob'])
  })

  it('a value holding only comments keeps them above the new list', () => {
    const updated = addToAwsAuth({ mapUsers: '# users go here\n' }, addUser(bob))
    expect(updated.mapUsers).toBe(
      `# users go here\n- userarn: ${userArn('bob')}\n  username: bob\n  groups:\n    - devs\n`,
    )
  })
})

describe('empty values become a one-entry list', () => {
  const entry = { userarn: userArn('new'), username: 'new', groups: ['g'] }
  const item = `- userarn: ${userArn('new')}\n  username: new\n  groups:\n    - g\n`

  it.each<[string, Record<string, string>]>([
    ['absent', {}],
    ['""', { mapUsers: '' }],
    ['whitespace', { mapUsers: '  \n' }],
    ['a quoted empty string', { mapUsers: '""' }],
    ["''", { mapUsers: "''" }],
    ['``', { mapUsers: '``' }],
    ['an empty flow list [] (as eksctl writes it)', { mapUsers: '[]\n' }],
  ])('%s', (_name, data) => {
    const updated = addToAwsAuth(data, addUser(entry))
    expect(updated.mapUsers).toBe(item)
    expect(parseBack(updated).doc.mapUsers).toEqual([entry])
  })

  it('empty groups, an empty SSO partition and an absent userid are left out; a userid is kept', () => {
    const updated = addToAwsAuth(
      {},
      addRole({
        sso: { permissionSetName: 'Dev', accountID: ACCOUNT, partition: '' },
        username: 'dev',
        groups: [],
        userid: undefined,
      }),
    )
    expect(updated.mapRoles).toBe(`- sso:\n    permissionSetName: Dev\n    accountID: '${ACCOUNT}'\n  username: dev\n`)
    const withId = addToAwsAuth(
      {},
      addUser({ userarn: userArn('a'), username: 'a', groups: [], userid: 'AIDAEXAMPLE' }),
    )
    expect(withId.mapUsers).toBe(`- userarn: ${userArn('a')}\n  username: a\n  userid: AIDAEXAMPLE\n`)
  })

  it('templates survive the round trip', () => {
    const node = {
      rolearn: roleArn('node'),
      username: 'system:node:{{EC2PrivateDNSName}}',
      groups: ['system:bootstrappers', 'system:nodes'],
    }
    const parsed = parseBack(addToAwsAuth({}, addRole(node)))
    expect(parsed.doc.mapRoles).toEqual([node])
  })
})

describe('invalid documents and entries are refused', () => {
  it('an aws-auth that is already invalid is refused, listing its errors', () => {
    const data = {
      mapRoles: `- rolearn: not-an-arn\n  username: x\n- rolearn: ${roleArn('ok')}\n  username: ""\n`,
    }
    expect(refusal(() => addToAwsAuth(data, addUser({ userarn: userArn('a'), username: 'a', groups: [] })))).toBe(
      [
        'the current aws-auth ConfigMap is invalid; fix it first:',
        "  - data.mapRoles[0].rolearn: error canonicalizing ARN: arn 'not-an-arn' is invalid: 'arn: invalid prefix'",
        '  - data.mapRoles[1].username: username must be a non-empty string',
      ].join('\n'),
    )
  })

  it('a current value that is not YAML is refused', () => {
    const message = refusal(() =>
      addToAwsAuth({ mapUsers: '- [' }, addRole({ rolearn: roleArn('a'), username: 'a', groups: [] })),
    )
    expect(message).toMatch(
      /^the current aws-auth ConfigMap is invalid; fix it first:\n {2}- data\.mapUsers: invalid YAML: /,
    )
  })

  it.each<[string, AwsAuthAddition, string]>([
    [
      'an unknown template variable',
      addUser({ userarn: userArn('a'), username: '{{Nope}}', groups: [] }),
      '  - data.mapUsers[0].username: unknown template variable {{Nope}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})',
    ],
    [
      'an empty username',
      addUser({ userarn: userArn('a'), username: '', groups: [] }),
      '  - data.mapUsers[0].username: username must be a non-empty string',
    ],
    [
      'a role ARN given as a user',
      addUser({ userarn: roleArn('a'), username: 'a', groups: [] }),
      `  - data.mapUsers[0].userarn: '${roleArn('a')}' is a role ARN; map it under mapRoles`,
    ],
    [
      'a malformed role ARN',
      addRole({ rolearn: 'role/a', username: 'a', groups: [] }),
      "  - data.mapRoles[0].rolearn: error canonicalizing ARN: arn 'role/a' is invalid: 'arn: invalid prefix'",
    ],
    [
      'an SSO mapping with a bad account ID',
      addRole({ sso: { permissionSetName: 'Dev', accountID: '1234' }, username: 'a', groups: [] }),
      "  - data.mapRoles[0].sso.accountID: '1234' is not a valid AWS account ID (12 digits; quote account IDs in YAML)",
    ],
    [
      'neither rolearn nor SSO',
      addRole({ username: 'a', groups: [] }),
      '  - data.mapRoles[0]: one of rolearn or SSO must be supplied',
    ],
  ])('%s', (_name, addition, problem) => {
    expect(refusal(() => addToAwsAuth({}, addition))).toBe(
      `refusing a change that would leave the aws-auth ConfigMap invalid:\n${problem}`,
    )
  })
})
