import { isDeepStrictEqual } from 'node:util'
import { dump, loadAll } from 'js-yaml'
import { isScalar, isSeq, parseDocument, type YAMLSeq } from 'yaml'
import { UsageError } from '../../shared/errors.js'
import type { Problem } from '../../shared/problem.js'
import { compileRules, type RuleSet } from '../rules.js'
import type { RoleMapping, UserMapping } from '../types.js'
import { parseAwsAuthData } from './parse.js'

export type AwsAuthAddition =
  { readonly kind: 'user'; readonly entry: UserMapping } | { readonly kind: 'role'; readonly entry: RoleMapping }

/**
 * Adds one entry to aws-auth `data`, as text inserted into the existing YAML list so comments and
 * formatting of the other entries survive byte for byte. Refuses duplicates and any result that would not pass
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
  for (const p of single.patterns) {
    const earlier = rules.patterns.find(
      (r) =>
        r.pattern.partition === p.pattern.partition &&
        r.pattern.account === p.pattern.account &&
        r.pattern.name === p.pattern.name,
    )
    if (earlier) return `cannot add duplicate role pattern "${p.pattern.source}" (already ${earlier.rule})`
  }
  for (const s of single.sso) {
    const earlier = rules.sso.find((r) => r.pattern.source === s.pattern.source)
    if (earlier) return `cannot add duplicate SSO permission set mapping (already ${earlier.rule})`
  }
  return undefined
}

/**
 * The new text of one aws-auth value with `entry` appended to its list. Only characters are
 * inserted: every byte of the existing text (other entries, comments, quoting, blank lines) stays
 * as it was. The `yaml` document model says where the list ends and whether it is a block or a
 * flow list; the result is parsed back and must be the old list plus the entry, or nothing is
 * written.
 */
export function appendListItem(existing: string | undefined, entry: object): string {
  const text = existing === undefined || ['', '""', "''", '``'].includes(existing.trim()) ? '' : existing
  const doc = parseDocument(text)
  const list = doc.contents
  let next: string
  if (list === null || (isScalar(list) && (list.value === null || list.value === ''))) {
    // Nothing but comments (or nothing at all): the list starts after them.
    next = `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${blockItem(entry, '')}`
  } else if (!isSeq(list) || list.range === undefined || list.range === null) {
    throw new UsageError('the current value is not a YAML list; fix it first')
  } else if (list.flow) {
    next = insertFlowItem(text, list, entry)
  } else {
    // After the last item (and its same-line comment); a comment block that follows stays below it.
    const end = list.range[1]
    const lineStart = text.lastIndexOf('\n', list.range[0] - 1) + 1
    const indent = text.slice(lineStart, list.range[0])
    const item = blockItem(entry, /^ *$/.test(indent) ? indent : '')
    next = `${text.slice(0, end)}${end === 0 || text[end - 1] === '\n' ? '' : '\n'}${item}${text.slice(end)}`
  }
  // js-yaml, as parseAwsAuthData reads it (its load() refuses a stream without a document)
  const before = (loadAll(text)[0] as unknown[] | null | undefined) ?? []
  if (!isDeepStrictEqual(loadAll(next)[0], [...before, entry])) {
    throw new UsageError('could not append to the current list without changing its other entries; edit it by hand')
  }
  return next
}

function insertFlowItem(text: string, list: YAMLSeq, entry: object): string {
  const item = dump(entry, { flowLevel: 0, lineWidth: -1, noRefs: true }).trim()
  const [start, end] = list.range!
  const last = list.items.at(-1) as { range?: [number, number, number] | null } | undefined
  if (last !== undefined) {
    if (!last.range) throw new UsageError('the current list cannot be extended safely; edit it by hand')
    return `${text.slice(0, last.range[1])}, ${item}${text.slice(last.range[1])}`
  }
  // `[]`, as eksctl writes an empty list: alone, it becomes a block list (nothing to keep);
  // with comments around it, the entry goes between the brackets.
  if (text.slice(0, start).trim() === '' && text.slice(end).trim() === '') return blockItem(entry, '')
  return `${text.slice(0, start + 1)}${item}${text.slice(start + 1)}`
}

/** One block list item, upstream's field order, each line indented like the existing items. */
function blockItem(entry: object, indent: string): string {
  return dump([entry], { lineWidth: -1, noRefs: true })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => indent + l)
    .join('\n')
    .concat('\n')
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
