import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  isRolePattern,
  namesOverlap,
  overlapExample,
  parseRolePattern,
  type RolePattern,
} from '../../src/mapping/role-pattern.js'
import { compileRules, lookupRules } from '../../src/mapping/rules.js'
import type { RoleMapping } from '../../src/mapping/types.js'
import { PARTITION_IDS } from '../../src/shared/partitions.js'
import { identityOf, sessionOf } from '../support/identities.js'

const ACCOUNT = '111122223333'
const roleArn = (name: string, account = ACCOUNT, partition = 'aws') =>
  `arn:${partition}:iam::${account}:role/${name}`.toLowerCase()

function pattern(arn: string): RolePattern {
  const parsed = parseRolePattern(arn)
  if ('error' in parsed) throw new Error(parsed.error)
  return parsed.pattern
}

/** A glob matcher written the obvious (slow) way, to check the compiled regex against. */
function globMatches(glob: string, s: string): boolean {
  if (glob === '') return s === ''
  if (glob[0] === '*') return globMatches(glob.slice(1), s) || (s !== '' && globMatches(glob, s.slice(1)))
  if (s === '') return false
  return (glob[0] === '?' || glob[0] === s[0]) && globMatches(glob.slice(1), s.slice(1))
}

const nameChar = fc.constantFrom('a', 'b', '-', '_')
const globChar = fc.constantFrom('a', 'b', '-', '_', '*', '?')
const name = fc.array(nameChar, { minLength: 1, maxLength: 8 }).map((a) => a.join(''))
const glob = fc.array(globChar, { minLength: 1, maxLength: 6 }).map((a) => a.join(''))

