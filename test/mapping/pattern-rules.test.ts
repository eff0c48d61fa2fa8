// Role patterns in the rule compiler every backend uses: what is accepted and refused, the
// precedence (user > exact role > SSO permission set > most specific pattern), ties, templates, and
// what happens to the roles of an entry that is invalid while the rest of its document is in force.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mapIdentity } from '../../src/mapping/chain.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import { compileRules, lookupRules, type MappingDocument } from '../../src/mapping/rules.js'
import { snapshotOf, StaticMapper } from '../../src/mapping/static.js'
import type { RoleMapping } from '../../src/mapping/types.js'
import { ConfigInvalid } from '../../src/shared/errors.js'
import type { Problem } from '../../src/shared/problem.js'
import { identityOf, sessionOf } from '../support/identities.js'

const A = '111122223333'
const B = '444455556666'
const doc = (parts: Partial<MappingDocument>): MappingDocument => ({
  mapRoles: [],
  mapUsers: [],
  mapAccounts: [],
  ...parts,
})
const role = (name: string, username: string, groups: string[] = [], account = A): RoleMapping => ({
  rolearn: `arn:aws:iam::${account}:role/${name}`,
  username,
  groups,
})
const err = (path: string, message: string): Problem => ({ path, message, severity: 'error' })
const errorsOf = (problems: readonly Problem[]) => problems.filter((p) => p.severity === 'error')

describe('role pattern entries are accepted and refused like exact ones, by the same compiler', () => {
  it('a pattern compiles, is counted as a role rule and maps sessions of matching roles', () => {
    const { rules, problems } = compileRules(doc({ mapRoles: [role('dev-*', 'dev:{{SessionName}}', ['devs'])] }))
    expect(problems).toEqual([])
    expect(rules.counts).toEqual({ roles: 1, users: 0, accounts: 0 })
    expect(lookupRules(rules, sessionOf(A, 'dev-alice', 'alice'))).toEqual({
      mapping: { username: 'dev:{{SessionName}}', groups: ['devs'] },
      rule: 'mapRoles[0]',
      kind: 'role-pattern',
      pattern: `arn:aws:iam::${A}:role/dev-*`,
    })
    expect(lookupRules(rules, sessionOf(A, 'DEV-Bob', 'bob'))?.rule).toBe('mapRoles[0]')
    expect(lookupRules(rules, sessionOf(A, 'prod-alice', 'alice'))).toBeUndefined()
    expect(lookupRules(rules, sessionOf(B, 'dev-alice', 'alice'))).toBeUndefined()
  })

  it.each<[string, RoleMapping[], Problem[]]>([
    [
      'a path: STS reports role sessions without it',
      [role('teams/*', 'u')],
      [
        err(
          'mapRoles[0].rolearn',
          "a role pattern cannot name a path ('role/teams/*'): STS reports role sessions without their path, so the " +
            'server cannot tell which path a role has; match on role names instead (e.g. role/team-*)',
        ),
      ],
    ],
    [
      'a wildcard account',
      [{ rolearn: 'arn:aws:iam::*:role/dev-*', username: 'u', groups: [] }],
      [
        err(
          'mapRoles[0].rolearn',
          'the account of a role pattern cannot be a wildcard: only the role name may hold * or ?',
        ),
      ],
    ],
    [
      'a wildcard partition',
      [{ rolearn: `arn:aws*:iam::${A}:role/dev-*`, username: 'u', groups: [] }],
      [
        err(
          'mapRoles[0].rolearn',
          'the partition of a role pattern cannot be a wildcard: only the role name may hold * or ?',
        ),
      ],
    ],
    [
      'an assumed-role pattern',
      [{ rolearn: `arn:aws:sts::${A}:assumed-role/dev-*/x`, username: 'u', groups: [] }],
      [err('mapRoles[0].rolearn', 'a role pattern must look like arn:aws:iam::<account>:role/<name pattern>')],
    ],
    [
      'a template error in a pattern entry',
      [role('dev-*', 'dev:{{Nope}}')],
      [
        err(
          'mapRoles[0].username',
          'unknown template variable {{Nope}} (known: {{EC2PrivateDNSName}}, {{AccountID}}, {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}})',
        ),
      ],
    ],
  ])('refused: %s', (_name, mapRoles, problems) => {
    const { rules, problems: got, invalid } = compileRules(doc({ mapRoles }))
    expect(got).toEqual(problems)
    expect(rules.counts.roles).toBe(0)
    expect(invalid.map((r) => r.rule)).toEqual(['mapRoles[0]'])
  })

  it('a user ARN with * or ? is refused: no IAM user name holds them, so it would silently match nobody', () => {
    const { problems } = compileRules(
      doc({ mapUsers: [{ userarn: `arn:aws:iam::${A}:user/dev-*`, username: 'u', groups: [] }] }),
    )
    expect(problems).toEqual([
      err(
        'mapUsers[0].userarn',
        `'arn:aws:iam::${A}:user/dev-*' is not a user ARN: patterns (* and ?) are for role names under mapRoles only`,
      ),
    ])
  })
})

