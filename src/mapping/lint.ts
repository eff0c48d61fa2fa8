import { canonicalizeArn, parseArn, stripRolePath } from '../sts/arn.js'
import type { Problem } from '../shared/problem.js'
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
    if (typeof entry.rolearn === 'string' && entry.rolearn !== '') {
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
