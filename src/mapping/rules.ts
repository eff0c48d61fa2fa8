import { stripRolePath } from '../sts/arn.js'
import type { Problem } from '../shared/problem.js'
import { ACCOUNT_ID, arnKey, checkedMapping, ssoPattern } from './entry-checks.js'
import {
  findTies,
  indexPatterns,
  lookupPattern,
  orderPatterns,
  type PatternIndex,
  type PatternRule,
  type Tie,
} from './pattern-rules.js'
import { isRolePattern, parseRolePattern, type RolePattern } from './role-pattern.js'
import type { Identity, Match, Mapping, RoleMapping, UserMapping } from './types.js'

export interface MappingDocument {
  readonly mapRoles: readonly RoleMapping[]
  readonly mapUsers: readonly UserMapping[]
  readonly mapAccounts: readonly string[]
}

interface Rule {
  readonly mapping: Mapping
  readonly rule: string
}

/**
 * A compiled, immutable set of rules. Lookups are map reads: user ARN, then role ARN (path-less,
 * as STS reports roles), then SSO permission sets, then role patterns (most literal characters
 * first); duplicates resolve to the first entry, always, and two patterns that tie are an error.
 */
export interface RuleSet {
  readonly users: ReadonlyMap<string, Rule>
  readonly roles: ReadonlyMap<string, Rule>
  readonly sso: readonly (Rule & { readonly pattern: RegExp })[]
  /** Role patterns in precedence order (see pattern-rules.ts), invalid ones included as blockers. */
  readonly patterns: readonly PatternRule[]
  readonly patternIndex: PatternIndex
  /** Role keys whose exact entry is invalid: no pattern applies to them (a broken entry never widens). */
  readonly invalidRoleKeys: ReadonlySet<string>
  readonly accounts: ReadonlyMap<string, string>
  readonly counts: { readonly roles: number; readonly users: number; readonly accounts: number }
}

/**
 * An entry that was not compiled because of an error, with the lookup key it would have had when
 * its ARN can be read: `explain` names it when it was meant for the identity being explained.
 */
export interface InvalidRule {
  readonly rule: string
  readonly kind: 'user' | 'role' | 'sso'
  readonly wouldMatch?: string | undefined
  /** A role pattern entry that parsed: the roles it was meant for. */
  readonly pattern?: RolePattern | undefined
  readonly problems: readonly Problem[]
}

export const EMPTY_RULES: RuleSet = compileRules({ mapRoles: [], mapUsers: [], mapAccounts: [] }).rules

/**
 * Validates every entry and compiles the valid ones. Callers that apply the last-good rule use the
 * result only when there is no error; `explain` and `validate` show all problems.
 */
