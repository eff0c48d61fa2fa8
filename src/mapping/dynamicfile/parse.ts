import { caseInsensitive } from '../../shared/reader.js'
import { roleMapping, userMapping } from '../decode.js'
import { canonicalizeArn, stripRolePath } from '../../sts/arn.js'
import type { Problem } from '../../shared/problem.js'
import { checkedMapping, compileRules, EMPTY_RULES } from '../rules.js'
import { snapshotOf, type Snapshot } from '../static.js'
import type { Mapping } from '../types.js'

/** A DynamicFile snapshot: by ARN (like the other backends) or, in strict mode, by principal ID. */
export interface DynamicRules extends Snapshot {
  /** LastUpdatedDateTime (unix seconds) if the file has one. */
  readonly lastUpdated?: number | undefined
}

export const EMPTY_DYNAMIC: DynamicRules = snapshotOf(EMPTY_RULES)

/**
 * Parses the DynamicFile JSON of upstream's pkg/mapper/dynamicfile: `{Version, LastUpdatedDateTime,
 * mapRoles, mapUsers, mapAccounts}`, keys case-insensitive. Every entry is validated (upstream
 * validates none), and any error rejects the whole file so the previous mapping stays in force.
 */
export function parseDynamicFile(
  text: string,
  opts: { userIdStrict: boolean },
): { rules?: DynamicRules; problems: Problem[] } {
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
    const { rules, problems: ruleProblems } = compileRules(doc)
    problems.push(...ruleProblems.filter((p) => !alreadyReported(p)))
    if (problems.some((p) => p.severity === 'error')) return { problems }
    return { rules: { ...snapshotOf(rules), lastUpdated }, problems }
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
  /** Checks an entry (problems in file order); returns it when it can be keyed. */
  const check = (
    kind: 'user' | 'role',
    i: number,
    m: { userid?: string | undefined; username: string; groups: readonly string[] },
    arn: string | undefined,
  ) => {
    const rule = `${kind === 'user' ? 'mapUsers' : 'mapRoles'}[${i}]`
    const mapping = checkedMapping(rule, m, err)
    if (arn) {
      try {
        canonicalizeArn(arn)
      } catch (e) {
        err(`${rule}.${kind === 'user' ? 'userarn' : 'rolearn'}`, `error canonicalizing ARN: ${(e as Error).message}`)
      }
    }
    if (!m.userid) {
      err(`${rule}.userid`, 'value for userid must be supplied (dynamicfileUserIDStrict is on)')
      return
    }
    if (mapping !== undefined) entries.push({ userid: m.userid, mapping, rule, kind, arn: arn || undefined })
  }
  roles.forEach((r, i) => {
    if (r.sso)
      problems.push({
        path: `mapRoles[${i}].sso`,
        message: 'SSO entries are not supported by DynamicFile',
        severity: 'error',
      })
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
  if (problems.some((p) => p.severity === 'error')) return { problems }
  return {
    rules: {
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
    },
    problems,
  }
}

function sameRole(configured: string, canonical: string): boolean {
  try {
    return stripRolePath(configured).toLowerCase() === stripRolePath(canonical).toLowerCase()
  } catch {
    return false
  }
}
