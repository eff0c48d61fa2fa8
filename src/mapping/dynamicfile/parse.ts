import { caseInsensitive } from '../../shared/reader.js'
import { roleMapping, userMapping } from '../decode.js'
import { stripRolePath } from '../../sts/arn.js'
import type { Problem } from '../../shared/problem.js'
import { arnKey, checkedMapping } from '../entry-checks.js'
import { compileRules, EMPTY_RULES, type InvalidRule, type MappingDocument, type RuleSet } from '../rules.js'
import { isRolePattern } from '../role-pattern.js'
import { snapshotOf, type Snapshot } from '../static.js'
import type { Mapping } from '../types.js'

/** A DynamicFile snapshot: by ARN (like the other backends) or, in strict mode, by principal ID. */
export interface DynamicRules extends Snapshot {
  /** LastUpdatedDateTime (unix seconds) if the file has one. */
  readonly lastUpdated?: number | undefined
}

export const EMPTY_DYNAMIC: DynamicRules = snapshotOf(EMPTY_RULES)

/**
 * Parses the DynamicFile JSON (upstream's pkg/mapper/dynamicfile format): `{Version, LastUpdatedDateTime, mapRoles, mapUsers,
 * mapAccounts}`, keys case-insensitive. Every entry is validated (upstream validates none), and any
 * error rejects the whole file so the previous mapping stays in force.
 */