export function compileRules(
  doc: MappingDocument,
  prefix = '',
  /** How entries are named in rules and problem paths (default `mapRoles[2]`). */
  label: (list: 'mapRoles' | 'mapUsers', index: number) => string = (list, i) => `${list}[${i}]`,
): { rules: RuleSet; problems: Problem[]; invalid: InvalidRule[] } {
  const problems: Problem[] = []
  const invalid: InvalidRule[] = []
  /** Records an entry as invalid when it added errors since `mark`. */
  const settle = (
    mark: number,
    rule: string,
    kind: InvalidRule['kind'],
    wouldMatch: string | undefined,
    pattern?: RolePattern,
  ) => {
    const own = problems.slice(mark).filter((p) => p.severity === 'error')
    if (own.length > 0) invalid.push({ rule, kind, wouldMatch, pattern, problems: own })
    return own.length === 0
  }
  const err = (path: string, message: string) => problems.push({ path: prefix + path, message, severity: 'error' })
  const warn = (path: string, message: string) => problems.push({ path: prefix + path, message, severity: 'warning' })
  const users = new Map<string, Rule>()
  const roles = new Map<string, Rule>()
  const sso: (Rule & { pattern: RegExp })[] = []
  const ssoKeys = new Map<string, string>()
  const patterns: PatternRule[] = []
  const accounts = new Map<string, string>()

  const checkMapping = (path: string, m: { username?: unknown; groups?: unknown }) => checkedMapping(path, m, err)

  doc.mapUsers.forEach((u, i) => {
    const path = label('mapUsers', i)
    const mark = problems.length
    const mapping = checkMapping(path, u)
    if (typeof u.userarn !== 'string' || u.userarn === '') {
      err(`${path}.userarn`, 'value for userarn must be supplied')
      return void settle(mark, path, 'user', undefined)
    }
    const { key, wouldMatch } = arnKey(u.userarn, `${path}.userarn`, err, false)
    settle(mark, path, 'user', wouldMatch)
    if (key === undefined || mapping === undefined) return
    const earlier = users.get(key)
    if (earlier !== undefined) {
      warn(`${path}.userarn`, `duplicate of ${earlier.rule}; the first entry wins`)
      return
    }
    users.set(key, { mapping, rule: path })
  })

  doc.mapRoles.forEach((r, i) => {
    const path = label('mapRoles', i)
    const mark = problems.length
    const mapping = checkMapping(path, r)
    const hasArn = r.rolearn !== undefined && r.rolearn !== ''
    const hasSso = r.sso !== undefined && r.sso !== null
    if (hasArn === hasSso) {
      err(path, hasArn ? 'only one of rolearn or SSO can be supplied' : 'one of rolearn or SSO must be supplied')
      return void settle(mark, path, 'role', undefined)
    }
    if (hasSso) {
      const pattern = ssoPattern(r.sso!, `${path}.sso`, err)
      settle(mark, path, 'sso', undefined)
      if (pattern === undefined || mapping === undefined) return
      const earlier = ssoKeys.get(pattern.source)
      if (earlier !== undefined) {
        warn(`${path}.sso`, `duplicate of ${earlier}; the first entry wins`)
        return
      }
      ssoKeys.set(pattern.source, path)
      sso.push({ mapping, rule: path, pattern })
      return
    }
    if (typeof r.rolearn !== 'string') {
      err(`${path}.rolearn`, 'rolearn must be a string')
      return void settle(mark, path, 'role', undefined)
    }
    if (isRolePattern(r.rolearn)) {
      const parsed = parseRolePattern(r.rolearn.trim())
      if ('error' in parsed) err(`${path}.rolearn`, parsed.error)
      const pattern = 'pattern' in parsed ? parsed.pattern : undefined
      const valid = settle(mark, path, 'role', undefined, pattern)
      if (pattern !== undefined) patterns.push({ rule: path, pattern, mapping: valid ? mapping : undefined })
      return
    }
    const { key, wouldMatch } = arnKey(r.rolearn, `${path}.rolearn`, err, true)
    settle(mark, path, 'role', wouldMatch)
    if (key === undefined || mapping === undefined) return
    const earlier = roles.get(key)
    if (earlier !== undefined) {
      warn(`${path}.rolearn`, `duplicate of ${earlier.rule} (role paths are ignored); the first entry wins`)
      return
    }
    roles.set(key, { mapping, rule: path })
  })

  doc.mapAccounts.forEach((a, i) => {
    const path = `mapAccounts[${i}]`
    if (typeof a !== 'string' || !ACCOUNT_ID.test(a)) {
      err(path, `'${String(a)}' is not a valid AWS account ID (12 digits; quote it in YAML)`)
      return
    }
    if (!accounts.has(a)) accounts.set(a, path)
  })

  const ordered = orderPatterns(settleTies(patterns, problems, invalid, prefix))
  const invalidRoleKeys = new Set(
    invalid.flatMap((r) => (r.kind === 'role' && r.wouldMatch !== undefined ? [r.wouldMatch] : [])),
  )
  const validPatterns = ordered.filter((p) => p.mapping !== undefined).length
  return {
    rules: {
      users,
      roles,
      sso,
      patterns: ordered,
      patternIndex: indexPatterns(ordered),
      invalidRoleKeys,
      accounts,
      counts: { roles: roles.size + sso.length + validPatterns, users: users.size, accounts: accounts.size },
    },
    problems,
    invalid,
  }
}