describe('role patterns', () => {
  it('a wildcard anywhere makes an entry a pattern', () => {
    expect(isRolePattern('arn:aws:iam::111122223333:role/dev-*')).toBe(true)
    expect(isRolePattern('arn:aws:iam::111122223333:role/dev-?')).toBe(true)
    expect(isRolePattern('arn:aws:iam::111122223333:role/dev')).toBe(false)
  })

  it.each([
    ['dev-*', ['dev-', 'dev-alice', 'DEV-Bob'], ['dev', 'de-v', 'prod-dev-x', 'xdev-']],
    ['dev-?', ['dev-1', 'dev-a'], ['dev-', 'dev-12']],
    ['*-admin', ['team-admin', '-admin'], ['admin', 'team-admin2']],
    ['*', ['a', 'anything'], []],
    ['d*v*', ['dv', 'dev', 'drive'], ['vd', 'ev']],
  ])('%s', (namePattern, yes, no) => {
    const p = pattern(`arn:aws:iam::${ACCOUNT}:role/${namePattern}`)
    for (const n of yes) expect(p.regex.test(roleArn(n)), n).toBe(true)
    for (const n of no) expect(p.regex.test(roleArn(n)), n).toBe(false)
  })

  it('specificity counts literal characters; only-wildcard names match every role', () => {
    expect(pattern(`arn:aws:iam::${ACCOUNT}:role/dev-*`)).toMatchObject({ specificity: 4, matchesEveryRole: false })
    expect(pattern(`arn:aws:iam::${ACCOUNT}:role/*`)).toMatchObject({ specificity: 0, matchesEveryRole: true })
    expect(pattern(`arn:aws:iam::${ACCOUNT}:role/?*`)).toMatchObject({ specificity: 0, matchesEveryRole: true })
    expect(pattern(`arn:aws:iam::${ACCOUNT}:role/???`)).toMatchObject({ specificity: 0, matchesEveryRole: false })
  })

  it.each([
    [
      'arn:aws:iam::*:role/dev-*',
      'the account of a role pattern cannot be a wildcard: only the role name may hold * or ?',
    ],
    [
      'arn:*:iam::111122223333:role/dev-*',
      'the partition of a role pattern cannot be a wildcard: only the role name may hold * or ?',
    ],
    [
      'arn:aws:*::111122223333:role/dev-*',
      'the service of a role pattern cannot be a wildcard: only the role name may hold * or ?',
    ],
    [
      'arn:aws:iam:*:111122223333:role/dev-*',
      'the region of a role pattern cannot be a wildcard: only the role name may hold * or ?',
    ],
    ['arn:aws:iam::11112222333:role/dev-*', "'11112222333' is not a valid AWS account ID (12 digits)"],
    [
      'arn:aws:iam::111122223333:user/dev-*',
      'a role pattern must look like arn:aws:iam::<account>:role/<name pattern>',
    ],
    ['arn:aws:iam::111122223333:*', 'a role pattern must look like arn:aws:iam::<account>:role/<name pattern>'],
    [
      'arn:aws:sts::111122223333:assumed-role/dev-*/x',
      'a role pattern must look like arn:aws:iam::<account>:role/<name pattern>',
    ],
    [
      'arn:aws-nope:iam::111122223333:role/dev-*',
      "'arn:aws-nope:iam::111122223333:role/dev-*' does not have a recognized partition",
    ],
    [
      'arn:aws:iam::111122223333:role/teams/*',
      "a role pattern cannot name a path ('role/teams/*'): STS reports role sessions without their path, so the server cannot tell which path a role has; match on role names instead (e.g. role/team-*)",
    ],
    [
      'arn:aws:iam::111122223333:role/*/Admin',
      "a role pattern cannot name a path ('role/*/Admin'): STS reports role sessions without their path, so the server cannot tell which path a role has; match on role names instead (e.g. role/team-*)",
    ],
    [
      'arn:aws:iam::111122223333:role/dev *',
      "'dev *' is not a role name pattern (1-64 of A-Z a-z 0-9 + = , . @ _ - and the wildcards * ?)",
    ],
    ['role/dev-*', "'role/dev-*' is not an ARN (arn:<partition>:iam::<account>:role/<name pattern>)"],
  ])('refuses %s', (arn, error) => {
    expect(parseRolePattern(arn)).toEqual({ error })
  })

  it('the compiled regex agrees with a plain glob matcher (property)', () => {
    fc.assert(
      fc.property(glob, name, (g, n) => {
        expect(pattern(`arn:aws:iam::${ACCOUNT}:role/${g}`).regex.test(roleArn(n))).toBe(globMatches(g, n))
      }),
      { numRuns: 2000 },
    )
  })

  it('never matches a role of another account or partition (property)', () => {
    const account = fc.stringMatching(/^\d{12}$/)
    const partition = fc.constantFrom(...PARTITION_IDS)
    fc.assert(
      fc.property(glob, name, account, account, partition, partition, (g, n, a1, a2, p1, p2) => {
        fc.pre(a1 !== a2 || p1 !== p2)
        expect(pattern(`arn:${p1}:iam::${a1}:role/${g}`).regex.test(roleArn(n, a2, p2))).toBe(false)
      }),
      { numRuns: 2000 },
    )
  })

  it('namesOverlap is true exactly when some name matches both globs (property, brute force over short names)', () => {
    const names: string[] = ['']
    for (let len = 1; len <= 5; len++) {
      for (const prefix of names.filter((s) => s.length === len - 1)) for (const c of 'ab') names.push(prefix + c)
    }
    const small = fc.array(fc.constantFrom('a', 'b', '*', '?'), { minLength: 1, maxLength: 3 }).map((a) => a.join(''))
    fc.assert(
      fc.property(small, small, (a, b) => {
        // globs of at most 3 symbols that share a name always share one of at most 5 characters
        const brute = names.some((n) => globMatches(a, n) && globMatches(b, n))
        expect(namesOverlap(a, b)).toBe(brute)
      }),
      { numRuns: 2000 },
    )
  })

  it('overlapExample names a role both globs match, exactly when they overlap (property)', () => {
    fc.assert(
      fc.property(glob, glob, (a, b) => {
        const example = overlapExample(a, b)
        expect(example !== undefined).toBe(namesOverlap(a, b))
        if (example === undefined) return
        expect(example).toMatch(/^[\w+=,.@-]+$/)
        expect(globMatches(a, example) && globMatches(b, example)).toBe(true)
      }),
      { numRuns: 2000 },
    )
    expect(overlapExample('dev-*', '*-ops')).toBe('dev-ops')
    expect(overlapExample('dev-*', 'ops-*')).toBeUndefined()
    expect(overlapExample('*', '**')).toBe('x')
  })
})

