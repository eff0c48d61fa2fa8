import { canonicalizeArn, parseArn, stripRolePath } from '../sts/arn.js'
import type { Problem } from '../shared/problem.js'
import { isRolePattern } from './role-pattern.js'
import type { MappingDocument, RuleSet } from './rules.js'
import type { Mapping } from './types.js'

// Findings only a linter can make: the server accepts all of these (they are valid), but an operator
// checking a change wants to hear about them before applying it.

/** True when a compiled document maps no identity at all: no rule and no allowed account. */
export function mapsNothing(rules: RuleSet): boolean {
  return rules.counts.roles + rules.counts.users + rules.counts.accounts === 0
}

/**
 * For people migrating from aws-iam-authenticator: entries that matched nothing there and grant
 * access here. A role ARN with a path never matched upstream (STS reports roles without their
 * path); an SSO entry with `partition` set never matched upstream either. Each warning names what
 * the entry now grants. Only entries that compiled (and won over duplicates) are reported.
 */
export function migrationFindings(
  doc: MappingDocument,
  rules: RuleSet,
  prefix = '',
  label: (index: number) => string = (i) => `mapRoles[${i}]`,
): Problem[] {
  const out: Problem[] = []
  const warn = (path: string, message: string) => out.push({ path: prefix + path, message, severity: 'warning' })
  doc.mapRoles.forEach((entry, i) => {
    const rule = label(i)
    if (typeof entry.rolearn === 'string' && isRolePattern(entry.rolearn)) {
      const compiled = rules.patterns.find((p) => p.rule === rule && p.mapping !== undefined)
      if (compiled === undefined) return
      warn(
        `${rule}.rolearn`,
        `aws-iam-authenticator took a role ARN with * or ? literally, so it never matched; kube-iam-auth reads it ` +
          `as a role pattern: every role of account ${compiled.pattern.account} whose name matches ` +
          `'${compiled.pattern.name}' now ${grants(compiled.mapping!)}`,
      )
    } else if (typeof entry.rolearn === 'string' && entry.rolearn !== '') {
      const role = pathQualifiedRole(entry.rolearn)
      const compiled = role && rules.roles.get(role.key)
      if (role === undefined || compiled === undefined || compiled.rule !== rule) return
      warn(
        `${rule}.rolearn`,
        `aws-iam-authenticator never matched a role ARN with a path; kube-iam-auth does: every session of role ` +
          `${role.name} (any path) now ${grants(compiled.mapping)}`,
      )
    } else if (entry.sso && typeof entry.sso.partition === 'string' && entry.sso.partition !== '') {
      const compiled = rules.sso.find((s) => s.rule === rule)
      if (compiled === undefined) return
      warn(
        `${rule}.sso.partition`,
        `aws-iam-authenticator never matched an sso entry with partition set (even "aws"); kube-iam-auth does: ` +
          `IAM Identity Center sessions of permission set ${entry.sso.permissionSetName} in account ` +
          `${entry.sso.accountID} now ${grants(compiled.mapping)}`,
      )
    }
  })
  return out
}

function pathQualifiedRole(arn: string): { key: string; name: string } | undefined {
  try {
    const { type } = canonicalizeArn(arn.trim())
    if (type !== 'role' || parseArn(arn.trim()).resource.split('/').length <= 2) return undefined
    const stripped = stripRolePath(arn.trim())
    return { key: stripped.toLowerCase(), name: stripped }
  } catch {
    return undefined // reported by the rule checks
  }
}

function grants(m: Mapping): string {
  return `authenticates as "${m.username}"${m.groups.length > 0 ? ` with groups [${m.groups.join(', ')}]` : ' (no groups)'}`
}

/**
 * Guard rails for role patterns the server accepts: one that grants system:masters (or a group a
 * session name can turn into it) hands cluster admin to every role whose name matches, roles created
 * later by anyone allowed to create roles in that account included; one whose name is all wildcards
 * matches every role of the account. `validate` warns, `validate --strict` fails.
 */
export function patternFindings(rules: RuleSet, prefix = ''): Problem[] {
  const out: Problem[] = []
  for (const { rule, pattern, mapping } of rules.patterns) {
    if (mapping === undefined) continue
    const warn = (message: string) => out.push({ path: `${prefix}${rule}.rolearn`, message, severity: 'warning' })
    const masters = mapping.groups.find(mayRenderAsMasters)
    if (masters !== undefined) {
      const what =
        masters === 'system:masters'
          ? 'system:masters (cluster admin, past every RBAC rule)'
          : `group '${masters}', which a session name can turn into system:masters (cluster admin, past every RBAC rule),`
      warn(
        `role pattern ${pattern.source} grants ${what} to every role of account ${pattern.account} whose name ` +
          `matches '${pattern.name}', roles created later included: map admin roles one by one, by exact ARN`,
      )
    }
    if (pattern.matchesEveryRole) {
      warn(
        `role pattern ${pattern.source} matches every role of account ${pattern.account} (its name is only ` +
          `wildcards): every session of any role there ${grants(mapping)}; name the roles, or narrow the ` +
          'pattern (e.g. role/dev-*)',
      )
    }
  }
  return out
}

/**
 * True for system:masters, and for a group whose session-name templates can render as it
 * (`system:{{SessionName}}`: whoever assumes the role picks the session name).
 */
function mayRenderAsMasters(group: string): boolean {
  if (group === 'system:masters') return true
  const parts = group.split(/\{\{SessionName(?:Raw)?\}\}/)
  if (parts.length === 1) return false
  const literal = (part: string) => part.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')
  // what STS allows in a role session name
  return new RegExp(`^${parts.map(literal).join('[\\w+=,.@-]*')}$`).test('system:masters')
}