describe('precedence within a backend: user > exact role > SSO permission set > role pattern', () => {
  const rules = compileRules(
    doc({
      mapRoles: [
        role('*', 'anyone', ['view']),
        role('dev-*', 'dev:{{SessionName}}', ['devs']),
        role('dev-lead-*', 'lead:{{SessionName}}', ['leads']),
        role('team/dev-alice', 'alice-exact', ['exact']),
        role('?ev-?', 'short', ['short']),
        { sso: { permissionSetName: 'Admin', accountID: A }, username: 'sso-admin', groups: ['admins'] },
        role('awsreservedsso_*', 'any-sso', []),
      ],
    }),
  )

  it('compiles without problems (no two patterns of equal specificity share a role name)', () => {
    expect(rules.problems).toEqual([])
  })

  it.each([
    // an exact role (path ignored, as always) beats every pattern
    ['dev-alice', 'mapRoles[3]', 'role'],
    // the most literal characters win: dev-lead-* (9) over dev-* (4) over * (0)
    ['dev-lead-bob', 'mapRoles[2]', 'role-pattern'],
    ['dev-carol', 'mapRoles[1]', 'role-pattern'],
    ['ops', 'mapRoles[0]', 'role-pattern'],
    // ?ev-? has 3 literal characters: fewer than dev-*, more than *
    ['dev-1', 'mapRoles[1]', 'role-pattern'],
    ['rev-1', 'mapRoles[4]', 'role-pattern'],
    // an SSO permission-set rule beats a pattern that also matches the role
    ['AWSReservedSSO_Admin_0123456789abcdef', 'mapRoles[5]', 'sso'],
    ['AWSReservedSSO_Other_0123456789abcdef', 'mapRoles[6]', 'role-pattern'],
  ])('a session of role/%s is mapped by %s (%s)', (name, rule, kind) => {
    expect(lookupRules(rules.rules, sessionOf(A, name, 's'))).toMatchObject({ rule, kind })
  })

  it('an IAM user is matched by user rules only: a role pattern never maps a user, even one named like it', () => {
    const r = compileRules(
      doc({
        mapRoles: [role('*', 'any-role')],
        mapUsers: [{ userarn: `arn:aws:iam::${A}:user/dev`, username: 'dev-user', groups: [] }],
      }),
    ).rules
    expect(lookupRules(r, identityOf(`arn:aws:iam::${A}:user/dev`))).toMatchObject({ kind: 'user' })
    expect(lookupRules(r, identityOf(`arn:aws:iam::${A}:user/other`))).toBeUndefined()
  })

  it('a role ARN with a path, as explain builds it, is matched by its name like STS sessions', () => {
    const r = compileRules(doc({ mapRoles: [role('dev-*', 'dev')] })).rules
    expect(lookupRules(r, identityOf(`arn:aws:iam::${A}:role/teams/dev-alice`))?.rule).toBe('mapRoles[0]')
  })
})