// The same guarantees through the whole lookup path every backend uses (compileRules, lookupRules),
// with several patterns, exact entries and tie errors in play.
describe('role patterns through compileRules and lookupRules', () => {
  const accounts = ['111122223333', '444455556666', '777788889999']
  const partitions = ['aws', 'aws-cn', 'aws-us-gov']
  const entry = fc.record({
    partition: fc.constantFrom(...partitions),
    account: fc.constantFrom(...accounts),
    name: glob,
  })
  const who = fc.record({ partition: fc.constantFrom(...partitions), account: fc.constantFrom(...accounts), name })
  const rolesOf = (entries: { partition: string; account: string; name: string }[]): RoleMapping[] =>
    entries.map((e, i) => ({
      rolearn: `arn:${e.partition}:iam::${e.account}:role/${e.name}`,
      username: `u${i}:{{SessionName}}`,
      groups: [],
    }))

  it("a match is always a pattern of the identity's own partition and account that matches its role name (property)", () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 6 }), who, (entries, w) => {
        const { rules } = compileRules({ mapRoles: rolesOf(entries), mapUsers: [], mapAccounts: [] })
        const identity = sessionOf(w.account, w.name, 'sess', { partition: w.partition })
        const match = lookupRules(rules, identity)
        if (match === undefined) return
        const e = entries[Number(/\[(\d+)\]/.exec(match.rule)![1])]!
        // globs without a wildcard are exact role entries
        expect(match.kind).toBe(isRolePattern(e.name) ? 'role-pattern' : 'role')
        expect([e.partition, e.account]).toEqual([w.partition, w.account])
        expect(globMatches(e.name.toLowerCase(), w.name.toLowerCase())).toBe(true)
      }),
      { numRuns: 1500 },
    )
  })

  it("with no errors, an exact role wins, else the most specific matching pattern of the identity's account, and only one can (property)", () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 6 }), who, (entries, w) => {
        const { rules, problems } = compileRules({ mapRoles: rolesOf(entries), mapUsers: [], mapAccounts: [] })
        fc.pre(!problems.some((p) => p.severity === 'error'))
        const candidates = entries
          .map((e, i) => ({ ...e, i, literal: [...e.name].filter((c) => c !== '*' && c !== '?').length }))
          .filter((e) => e.partition === w.partition && e.account === w.account && globMatches(e.name, w.name))
        const match = lookupRules(rules, sessionOf(w.account, w.name, 'sess', { partition: w.partition }))
        if (candidates.length === 0) return void expect(match).toBeUndefined()
        const exact = candidates.find((c) => !isRolePattern(c.name))
        if (exact !== undefined) return void expect(match).toMatchObject({ kind: 'role', rule: `mapRoles[${exact.i}]` })
        const best = Math.max(...candidates.map((c) => c.literal))
        const winners = candidates.filter((c) => c.literal === best)
        expect(winners).toHaveLength(1) // two would be a tie, which is an error
        expect(match?.rule).toBe(`mapRoles[${winners[0]!.i}]`)
      }),
      { numRuns: 1500 },
    )
  })

  it('an IAM user, root or federated user of the account is never matched by a role pattern', () => {
    const { rules } = compileRules({
      mapRoles: rolesOf([{ partition: 'aws', account: accounts[0]!, name: '*' }]),
      mapUsers: [],
      mapAccounts: [],
    })
    for (const arn of [
      `arn:aws:iam::${accounts[0]}:user/dev`,
      `arn:aws:iam::${accounts[0]}:root`,
      `arn:aws:sts::${accounts[0]}:federated-user/dev`,
    ]) {
      expect(lookupRules(rules, identityOf(arn)), arn).toBeUndefined()
    }
    expect(lookupRules(rules, sessionOf(accounts[0]!, 'dev', 's'))?.rule).toBe('mapRoles[0]')
  })
})
