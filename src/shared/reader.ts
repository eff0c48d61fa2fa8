import { didYouMean } from './did-you-mean.js'
import type { Problem } from './problem.js'

/**
 * Typed, case-insensitive access to a decoded YAML/JSON object, as viper and Go's mapstructure read
 * upstream's files (`clusterID`, `clusterid` and `ClusterId` are one key). Every type error is
 * recorded as a Problem with its full path instead of being thrown, so a whole file is checked in
 * one pass.
 */
export interface Reader {
  readonly path: string
  has(key: string): boolean
  object(key: string): Reader
  list(key: string): Reader[]
  string(key: string): string | undefined
  /** Like string(), for values rules.ts validates further (kept even when empty). */
  rawString(key: string): string | undefined
  rawStringList(key: string): string[] | undefined
  /** A list of strings, or one whitespace-separated string (viper's GetStringSlice). */
  stringList(key: string): string[] | undefined
  /** 12-digit account IDs; unquoted YAML numbers are accepted when they still have 12 digits. */
  accountList(key: string): string[]
  accountString(key: string): string | undefined
  integer(key: string, min?: number, max?: number): number | undefined
  number(key: string, min?: number): number | undefined
  boolean(key: string): boolean | undefined
  /** Go-style duration (`90s`, `2m`, `1h30m`, `500ms`) or a number of seconds; milliseconds out. */
  duration(key: string): number | undefined
  error(key: string, message: string): void
  warn(key: string, message: string): void
  warnUnknown(known: readonly string[]): void
}

export function caseInsensitive(value: unknown, path: string, problems: Problem[]): Reader {
  const at = (key: string) => (path === '' ? key : `${path}.${key}`)
  const error = (key: string, message: string) => problems.push({ path: at(key), message, severity: 'error' })
  const warn = (key: string, message: string) => problems.push({ path: at(key), message, severity: 'warning' })

  const entries = new Map<string, [string, unknown]>()
  if (value !== null && value !== undefined) {
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push({ path: path || '(top level)', message: 'must be a mapping', severity: 'error' })
    } else {
      for (const [k, v] of Object.entries(value)) {
        const lower = k.toLowerCase()
        const earlier = entries.get(lower)
        if (earlier !== undefined)
          error(k, `duplicate key (also written as "${earlier[0]}"; keys are case-insensitive)`)
        else entries.set(lower, [k, v])
      }
    }
  }
  const get = (key: string): unknown => entries.get(key.toLowerCase())?.[1]
  const typed = <T>(key: string, check: (v: unknown) => v is T, what: string): T | undefined => {
    const v = get(key)
    if (v === undefined || v === null) return undefined
    if (!check(v)) {
      error(key, `must be ${what}, got ${describe(v)}`)
      return undefined
    }
    return v
  }
  const isString = (v: unknown): v is string => typeof v === 'string'

  const reader: Reader = {
    path,
    has: (key) => entries.has(key.toLowerCase()),
    object: (key) => caseInsensitive(get(key), at(key), problems),
    list: (key) => {
      const v = get(key)
      if (v === undefined || v === null) return []
      if (!Array.isArray(v)) {
        error(key, `must be a list, got ${describe(v)}`)
        return []
      }
      return v.map((item, i) => caseInsensitive(item, `${at(key)}[${i}]`, problems))
    },
    string: (key) => {
      const s = typed(key, isString, 'a string')
      return s === '' ? undefined : s
    },
    rawString: (key) => typed(key, isString, 'a string'),
    rawStringList: (key) => {
      const v = get(key)
      if (v === undefined || v === null) return undefined
      if (!Array.isArray(v) || !v.every(isString)) {
        error(key, `must be a list of strings, got ${describe(v)}`)
        return undefined
      }
      return v
    },
    stringList: (key) => {
      const v = get(key)
      if (v === undefined || v === null) return undefined
      if (typeof v === 'string') return v.split(/\s+/).filter((s) => s !== '')
      if (!Array.isArray(v) || !v.every(isString)) {
        error(key, `must be a list of strings, got ${describe(v)}`)
        return undefined
      }
      return v
    },
    accountList: (key) => {
      const v = get(key)
      if (v === undefined || v === null) return []
      const items = typeof v === 'string' ? v.split(/\s+/).filter((s) => s !== '') : v
      if (!Array.isArray(items)) {
        error(key, `must be a list of account IDs, got ${describe(v)}`)
        return []
      }
      return items.map((item, i) => accountId(item, `${key}[${i}]`, error))
    },
    accountString: (key) => {
      const v = get(key)
      return v === undefined || v === null ? undefined : accountId(v, key, error)
    },
    integer: (key, min = -Infinity, max = Infinity) => {
      const n = typed(key, (v): v is number => typeof v === 'number', 'an integer')
      if (n === undefined) return undefined
      if (!Number.isInteger(n) || n < min || n > max) {
        error(
          key,
          `must be an integer${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` and <= ${max}` : ''}, got ${n}`,
        )
        return undefined
      }
      return n
    },
    number: (key, min = -Infinity) => {
      const n = typed(key, (v): v is number => typeof v === 'number' && Number.isFinite(v), 'a number')
      if (n !== undefined && n < min) {
        error(key, `must be >= ${min}, got ${n}`)
        return undefined
      }
      return n
    },
    boolean: (key) => typed(key, (v): v is boolean => typeof v === 'boolean', 'true or false'),
    duration: (key) => {
      const v = get(key)
      if (v === undefined || v === null) return undefined
      const ms = parseDuration(v)
      if (ms === undefined) error(key, `must be a duration such as 30s, 2m or 1h30m, got ${describe(v)}`)
      return ms
    },
    error,
    warn,
    warnUnknown: (known) => {
      for (const [lower, [original]] of entries) {
        if (known.includes(lower)) continue
        const meant = didYouMean(lower, known)
        warn(original, `unknown key (ignored)${meant === undefined ? '' : `; did you mean "${meant}"?`}`)
      }
    },
  }
  return reader
}

function accountId(v: unknown, key: string, error: (key: string, message: string) => void): string {
  // An unquoted 012345678901 is read by YAML as a number and loses its leading zero.
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : v
  if (typeof s !== 'string' || !/^\d{12}$/.test(s)) {
    error(key, `'${String(v)}' is not a valid AWS account ID (12 digits; quote account IDs in YAML)`)
    return String(v)
  }
  return s
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(v)) return undefined
  let total = 0
  for (const [, n, , unit] of v.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * UNIT_MS[unit!]!
  return total
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list'
  if (v === null) return 'null'
  if (typeof v === 'object') return 'a mapping'
  return `${typeof v} ${JSON.stringify(v)}`
}