describe('ties: two patterns with as many literal characters that can match one role name', () => {
  it.each<[string, string[], string]>([
    [
      'overlapping names',
      ['dev-*', '*-ops'],
      `ties with mapRoles[0] (arn:aws:iam::${A}:role/dev-*): both patterns have 4 literal characters and both match a role named 'dev-ops', so neither wins; make one more specific, or split them so no role name matches both`,
    ],
    [
      'the same pattern twice',
      ['dev-*', 'dev-*'],
      `same role pattern as mapRoles[0] (arn:aws:iam::${A}:role/dev-*): two entries for one pattern tie; keep one`,
    ],
    [
      'the same pattern in another case (role names are case-insensitive)',
      ['dev-*', 'DEV-*'],
      `same role pattern as mapRoles[0] (arn:aws:iam::${A}:role/dev-*): two entries for one pattern tie; keep one`,
    ],
    [
      'a ? against a literal',
      ['dev-?', 'de?-x'],
      `ties with mapRoles[0] (arn:aws:iam::${A}:role/dev-?): both patterns have 4 literal characters and both match a role named 'dev-x', so neither wins; make one more specific, or split them so no role name matches both`,
    ],
    [
      'two patterns of wildcards only',
      ['*', '???'],
      `ties with mapRoles[0] (arn:aws:iam::${A}:role/*): both patterns have 0 literal characters and both match a role named 'xxx', so neither wins; make one more specific, or split them so no role name matches both`,
    ],
  ])('%s is an error at the later entry, naming the earlier and a role both match', (_name, names, message) => {
    const { rules, problems, invalid } = compileRules(doc({ mapRoles: names.map((n, i) => role(n, `u${i}`)) }))
    expect(problems).toEqual([err('mapRoles[1].rolearn', message)])
    // both entries are invalid: neither maps, whichever would have been "first"
    expect(invalid.map((r) => r.rule)).toEqual(['mapRoles[0]', 'mapRoles[1]'])
    expect(rules.counts.roles).toBe(0)
  })

  it.each([
    ['names that cannot overlap', ['dev-*', 'ops-*']],
    ['different specificity', ['dev-*', 'dev-a*']],
    ['another account', ['dev-*', `arn:aws:iam::${B}:role/dev-*`]],
    ['another partition', ['dev-*', `arn:aws-cn:iam::${A}:role/dev-*`]],
  ])('no tie: %s', (_name, names) => {
    const mapRoles = names.map((n, i) =>
      n.startsWith('arn:') ? { rolearn: n, username: `u${i}`, groups: [] } : role(n, `u${i}`),
    )
    expect(compileRules(doc({ mapRoles })).problems).toEqual([])
  })

  it('every entry of a tie is named by one problem, at most one per entry', () => {
    // 0 and 1 tie, 0 and 2 are one pattern, 1 and 2 tie: 2's problem names 0 only, and 1 already has its own
    const { problems, invalid } = compileRules(doc({ mapRoles: ['a*', '*a', 'a*'].map((n, i) => role(n, `u${i}`)) }))
    expect(problems.map((p) => `${p.path}: ${p.message.split(' (')[0]}`)).toEqual([
      'mapRoles[1].rolearn: ties with mapRoles[0]',
      'mapRoles[2].rolearn: same role pattern as mapRoles[0]',
    ])
    expect(invalid.map((r) => [r.rule, r.problems.map((p) => p.path)])).toEqual([
      ['mapRoles[0]', ['mapRoles[1].rolearn']],
      ['mapRoles[1]', ['mapRoles[1].rolearn']],
      ['mapRoles[2]', ['mapRoles[2].rolearn']],
    ])
  })

  it('an entry tied only with a later one that already has a problem gets its own, naming that later one', () => {
    // ab* and ba* cannot share a name; *ab shares one with each (ab, bab): its problem names ab*
    const { problems } = compileRules(doc({ mapRoles: ['ab*', 'ba*', '*ab'].map((n, i) => role(n, `u${i}`)) }))
    expect(problems.map((p) => `${p.path}: ${p.message.split(' (')[0]}`)).toEqual([
      'mapRoles[1].rolearn: ties with mapRoles[2]',
      'mapRoles[2].rolearn: ties with mapRoles[0]',
    ])
  })

  it('a document of many patterns that all tie is judged in a pass, not pair by pair (bounded CPU time)', () => {
    const mapRoles = Array.from({ length: 2000 }, (_, i) =>
      role(`*${'a'.repeat(20)}${String(i).padStart(4, '0')}*`, 'u'),
    )
    const started = process.cpuUsage()
    const { problems, invalid } = compileRules(doc({ mapRoles }))
    const cpu = process.cpuUsage(started)
    expect(problems).toHaveLength(1999)
    expect(invalid).toHaveLength(2000)
    // about 0.5 s of CPU here; every pair would take minutes
    expect((cpu.user + cpu.system) / 1e6).toBeLessThan(10)
  })

  it('the server refuses to start with a tie in its config file', () => {
    expect(
      () => new FileMapper(doc({ mapRoles: [role('dev-*', 'a'), role('*-ops', 'b')] }), { source: 'c.yaml' }),
    ).toThrow(ConfigInvalid)
    try {
      new FileMapper(doc({ mapRoles: [role('dev-*', 'a'), role('*-ops', 'b')] }), { source: 'c.yaml' })
    } catch (e) {
      expect((e as ConfigInvalid).message).toContain('server.mapRoles[1].rolearn: ties with mapRoles[0]')
    }
  })
})