export function parseDynamicFile(
  text: string,
  opts: { userIdStrict: boolean },
): {
  rules?: DynamicRules
  problems: Problem[]
  invalid?: InvalidRule[]
  /** Not in strict mode: the document and its compiled rules (also when invalid), for `validate`. */
  compiled?: { doc: MappingDocument; rules: RuleSet }
  /** When the file has errors but is JSON: its valid entries only. */
  partial?: DynamicRules
} {
  const problems: Problem[] = []
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    return { problems: [{ path: '(file)', message: `invalid JSON: ${(err as Error).message}`, severity: 'error' }] }
  }
  const root = caseInsensitive(json, '', problems)
  root.string('Version')
  const lastUpdatedText = root.string('LastUpdatedDateTime')
  const lastUpdated = lastUpdatedText === undefined ? undefined : Number(lastUpdatedText)
  if (lastUpdatedText !== undefined && !/^\d+$/.test(lastUpdatedText)) {
    root.error('LastUpdatedDateTime', `must be unix seconds as a string, got "${lastUpdatedText}"`)
  }
  const roles = root.list('mapRoles').map(roleMapping)
  const users = root.list('mapUsers').map(userMapping)
  const doc = { mapRoles: roles, mapUsers: users, mapAccounts: root.accountList('mapAccounts') }
  root.warnUnknown(['version', 'lastupdateddatetime', 'clusterid', 'maproles', 'mapusers', 'mapaccounts'])
  // A reader error already explains a field; do not repeat what the rule checks say about the same field.
  const readerErrors = problems.filter((p) => p.severity === 'error').map((p) => p.path)
  const alreadyReported = (p: Problem) =>
    p.severity === 'error' && readerErrors.some((r) => p.path === r || p.path.startsWith(`${r}.`))

  if (!opts.userIdStrict) {
    const { rules, problems: ruleProblems, invalid } = compileRules(doc)
    problems.push(...ruleProblems.filter((p) => !alreadyReported(p)))
    const compiled = { doc, rules }
    const snapshot = { ...snapshotOf(rules), lastUpdated }
    if (problems.some((p) => p.severity === 'error')) return { problems, invalid, compiled, partial: snapshot }
    return { rules: snapshot, problems, invalid, compiled }
  }

  // Strict mode: entries are keyed by principal ID (AROA.../AIDA...), which survives a role being
  // deleted and re-created under the same name; an ARN, when given, must agree with the identity.
  const err = (path: string, message: string) => {
    const p: Problem = { path, message, severity: 'error' }
    if (!alreadyReported(p)) problems.push(p)
  }
  const accounts = compileRules({ mapRoles: [], mapUsers: [], mapAccounts: doc.mapAccounts })
  problems.push(...accounts.problems.filter((p) => !alreadyReported(p)))
  type Entry = { mapping: Mapping; rule: string; kind: 'user' | 'role'; arn?: string | undefined }
  const entries: (Entry & { userid: string })[] = []
  /** Checks an entry (problems in file order); keeps it when it can be keyed. */
  const check = (
    kind: 'user' | 'role',
    i: number,
    m: { userid?: string | undefined; username: string; groups: readonly string[] },
    arn: string | undefined,
  ) => {
    const rule = `${kind === 'user' ? 'mapUsers' : 'mapRoles'}[${i}]`
    // Only an entry without a problem of its own is ever keyed: a file with errors may still apply
    // its valid entries (when nothing else is in force), never its invalid ones.
    const errorsBefore = problems.filter((p) => p.severity === 'error').length
    const mapping = checkedMapping(rule, m, err)
    if (kind === 'role' && arn && isRolePattern(arn)) {
      err(
        `${rule}.rolearn`,
        `'${arn}' is a role pattern, and dynamicfileUserIDStrict matches entries by principal ID (userid), ` +
          'which names exactly one role: list each role with its userid, or turn dynamicfileUserIDStrict off',
      )
      return
    }
    // The same ARN checks as everywhere (12-digit account, no session ARN under mapRoles, ...).
    if (arn) arnKey(arn, `${rule}.${kind === 'user' ? 'userarn' : 'rolearn'}`, err, kind === 'role')
    if (!m.userid) {
      err(`${rule}.userid`, 'value for userid must be supplied (dynamicfileUserIDStrict is on)')
      return
    }
    const valid = problems.filter((p) => p.severity === 'error').length === errorsBefore
    if (mapping !== undefined && valid) entries.push({ userid: m.userid, mapping, rule, kind, arn: arn || undefined })
  }
  roles.forEach((r, i) => {
    if (r.sso) {
      problems.push({
        path: `mapRoles[${i}].sso`,
        message: 'SSO entries are not supported by DynamicFile in dynamicfileUserIDStrict mode',
        severity: 'error',
      })
      return
    }
    check('role', i, r, r.rolearn)
  })
  users.forEach((u, i) => check('user', i, u, u.userarn))
  // Users are keyed first: the same principal ID in both lists resolves to the user entry, as every
  // backend looks up (user, then role), so a misplaced copy in mapRoles cannot shadow it.
  const byId = new Map<string, Entry>()
  for (const { userid, ...entry } of [
    ...entries.filter((e) => e.kind === 'user'),
    ...entries.filter((e) => e.kind === 'role'),
  ]) {
    const earlier = byId.get(userid)
    if (earlier === undefined) {
      byId.set(userid, entry)
      continue
    }
    const wins = earlier.kind === entry.kind ? 'the first entry wins' : 'the mapUsers entry wins'
    problems.push({
      path: `${entry.rule}.userid`,
      message: `duplicate of ${earlier.rule}; ${wins}`,
      severity: 'warning',
    })
  }
  const snapshot: DynamicRules = {
    lookup: (identity) => {
      const entry = byId.get(identity.userId)
      if (entry === undefined) return undefined
      if (entry.arn !== undefined && !sameRole(entry.arn, identity.canonicalArn)) return undefined
      return { mapping: entry.mapping, rule: entry.rule, kind: entry.kind }
    },
    accounts: accounts.rules.accounts,
    // What is in force: a repeated userid is ignored (the first entry wins), so it is not counted.
    counts: {
      roles: [...byId.values()].filter((e) => e.kind === 'role').length,
      users: [...byId.values()].filter((e) => e.kind === 'user').length,
      accounts: accounts.rules.accounts.size,
    },
    lastUpdated,
  }
  if (problems.some((p) => p.severity === 'error')) return { problems, partial: snapshot }
  return { rules: snapshot, problems }
}

function sameRole(configured: string, canonical: string): boolean {
  try {
    return stripRolePath(configured).toLowerCase() === stripRolePath(canonical).toLowerCase()
  } catch {
    return false
  }
}
