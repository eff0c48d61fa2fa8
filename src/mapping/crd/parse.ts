import type { Problem } from '../../shared/problem.js'
import { canonicalizeArn } from '../../sts/arn.js'
import { tieMessage, ties, type PatternRule } from '../pattern-rules.js'
import { isRolePattern } from '../role-pattern.js'
import { compileRules, type RuleSet } from '../rules.js'
import type { RoleMapping, UserMapping } from '../types.js'

export interface IamIdentityMapping {
  metadata?: { name?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date }
  /** `arn`: one IAM user or role, as upstream. `arnPattern` (ours): a role pattern, instead of `arn`. */
  spec?: { arn?: unknown; arnPattern?: unknown; username?: unknown; groups?: unknown }
  status?: { canonicalARN?: string; userID?: string }
}

/**
 * Compiles objects as mapRoles/mapUsers entries, problems named by object and spec field. An object
 * with `spec.arnPattern` is a role pattern entry; one with `spec.arn` an exact user or role entry.
 * `spec.arn` never takes a pattern: it is upstream's field for one principal, which upstream's
 * controller canonicalizes into status.canonicalARN.
 */
export function compileObjects(objects: readonly IamIdentityMapping[]): { rules: RuleSet; problems: Problem[] } {
  const problems: Problem[] = []
  const roles: { name: string; entry: RoleMapping }[] = []
  const users: { name: string; entry: UserMapping }[] = []
  const patternObjects = new Set<string>()
  for (const o of objects) {
    const name = o.metadata!.name!
    const { arn, arnPattern, username, groups } = o.spec ?? {}
    const fields = { username: username as string, groups: (groups ?? []) as string[] }
    const err = (field: string, message: string) =>
      problems.push({ path: `IAMIdentityMapping/${name}.spec${field}`, message, severity: 'error' })
    if (arnPattern !== undefined && arnPattern !== null) {
      if (arn !== undefined && arn !== null) err('', 'give spec.arn (one IAM principal) or spec.arnPattern, not both')
      else if (typeof arnPattern !== 'string' || !isRolePattern(arnPattern)) {
        err('.arnPattern', `'${String(arnPattern)}' has no * or ?: put one role's ARN in spec.arn instead`)
      } else {
        patternObjects.add(name)
        roles.push({ name, entry: { rolearn: arnPattern, ...fields } })
      }
      continue
    }
    if (typeof arn === 'string' && isRolePattern(arn)) {
      err('.arn', `'${arn}' is a pattern: spec.arn names one IAM principal; put a role pattern in spec.arnPattern`)
      continue
    }
    let type: string | undefined
    try {
      type = canonicalizeArn(String(arn)).type
    } catch {
      // reported by compileRules
    }
    if (type === 'role' || type === 'assumed-role') roles.push({ name, entry: { rolearn: arn as string, ...fields } })
    else users.push({ name, entry: { userarn: (arn ?? '') as string, ...fields } })
  }
  const compiled = compileRules(
    { mapRoles: roles.map((r) => r.entry), mapUsers: users.map((u) => u.entry), mapAccounts: [] },
    '',
    (list, i) => `IAMIdentityMapping/${(list === 'mapRoles' ? roles : users)[i]!.name}`,
  )
  // The fields as they are written in the object (names may hold dots: the longest name that fits).
  const names = objects.map((o) => o.metadata!.name!).sort((a, b) => b.length - a.length)
  const spec = (path: string) => {
    const name = names.find((n) => path === `IAMIdentityMapping/${n}` || path.startsWith(`IAMIdentityMapping/${n}.`))
    if (name === undefined) return path
    const head = `IAMIdentityMapping/${name}`
    const arnField = patternObjects.has(name) ? '.spec.arnPattern' : '.spec.arn'
    const field = path
      .slice(head.length)
      .replace(/^\.(rolearn|userarn)\b/, arnField)
      .replace(/^\.(username|groups)\b/, '.spec.$1')
    return head + field
  }
  problems.push(...compiled.problems.map((p) => ({ ...p, path: spec(p.path) })))
  return { rules: compiled.rules, problems }
}

/**
 * The errors of one object on its own, and then (valid alone, with a role pattern) against the
 * patterns already admitted: a tie with one of those (an older object) rejects it.
 */
export function objectErrors(
  o: IamIdentityMapping,
  admitted: readonly PatternRule[],
): { errors: Problem[]; pattern?: PatternRule | undefined } {
  const { rules, problems } = compileObjects([o])
  const errors = problems.filter((p) => p.severity === 'error')
  const pattern = rules.patterns[0]
  if (errors.length > 0 || pattern === undefined) return { errors }
  const earlier = admitted.find((p) => ties(p.pattern, pattern.pattern))
  if (earlier !== undefined) {
    const message = tieMessage(earlier, pattern)
    return { errors: [{ path: `${pattern.rule}.spec.arnPattern`, message, severity: 'error' }] }
  }
  return { errors, pattern }
}

export function olderFirst(a: IamIdentityMapping, b: IamIdentityMapping): number {
  const ta = new Date(a.metadata?.creationTimestamp ?? 0).getTime()
  const tb = new Date(b.metadata?.creationTimestamp ?? 0).getTime()
  return ta - tb || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')
}

export function canonicalOf(arn: unknown): string | undefined {
  try {
    return canonicalizeArn(String(arn)).canonical.toLowerCase()
  } catch {
    return undefined
  }
}