// With nothing else in force, a live source applies the valid entries of a document with errors.
// Roles an invalid entry was written for must not fall to a broader pattern meanwhile.
describe('a broken entry never hands its roles to a weaker pattern', () => {
  it('an invalid exact entry: no pattern applies to its role', () => {
    const { rules, problems } = compileRules(
      doc({ mapRoles: [role('dev-*', 'dev', ['devs']), role('dev-alice', 'alice-{{Nope}}', ['system:masters'])] }),
    )
    expect(errorsOf(problems)).toHaveLength(1)
    expect(lookupRules(rules, sessionOf(A, 'dev-alice', 's'))).toBeUndefined()
    expect(lookupRules(rules, sessionOf(A, 'dev-bob', 's'))?.rule).toBe('mapRoles[0]')
  })

  it('an invalid pattern: the roles it matches fall to no less specific pattern', () => {
    const { rules } = compileRules(doc({ mapRoles: [role('*', 'anyone'), role('dev-*', 'dev-{{Nope}}')] }))
    expect(lookupRules(rules, sessionOf(A, 'dev-alice', 's'))).toBeUndefined()
    expect(lookupRules(rules, sessionOf(A, 'ops', 's'))?.rule).toBe('mapRoles[0]')
  })

  it('tied patterns: the roles either matches fall to no weaker pattern', () => {
    const { rules } = compileRules(doc({ mapRoles: [role('*', 'anyone'), role('dev-*', 'a'), role('*-ops', 'b')] }))
    for (const name of ['dev-ops', 'dev-x', 'x-ops']) {
      expect(lookupRules(rules, sessionOf(A, name, 's')), name).toBeUndefined()
    }
    expect(lookupRules(rules, sessionOf(A, 'other', 's'))?.rule).toBe('mapRoles[0]')
  })

  it('a more specific valid pattern still applies above an invalid one', () => {
    const { rules } = compileRules(doc({ mapRoles: [role('dev-*', 'dev-{{Nope}}'), role('dev-lead-*', 'lead')] }))
    expect(lookupRules(rules, sessionOf(A, 'dev-lead-x', 's'))?.rule).toBe('mapRoles[1]')
  })
})

describe('templates work in pattern entries as in exact ones', () => {
  const chainOf = (mapRoles: RoleMapping[]) => {
    const { rules, problems } = compileRules(doc({ mapRoles }))
    expect(problems).toEqual([])
    return [new StaticMapper('MountedFile', snapshotOf(rules))]
  }

  it('{{SessionName}}, {{SessionNameRaw}}, {{AccountID}} and {{AccessKeyID}}', async () => {
    const chain = chainOf([
      role('dev-*', 'dev:{{SessionName}}', ['acct-{{AccountID}}', 'raw-{{SessionNameRaw}}', 'key-{{AccessKeyID}}']),
    ])
    const id = sessionOf(A, 'dev-alice', 'alice@example.com', { accessKeyId: 'ASIAPATTERNKEY000001' })
    expect(await mapIdentity(chain, id, undefined)).toEqual({
      username: 'dev:alice-example.com',
      groups: [`acct-${A}`, 'raw-alice@example.com', 'key-ASIAPATTERNKEY000001'],
      source: 'MountedFile',
      rule: 'mapRoles[0]',
      kind: 'role-pattern',
      pattern: `arn:aws:iam::${A}:role/dev-*`,
    })
  })

  it('{{EC2PrivateDNSName}} for node roles matched by a pattern', async () => {
    const chain = chainOf([role('eks-node-*', 'system:node:{{EC2PrivateDNSName}}', ['system:nodes'])])
    const asked: string[] = []
    const resolve = async (instanceId: string) => {
      asked.push(instanceId)
      return 'ip-10-0-0-1.ec2.internal'
    }
    const result = await mapIdentity(chain, sessionOf(A, 'eks-node-group-1', 'i-0123456789abcdef0'), resolve)
    expect(result).toMatchObject({ username: 'system:node:ip-10-0-0-1.ec2.internal', kind: 'role-pattern' })
    expect(asked).toEqual(['i-0123456789abcdef0'])
  })
})

describe('the pattern index answers as a scan of every pattern in precedence order would', () => {
  it('for documents with valid, invalid and tied patterns across accounts (property)', () => {
    const glob = fc
      .array(fc.constantFrom('a', 'b', '-', '*', '?'), { minLength: 1, maxLength: 5 })
      .map((a) => a.join(''))
    const entry = fc.record({ account: fc.constantFrom(A, B), name: glob, broken: fc.boolean() })
    const name = fc.array(fc.constantFrom('a', 'b', '-'), { minLength: 1, maxLength: 6 }).map((a) => a.join(''))
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(A, B),
        name,
        (entries, account, n) => {
          const mapRoles = entries
            .filter((e) => /[*?]/.test(e.name))
            .map((e, i) => role(e.name, e.broken ? `u${i}-{{Nope}}` : `u${i}`, [], e.account))
          const { rules } = compileRules(doc({ mapRoles }))
          const roleKey = `arn:aws:iam::${account}:role/${n}`
          const scanned = rules.patterns.find((p) => p.pattern.regex.test(roleKey))
          const match = lookupRules(rules, sessionOf(account, n, 's'))
          expect(match?.rule).toBe(scanned?.mapping === undefined ? undefined : scanned.rule)
        },
      ),
      { numRuns: 3000 },
    )
  })
})
