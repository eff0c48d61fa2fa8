import type { PatternRule } from './pattern-rules.js'
import { patternCandidates, type RuleSet } from './rules.js'
import type { Identity, Match } from './types.js'

// What `explain` says about role patterns in one backend: which pattern matched and which entries it
// lost to or won against, or why none applied.

/** The text after a backend's trace line: the patterns that also match this identity, and how they fared. */
export function patternNote(rules: RuleSet, identity: Identity, match: Match | undefined): string {
  const { matching, exactInvalid } = patternCandidates(rules, identity)
  if (matching.length === 0) return ''
  if (match?.kind === 'role-pattern') {
    const beaten = matching.filter((p) => p.rule !== match.rule)
    if (beaten.length === 0) return ''
    const winner = matching.find((p) => p.rule === match.rule)!
    return (
      `; it beats the less specific ${plural(beaten.length, 'pattern')} ${beaten.map(describe).join(', ')}` +
      ` (${letters(winner.pattern.specificity)} against ${beaten.map((p) => p.pattern.specificity).join(', ')})`
    )
  }
  const also = `${plural(matching.length, 'role pattern')} ${matching.map(describe).join(', ')}`
  if (match !== undefined) {
    // a user is never matched by a role pattern: the rule that won is an exact role or an SSO rule
    const by = match.kind === 'sso' ? 'an SSO permission-set rule' : 'an exact role rule'
    return `; ${also} also ${matching.length === 1 ? 'matches' : 'match'} but ${by} beats every pattern`
  }
  if (exactInvalid) {
    return `; ${also} ${matching.length === 1 ? 'matches' : 'match'} its name, but no pattern applies while the exact entry for this role is invalid`
  }
  // The most specific pattern that matches is invalid (the invalid entries are named before this).
  const weaker = matching.filter((p) => p.mapping !== undefined)
  if (weaker.length === 0) return ''
  return (
    `; ${plural(weaker.length, 'role pattern')} ${weaker.map(describe).join(', ')} also ` +
    `${weaker.length === 1 ? 'matches' : 'match'}, but a weaker pattern never stands in for an invalid, more specific one`
  )
}

/** Patterns that match the role's name in another account or partition (they never match across either). */
export function patternNearMisses(backend: string, rules: RuleSet, identity: Identity): string[] {
  const { roleName } = patternCandidates(rules, identity)
  if (roleName === undefined) return []
  const [, partition, , , account] = identity.canonicalArn.toLowerCase().split(':')
  // A pattern of wildcards only matches every name: no hint in that.
  return rules.patterns
    .filter((p) => !p.pattern.matchesEveryRole)
    .filter((p) => p.pattern.account !== account || p.pattern.partition !== partition)
    .filter((p) => p.pattern.regex.test(`arn:${p.pattern.partition}:iam::${p.pattern.account}:role/${roleName}`))
    .map(
      (p) =>
        `${backend} ${p.rule} is role pattern ${p.pattern.source}: it matches the role name, but in ` +
        `${p.pattern.partition === partition ? `account ${p.pattern.account}` : `partition ${p.pattern.partition}`}, ` +
        `not ${p.pattern.partition === partition ? account : partition} (patterns never match across accounts or partitions)`,
    )
}

function describe(p: PatternRule): string {
  return `${p.rule} (${p.pattern.source})`
}

function letters(n: number): string {
  return `${n} literal character${n === 1 ? '' : 's'}`
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`
}
