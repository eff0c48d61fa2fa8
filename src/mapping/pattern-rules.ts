import { overlapExample, type RolePattern } from './role-pattern.js'
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

/** Precedence among patterns: most literal characters in the name first, then document order. */
export function orderPatterns(patterns: readonly PatternRule[]): PatternRule[] {
  return [...patterns].sort((a, b) => b.pattern.specificity - a.pattern.specificity)
}

/**
 * The first pattern (in precedence order) that matches a lower-cased, path-less role ARN, as a
 * Match; undefined when none does or when the first that does is invalid.
 */
export function lookupPattern(ordered: readonly PatternRule[], roleKey: string): Match | undefined {
  const hit = ordered.find((p) => p.pattern.regex.test(roleKey))
  if (hit?.mapping === undefined) return undefined
  return { mapping: hit.mapping, rule: hit.rule, kind: 'role-pattern', pattern: hit.pattern.source }
}

/**
 * Pairs of patterns that tie: same partition and account, as many literal characters, and some role
 * name both match, so neither would win by specificity. `earlier` comes first in `inOrder`.
 */
export function findTies(
  inOrder: readonly PatternRule[],
): { earlier: PatternRule; later: PatternRule; message: string }[] {
  const groups = new Map<string, PatternRule[]>()
  const out: { earlier: PatternRule; later: PatternRule; message: string }[] = []
  for (const p of inOrder) {
    const key = `${p.pattern.partition}:${p.pattern.account}:${p.pattern.specificity}`
    const group = groups.get(key) ?? []
    for (const earlier of group) {
      const message = tieMessage(earlier, p)
      if (message !== undefined) out.push({ earlier, later: p, message })
    }
    group.push(p)
    groups.set(key, group)
  }
  return out
}

/** Why `later` ties with `earlier` (same partition, account and specificity), or undefined. */
export function tieMessage(earlier: PatternRule, later: PatternRule): string | undefined {
  const a = earlier.pattern
  const b = later.pattern
  if (a.partition !== b.partition || a.account !== b.account || a.specificity !== b.specificity) return undefined
  if (a.name === b.name) {
    return `same role pattern as ${earlier.rule} (${a.source}): two entries for one pattern tie; keep one`
  }
  if (!literalEndsAgree(a.name, b.name)) return undefined
  const example = overlapExample(a.name, b.name)
  if (example === undefined) return undefined
  return (
    `ties with ${earlier.rule} (${a.source}): both patterns have ${a.specificity} literal character` +
    `${a.specificity === 1 ? '' : 's'} and both match a role named '${example}', so neither wins; ` +
    'make one more specific, or split them so no role name matches both'
  )
}

/** False when the literal starts (or ends) of two name globs differ: then no name matches both. */
function literalEndsAgree(a: string, b: string): boolean {
  const agree = (x: string, y: string) => {
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] === '*' || y[i] === '*') return true
      if (x[i] !== '?' && y[i] !== '?' && x[i] !== y[i]) return false
    }
    return true
  }
  const reversed = (s: string) => [...s].reverse().join('')
  return agree(a, b) && agree(reversed(a), reversed(b))
}
