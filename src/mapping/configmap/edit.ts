import { dump, load } from 'js-yaml'
import { UsageError } from '../../shared/errors.js'
import type { Problem } from '../../shared/problem.js'
import { compileRules, type RuleSet } from '../rules.js'
import type { RoleMapping, UserMapping } from '../types.js'
import { parseAwsAuthData } from './parse.js'

export type AwsAuthAddition =
  { readonly kind: 'user'; readonly entry: UserMapping } | { readonly kind: 'role'; readonly entry: RoleMapping }

/**
 * Adds one entry to aws-auth `data`, as text appended to the existing YAML list so comments and
 * formatting of the other entries survive. Refuses duplicates and any result that would not pass
 * validation (including an aws-auth that was already invalid), listing every problem.
 */
export function addToAwsAuth(
  data: Readonly<Record<string, string>>,
  addition: AwsAuthAddition,
): Record<string, string> {
  const before = parseAwsAuthData(data)
  refuseIfInvalid(before.problems, 'the current aws-auth ConfigMap is invalid; fix it first')
  const key = addition.kind === 'user' ? 'mapUsers' : 'mapRoles'
  const entry = withoutEmpty(addition.entry)
  const duplicate = findDuplicate(before.rules, addition)
  if (duplicate !== undefined) throw new UsageError(duplicate)
  const next = { ...data, [key]: appendListItem(data[key], entry) }
  const after = parseAwsAuthData(next)
  refuseIfInvalid(after.problems, 'refusing a change that would leave the aws-auth ConfigMap invalid')
  return next
}

function findDuplicate(rules: RuleSet, addition: AwsAuthAddition): string | undefined {
  // Compile the new entry alone and look for its keys among the existing rules.
  const single = compileRules({
    mapRoles: addition.kind === 'role' ? [addition.entry] : [],
    mapUsers: addition.kind === 'user' ? [addition.entry] : [],
    mapAccounts: [],
  }).rules
  for (const key of single.users.keys()) {
    const earlier = rules.users.get(key)
    if (earlier) return `cannot add duplicate user ARN "${key}" (already ${earlier.rule})`
  }
  for (const key of single.roles.keys()) {
    const earlier = rules.roles.get(key)
    if (earlier) return `cannot add duplicate role ARN "${key}" (already ${earlier.rule}; role paths are ignored)`
  }
  for (const s of single.sso) {
    const earlier = rules.sso.find((r) => r.pattern.source === s.pattern.source)
    if (earlier) return `cannot add duplicate SSO permission set mapping (already ${earlier.rule})`
  }
  return undefined
}

function appendListItem(existing: string | undefined, entry: object): string {
  const text = existing === undefined || ['', '""', "''", '``'].includes(existing.trim()) ? '' : existing
  // A flow list (`[]`, as eksctl writes an empty one, or `[{...}]`) cannot take a block item:
  // rewrite it as a block list. It holds no comments to lose.
  if (text.trim().startsWith('[')) {
    const items = load(text)
    if (Array.isArray(items)) return dump([...items, entry], { lineWidth: -1, noRefs: true })
  }
  // The first list item sets the indentation; it may be written `- key: value` or `-` alone on its line.
  const indent = /^( *)-(?: |$)/m.exec(text)?.[1] ?? ''
  const item = dump([entry], { lineWidth: -1, noRefs: true })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => indent + l)
    .join('\n')
  return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${item}\n`
}

/** Field order and omissions as upstream's encoder: rolearn/userarn, sso, username, groups, userid. */
function withoutEmpty(entry: RoleMapping | UserMapping): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(entry)) {
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) ? withoutEmptyObject(v as Record<string, unknown>) : v
  }
  return out
}

function withoutEmptyObject(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''))
}

function refuseIfInvalid(problems: readonly Problem[], headline: string): void {
  const errors = problems.filter((p) => p.severity === 'error')
  if (errors.length > 0)
    throw new UsageError(`${headline}:\n  - ${errors.map((p) => `${p.path}: ${p.message}`).join('\n  - ')}`)
}
