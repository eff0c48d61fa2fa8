import { ArnInvalid } from '../shared/errors.js'
import { PARTITION_IDS } from '../shared/partitions.js'
import { canonicalizeArn, parseArn, stripRolePath } from '../sts/arn.js'
import { isRolePattern } from './role-pattern.js'
import { templateProblems } from './template.js'
import type { Mapping } from './types.js'

// The checks of one mapRoles/mapUsers entry, shared by compileRules and DynamicFile's strict mode.

export const ACCOUNT_ID = /^\d{12}$/
const PERMISSION_SET = /^[\w+=,.@-]{1,32}$/

/**
 * The lower-cased key a configured ARN is stored under. Roles: canonicalized and path-stripped,
 * because STS reports roles without their path and IAM role names are unique per account whatever
 * the path. `wouldMatch` is the key even when the entry is refused, for `explain`.
 *
 * An assumed-role (session) ARN under mapRoles is refused: it names one session, but matching is
 * by role, so it would grant the mapping to every session of the role (upstream's ConfigMap never
 * matched such an entry, its MountedFile matched the whole role). An account that is not 12 digits
 * can never match: STS always reports 12.
 */
export function arnKey(
  arn: string,
  path: string,
  err: (path: string, message: string) => void,
  role: boolean,
): { key?: string; wouldMatch?: string } {
  let canonical: string
  let type: string
  let account: string
  try {
    ;({ canonical, type } = canonicalizeArn(arn.trim()))
    account = parseArn(arn.trim()).account
  } catch (e) {
    if (e instanceof ArnInvalid) {
      err(path, `error canonicalizing ARN: ${e.message}`)
      return {}
    }
    throw e
  }
  const wouldMatch = (role ? stripRolePath(canonical) : canonical).toLowerCase()
  if (role && type !== 'role' && type !== 'assumed-role') {
    err(path, `'${arn}' is not a role ARN`)
    return {}
  }
  if (!role && (type === 'role' || type === 'assumed-role')) {
    err(path, `'${arn}' is a role ARN; map it under mapRoles`)
    return {}
  }
  if (!role && isRolePattern(arn)) {
    // No IAM user name holds * or ?: taken literally, the entry would silently match nobody.
    err(path, `'${arn}' is not a user ARN: patterns (* and ?) are for role names under mapRoles only`)
    return {}
  }
  let ok = true
  if (!ACCOUNT_ID.test(account)) {
    err(path, `'${account}' in '${arn}' is not a valid AWS account ID (12 digits)`)
    ok = false
  }
  if (type === 'assumed-role') {
    err(
      path,
      `'${arn}' is an assumed-role (session) ARN: roles are matched by role, so it would map every session of ` +
        `${canonical}, not only this one; map the role ARN (and use {{SessionName}} in the username to tell sessions apart)`,
    )
    ok = false
  }
  return ok ? { key: wouldMatch, wouldMatch } : { wouldMatch }
}

/**
 * IAM Identity Center roles are named AWSReservedSSO_<permission set>_<random suffix>. The suffix
 * may not contain `_`, so set `Admin` never matches the roles of set `Admin_Extra`. The partition
 * defaults to aws and is honoured when set (upstream ignores it and never matches).
 */
export function ssoPattern(
  sso: { permissionSetName?: unknown; accountID?: unknown; partition?: unknown },
  path: string,
  err: (path: string, message: string) => void,
): RegExp | undefined {
  const { permissionSetName, accountID } = sso
  // Upstream treats an empty partition as aws, like an absent one.
  const partition =
    sso.partition === undefined || sso.partition === null || sso.partition === '' ? 'aws' : sso.partition
  let ok = true
  if (typeof accountID !== 'string' || !ACCOUNT_ID.test(accountID)) {
    err(`${path}.accountID`, `AccountID '${String(accountID)}' is not a valid AWS Account ID`)
    ok = false
  }
  if (typeof permissionSetName !== 'string' || !PERMISSION_SET.test(permissionSetName)) {
    err(
      `${path}.permissionSetName`,
      `PermissionSetName '${String(permissionSetName)}' is not a valid AWS SSO PermissionSet Name`,
    )
    ok = false
  }
  if (typeof partition !== 'string' || !PARTITION_IDS.includes(partition)) {
    err(`${path}.partition`, `partition '${String(partition)}' is not a valid AWS partition`)
    ok = false
  }
  if (!ok) return undefined
  const set = (permissionSetName as string).toLowerCase().replace(/[.+]/g, '\\$&')
  return new RegExp(
    `^arn:${escape(partition as string)}:iam::${accountID as string}:role/awsreservedsso_${set}_[a-z0-9]+$`,
  )
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')
}

/** Checks an entry's username and groups (types, non-empty, known template variables). */
export function checkedMapping(
  path: string,
  m: { username?: unknown; groups?: unknown },
  err: (path: string, message: string) => void,
): Mapping | undefined {
  let ok = true
  if (typeof m.username !== 'string' || m.username.trim() === '') {
    err(`${path}.username`, 'username must be a non-empty string')
    ok = false
  }
  const groups = m.groups ?? []
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g === '')) {
    err(`${path}.groups`, 'groups must be a list of non-empty strings')
    ok = false
  }
  if (!ok) return undefined
  for (const p of templateProblems(m.username as string)) {
    err(`${path}.username`, p)
    ok = false
  }
  ;(groups as string[]).forEach((g, i) =>
    templateProblems(g).forEach((p) => {
      err(`${path}.groups[${i}]`, p)
      ok = false
    }),
  )
  // An entry with a template error is invalid: it is reported and, like every invalid entry, not compiled.
  return ok ? { username: m.username as string, groups: [...(groups as string[])] } : undefined
}
