import { namesOverlap, overlapExample, type RolePattern } from './role-pattern.js'
import type { Mapping, Match } from './types.js'

/**
 * A compiled role-pattern entry. An invalid one (bad username or groups, a tie) keeps its place in
 * the precedence order with no mapping: a role it matches is matched by no weaker pattern of the same
 * backend, so an entry that could not be applied never hands its roles to a broader pattern. (This
 * only matters while a document with errors is partly in force: see the live backends.)
 */
export interface PatternRule {
  readonly rule: string
  readonly pattern: RolePattern
  readonly mapping?: Mapping | undefined
}

/**
 * The patterns of one backend for lookups: by partition and account (a pattern never matches
 * another), then by the first character of the name when it is literal, else by the last when that
 * is, so a review tests only patterns that can match its role. Each list is in precedence order.
 */
export type PatternIndex = ReadonlyMap<string, PatternBucket>

interface PatternBucket {
  readonly byFirst: Map<string, PatternRule[]>
  readonly byLast: Map<string, PatternRule[]>
  readonly wild: PatternRule[]
}

/** Precedence among patterns: most literal characters in the name first, then document order. */
export function orderPatterns(patterns: readonly PatternRule[]): PatternRule[] {
  return [...patterns].sort((a, b) => b.pattern.specificity - a.pattern.specificity)
}

export function indexPatterns(ordered: readonly PatternRule[]): PatternIndex {
  const index = new Map<string, PatternBucket>()
  const add = (map: Map<string, PatternRule[]>, c: string, p: PatternRule) => map.set(c, [...(map.get(c) ?? []), p])
  for (const p of ordered) {
    const key = `${p.pattern.partition}:${p.pattern.account}`
    const bucket: PatternBucket = index.get(key) ?? { byFirst: new Map(), byLast: new Map(), wild: [] }
    index.set(key, bucket)
    const first = p.pattern.name[0]!
    const last = p.pattern.name.at(-1)!
    if (!isWildcard(first)) add(bucket.byFirst, first, p)
    else if (!isWildcard(last)) add(bucket.byLast, last, p)
    else bucket.wild.push(p)
  }
  return index
}

const isWildcard = (c: string) => c === '*' || c === '?'

/** A lower-cased, path-less role ARN, as lookups key roles. */
const ROLE_KEY = /^arn:([^:]+):iam::(\d{12}):role\/([^/]+)$/

/**
 * The most specific pattern that matches a lower-cased, path-less role ARN, as a Match; undefined
 * when none does or when the most specific one that does is invalid.
 */
export function lookupPattern(index: PatternIndex, roleKey: string): Match | undefined {
  const key = ROLE_KEY.exec(roleKey)
  if (key === null) return undefined
  const bucket = index.get(`${key[1]}:${key[2]}`)
  if (bucket === undefined) return undefined
  const name = key[3]!
  let hit: PatternRule | undefined
  for (const list of [bucket.byFirst.get(name[0]!), bucket.byLast.get(name.at(-1)!), bucket.wild]) {
    const found = list?.find((p) => p.pattern.regex.test(roleKey))
    // Two that match with as many literal characters would tie, and tied entries are both invalid.
    if (found !== undefined && (hit === undefined || found.pattern.specificity > hit.pattern.specificity)) hit = found
  }
  if (hit?.mapping === undefined) return undefined
  return { mapping: hit.mapping, rule: hit.rule, kind: 'role-pattern', pattern: hit.pattern.source }
}

/** Why an entry is part of a tie: the problem `at` an entry (itself or a partner), naming the other. */
export interface Tie {
  readonly at: PatternRule
  readonly message: string
}

/**
 * Every entry that ties with another (same partition and account, as many literal characters, and
 * some role name both match, so neither would win by specificity), each with the problem that names
 * it: a later entry gets one naming the first earlier entry it ties with, and an entry no problem
 * names yet gets its own. At most one problem per entry, and no pair is checked once both of its
 * entries are explained, so a document of many patterns that all tie costs a pass, not every pair.
 */
export function findTies(inOrder: readonly PatternRule[]): Map<PatternRule, Tie> {
  const why = new Map<PatternRule, Tie>()
  const groups = new Map<string, PatternRule[]>()
  for (const later of inOrder) {
    const key = `${later.pattern.partition}:${later.pattern.account}:${later.pattern.specificity}`
    const group = groups.get(key) ?? []
    for (const earlier of group) {
      if (why.has(later) && why.has(earlier)) continue
      if (!overlap(earlier.pattern, later.pattern)) continue
      if (!why.has(later)) {
        const tie = { at: later, message: tieMessage(earlier, later) }
        why.set(later, tie)
        if (!why.has(earlier)) why.set(earlier, tie)
      } else {
        why.set(earlier, { at: earlier, message: tieMessage(later, earlier) })
      }
    }
    group.push(later)
    groups.set(key, group)
  }
  return why
}

/** True when two patterns tie: same partition, account and specificity, and a role name both match. */
export function ties(a: RolePattern, b: RolePattern): boolean {
  return a.partition === b.partition && a.account === b.account && a.specificity === b.specificity && overlap(a, b)
}

/** Why `entry` ties with `other` (see `ties`), with a role name both match. */
export function tieMessage(other: PatternRule, entry: PatternRule): string {
  const a = other.pattern
  if (a.name === entry.pattern.name) {
    return `same role pattern as ${other.rule} (${a.source}): two entries for one pattern tie; keep one`
  }
  return (
    `ties with ${other.rule} (${a.source}): both patterns have ${a.specificity} literal character` +
    `${a.specificity === 1 ? '' : 's'} and both match a role named '${overlapExample(a.name, entry.pattern.name)}', ` +
    'so neither wins; make one more specific, or split them so no role name matches both'
  )
}

function overlap(a: RolePattern, b: RolePattern): boolean {
  return a.name === b.name || (literalEndsAgree(a.name, b.name) && namesOverlap(a.name, b.name))
}

/** False when the literal starts (or ends) of two name globs differ: then no name matches both. */
function literalEndsAgree(a: string, b: string): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === '*' || b[i] === '*') break
    if (a[i] !== '?' && b[i] !== '?' && a[i] !== b[i]) return false
  }
  for (let i = a.length - 1, j = b.length - 1; i >= 0 && j >= 0; i--, j--) {
    if (a[i] === '*' || b[j] === '*') break
    if (a[i] !== '?' && b[j] !== '?' && a[i] !== b[j]) return false
  }
  return true
}
