import { PARTITION_IDS } from '../shared/partitions.js'

/**
 * Role patterns: one `mapRoles` entry for many roles of one account, e.g.
 * `arn:aws:iam::111122223333:role/dev-*`.
 *
 * Syntax: a glob over the role NAME only. `*` matches any run of characters (also none), `?` exactly
 * one. Partition, service, account and the `role/` prefix are literal. Matching is case-insensitive,
 * like exact role entries (IAM role names are unique per account regardless of case).
 *
 * Paths: STS reports a role's sessions without the role's path (`assumed-role/Admin/alice` for
 * `role/teams/Admin`), so nothing the server sees can tell `/teams/` from any other path. Exact role
 * entries may keep their path because a role name is unique whatever its path; a pattern cannot: if
 * its path were ignored like an exact entry's, `role/teams/*` would grant every role of the account.
 * So a pattern with a path is refused, with a hint to match on names (`role/teams-*`).
 *
 * Precedence (see rules.ts): an exact role beats every pattern; among patterns, the one with the
 * most literal (non-wildcard) characters in its name wins; two patterns with as many literal
 * characters that can match one same role name are a tie, refused as a validation error.
 */
export interface RolePattern {
  /** The pattern as configured. */
  readonly source: string
  readonly partition: string
  readonly account: string
  /** The name glob, lower-cased. */
  readonly name: string
  /** Literal characters of the name glob: how specific the pattern is. */
  readonly specificity: number
  /** True when the name has no literal character: every role of the account matches. */
  readonly matchesEveryRole: boolean
  /** Matches a lower-cased, path-less role ARN (`arn:aws:iam::111122223333:role/name`). */
  readonly regex: RegExp
}

const WILDCARD = /[*?]/
/** Characters IAM allows in role names, plus the two wildcards. */
const NAME_GLOB = /^[\w+=,.@*?-]{1,64}$/

/** True when a configured role ARN is meant as a pattern (it has a `*` or `?`). */
export function isRolePattern(arn: string): boolean {
  return WILDCARD.test(arn)
}

/** Parses a role pattern, or says in one sentence why it is not one. */
export function parseRolePattern(arn: string): { pattern: RolePattern } | { error: string } {
  const sections = arn.split(':')
  if (sections.length < 6 || sections[0] !== 'arn') {
    return { error: `'${arn}' is not an ARN (arn:<partition>:iam::<account>:role/<name pattern>)` }
  }
  const [, partition, service, region, account] = sections as [string, string, string, string, string]
  const resource = sections.slice(5).join(':')
  for (const [what, value] of [
    ['partition', partition],
    ['service', service],
    ['region', region],
    ['account', account],
  ] as const) {
    if (WILDCARD.test(value)) {
      return { error: `the ${what} of a role pattern cannot be a wildcard: only the role name may hold * or ?` }
    }
  }
  if (!PARTITION_IDS.includes(partition)) return { error: `'${arn}' does not have a recognized partition` }
  if (service !== 'iam' || region !== '' || !resource.startsWith('role/')) {
    return { error: `a role pattern must look like arn:${partition}:iam::<account>:role/<name pattern>` }
  }
  if (!/^\d{12}$/.test(account)) return { error: `'${account}' is not a valid AWS account ID (12 digits)` }
  const rest = resource.slice('role/'.length)
  if (rest.includes('/')) {
    return {
      error:
        `a role pattern cannot name a path ('${resource}'): STS reports role sessions without their path, so ` +
        `the server cannot tell which path a role has; match on role names instead (e.g. role/team-*)`,
    }
  }
  if (!NAME_GLOB.test(rest)) {
    return { error: `'${rest}' is not a role name pattern (1-64 of A-Z a-z 0-9 + = , . @ _ - and the wildcards * ?)` }
  }
  const name = rest.toLowerCase()
  const specificity = [...name].filter((c) => c !== '*' && c !== '?').length
  const body = [...name].map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : escapeRegExp(c))).join('')
  return {
    pattern: {
      source: arn,
      partition,
      account,
      name,
      specificity,
      matchesEveryRole: specificity === 0 && name.includes('*'),
      regex: new RegExp(`^arn:${escapeRegExp(partition)}:iam::${account}:role/${body}$`),
    },
  }
}

/**
 * True when some role name matches both name globs (lower-cased, as RolePattern.name): both globs
 * read one same name in step, over at most (a.length + 1) * (b.length + 1) pairs of positions.
 */
export function namesOverlap(a: string, b: string): boolean {
  const width = b.length + 1
  const reached = new Uint8Array((a.length + 1) * width)
  reached[0] = 1
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (reached[i * width + j] === 0) continue
      if (i === a.length && j === b.length) return true
      const ca = a[i]
      const cb = b[j]
      // a star matches nothing more, or eats the other glob's next symbol (which is not a star)
      if (ca === '*') {
        reached[(i + 1) * width + j] = 1
        if (cb !== undefined && cb !== '*') reached[i * width + j + 1] = 1
      }
      if (cb === '*') {
        reached[i * width + j + 1] = 1
        if (ca !== undefined && ca !== '*') reached[(i + 1) * width + j] = 1
      }
      if (ca !== undefined && cb !== undefined && ca !== '*' && cb !== '*' && (ca === '?' || cb === '?' || ca === cb)) {
        reached[(i + 1) * width + j + 1] = 1
      }
    }
  }
  return false
}

/**
 * A role name both name globs match, or undefined when there is none: for messages that show why two
 * patterns tie. The same walk as namesOverlap, breadth-first and remembering the way, so the example
 * is short.
 */
export function overlapExample(a: string, b: string): string | undefined {
  const key = (i: number, j: number) => i * (b.length + 1) + j
  /** For each state reached: the state it was reached from and the character read on the way. */
  const from = new Map<number, { prev: number; read: string }>([[key(0, 0), { prev: -1, read: '' }]])
  const queue: Array<[number, number]> = [[0, 0]]
  for (let head = 0; head < queue.length; head++) {
    const [i, j] = queue[head]!
    if (i === a.length && j === b.length) return exampleTo(key(i, j), from)
    const ca = a[i]
    const cb = b[j]
    const step = (ni: number, nj: number, read: string) => {
      if (from.has(key(ni, nj))) return
      from.set(key(ni, nj), { prev: key(i, j), read })
      queue.push([ni, nj])
    }
    if (ca === '*') step(i + 1, j, '') // the star matches nothing more
    if (cb === '*') step(i, j + 1, '')
    if (ca === '*' && cb !== undefined && cb !== '*') step(i, j + 1, one(cb)) // the star eats b's character
    if (cb === '*' && ca !== undefined && ca !== '*') step(i + 1, j, one(ca))
    if (ca !== undefined && cb !== undefined && ca !== '*' && cb !== '*' && (ca === '?' || cb === '?' || ca === cb)) {
      step(i + 1, j + 1, ca === '?' ? one(cb) : ca)
    }
  }
  return undefined
}

/** The character a glob symbol (not `*`) reads: itself, or any name character for `?`. */
const one = (c: string) => (c === '?' ? 'x' : c)

function exampleTo(end: number, from: ReadonlyMap<number, { prev: number; read: string }>): string {
  let out = ''
  for (let at = end; at !== -1;) {
    const { prev, read } = from.get(at)!
    out = read + out
    at = prev
  }
  // Only globs of stars alone meet in the empty name, and those match every name.
  return out === '' ? 'x' : out
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')
}