/**
 * Reports every tie (see findTies: each tied entry is named by one problem) and makes every entry of
 * a tie invalid: none maps, and the roles they match fall to no weaker pattern. Returns the patterns
 * with tied ones stripped of their mapping.
 */
function settleTies(
  patterns: readonly PatternRule[],
  problems: Problem[],
  invalid: InvalidRule[],
  prefix: string,
): PatternRule[] {
  const ties = findTies(patterns)
  if (ties.size === 0) return [...patterns]
  const reported = new Map<Tie, Problem>()
  // in document order of the entries the problems are at
  for (const p of patterns) {
    const tie = ties.get(p)
    if (tie === undefined || tie.at !== p) continue
    const problem: Problem = { path: `${prefix}${p.rule}.rolearn`, message: tie.message, severity: 'error' }
    problems.push(problem)
    reported.set(tie, problem)
  }
  for (const entry of patterns) {
    const tie = ties.get(entry)
    if (tie === undefined) continue
    const problem = reported.get(tie)!
    const at = invalid.findIndex((r) => r.rule === entry.rule)
    if (at === -1) invalid.push({ rule: entry.rule, kind: 'role', pattern: entry.pattern, problems: [problem] })
    else invalid[at] = { ...invalid[at]!, problems: [...invalid[at]!.problems, problem] }
  }
  return patterns.map((p) => (ties.has(p) ? { rule: p.rule, pattern: p.pattern } : p))
}

/** The invalid entries that were meant for this identity (their ARN or role pattern would have matched it). */
export function invalidRulesFor(invalid: readonly InvalidRule[], identity: Identity): InvalidRule[] {
  const { userKey, roleKey } = lookupKeys(identity)
  return invalid.filter(
    (r) =>
      (r.wouldMatch !== undefined && (r.wouldMatch === userKey || (r.kind === 'role' && r.wouldMatch === roleKey))) ||
      r.pattern?.regex.test(roleKey) === true,
  )
}

/**
 * The explicit rule for an identity: user ARN, then role ARN, then SSO permission set, then the
 * most specific role pattern.
 */
export function lookupRules(rules: RuleSet, identity: Identity): Match | undefined {
  const { userKey, roleKey } = lookupKeys(identity)
  const user = rules.users.get(userKey)
  if (user !== undefined) return { ...user, kind: 'user' }
  const role = rules.roles.get(roleKey)
  if (role !== undefined) return { ...role, kind: 'role' }
  const sso = rules.sso.find((s) => s.pattern.test(roleKey))
  if (sso !== undefined) return { mapping: sso.mapping, rule: sso.rule, kind: 'sso' }
  if (rules.patterns.length === 0 || rules.invalidRoleKeys.has(roleKey)) return undefined
  return lookupPattern(rules.patternIndex, roleKey)
}

/**
 * For `explain`: every role pattern (valid or not) that matches the identity's role, in precedence
 * order, and whether an invalid exact entry for the role keeps every pattern from applying.
 */
export function patternCandidates(
  rules: RuleSet,
  identity: Identity,
): { matching: PatternRule[]; exactInvalid: boolean; roleName?: string | undefined } {
  const { roleKey } = lookupKeys(identity)
  const roleName = /:role\/([^/]+)$/.exec(roleKey)?.[1]
  return {
    matching: rules.patterns.filter((p) => p.pattern.regex.test(roleKey)),
    exactInvalid: rules.invalidRoleKeys.has(roleKey),
    roleName,
  }
}

// An identity comes from the identity cache on most reviews, and every backend looks it up: derive
// its keys once per identity object.
const KEYS = new WeakMap<Identity, { userKey: string; roleKey: string }>()

function lookupKeys(identity: Identity): { userKey: string; roleKey: string } {
  let keys = KEYS.get(identity)
  if (keys === undefined) {
    const userKey = identity.canonicalArn.toLowerCase()
    let roleKey = userKey
    try {
      roleKey = stripRolePath(userKey)
    } catch {
      // an ARN STS returned always parses; keep the canonical form if not
    }
    keys = { userKey, roleKey }
    KEYS.set(identity, keys)
  }
  return keys
}
