import { isKiaError } from '../shared/errors.js'
import { canonicalizeArn, parseArn, stripRolePath } from '../sts/arn.js'
import { mapIdentity, type ChainResult } from './chain.js'
import { patternNearMisses, patternNote } from './explain-patterns.js'
import { invalidRulesFor, type InvalidRule, type RuleSet } from './rules.js'
import type { PrivateDnsResolver } from './template.js'
import type { Identity, Mapper } from './types.js'

/** A backend as `explain` sees it: the mapper, where its rules came from, and its raw rules for hints. */
export interface ExplainSource {
  readonly mapper: Mapper
  /** Where the rules came from, e.g. `config/server.yaml` or `aws-auth.yaml`. */
  readonly origin: string
  readonly rules?: RuleSet | undefined
  /** Entries of this source that are invalid (the server would refuse them), for `explain` to name. */
  readonly invalid?: readonly InvalidRule[] | undefined
}

export interface Explanation {
  readonly identity: Identity
  readonly result?: ChainResult | undefined
  readonly denial?: string | undefined
  /** One line per backend, in chain order: what it matched or why it did not. */
  readonly trace: readonly string[]
  /** Near misses worth a look: the same name in another account, a user mapped as a role, ... */
  readonly hints: readonly string[]
  /** Invalid entries that were meant for this identity, and why they are invalid. */
  readonly invalidRules: readonly {
    readonly source: string
    readonly rule: string
    readonly problems: readonly string[]
  }[]
}

/**
 * An identity as STS would report it for this ARN, for a dry run. Account and session come from
 * the ARN; the principal ID and access key ID are unknown offline unless given.
 */
export function identityFromArn(
  arn: string,
  opts: { sessionName?: string | undefined; userId?: string | undefined; accessKeyId?: string | undefined } = {},
): Identity {
  const { canonical, type } = canonicalizeArn(arn)
  const parsed = parseArn(arn)
  const sessionFromArn = type === 'assumed-role' ? (parsed.resource.split('/').at(-1) ?? '') : ''
  return {
    arn,
    canonicalArn: canonical,
    accountId: parsed.account,
    userId: opts.userId ?? '(unknown principal ID)',
    sessionName: opts.sessionName ?? sessionFromArn,
    accessKeyId: opts.accessKeyId ?? 'AKIAEXPLAINEXAMPLE00',
    stsEndpoint: 'sts.amazonaws.com',
  }
}

/** Runs the mapping chain exactly as the server does and says why it ended where it did. */
export async function explainIdentity(
  sources: readonly ExplainSource[],
  identity: Identity,
  resolveDns?: PrivateDnsResolver,
): Promise<Explanation> {
  const trace: string[] = []
  const invalidRules: { source: string; rule: string; problems: string[] }[] = []
  let explicitSeen = false
  for (const s of sources) {
    const meant = invalidRulesFor(s.invalid ?? [], identity)
    for (const r of meant) {
      invalidRules.push({
        source: `${s.mapper.name} (${s.origin})`,
        rule: r.rule,
        problems: r.problems.map((p) => `${p.path}: ${p.message}`),
      })
    }
    const invalidNote = meant
      .map(
        (r) =>
          (r.pattern === undefined
            ? `; ${r.kind} rule ${r.rule} is meant for it but is invalid: `
            : `; role pattern ${r.rule} (${r.pattern.source}) matches it but is invalid: `) +
          `${r.problems[0]!.path}: ${r.problems[0]!.message}`,
      )
      .join('')
    const match = s.mapper.lookup(identity)
    const patterns = s.rules === undefined ? '' : patternNote(s.rules, identity, match)
    if (match !== undefined && !explicitSeen) {
      explicitSeen = true
      trace.push(
        `${s.mapper.name} (${s.origin}): ${ruleName(match)} matches -> username "${match.mapping.username}", groups [${match.mapping.groups.join(', ')}]` +
          patterns,
      )
    } else if (match !== undefined) {
      trace.push(`${s.mapper.name} (${s.origin}): ${ruleName(match)} also matches, but an earlier backend already did`)
    } else {
      const account = s.mapper.accountRule(identity.accountId)
      trace.push(
        `${s.mapper.name} (${s.origin}): no user, role${s.rules?.patterns.length ? ', SSO or role pattern' : ' or SSO'} rule for ${identity.canonicalArn}` +
          (account === undefined ? '' : `; account ${identity.accountId} is allowed by ${account}`) +
          invalidNote +
          patterns,
      )
    }
  }
  const hints = sources.flatMap((s) =>
    s.rules === undefined ? [] : [...nearMisses(s, identity), ...patternNearMisses(s.mapper.name, s.rules, identity)],
  )
  const dns: PrivateDnsResolver = resolveDns ?? (async (id) => `{{EC2PrivateDNSName of ${id}}}`)
  try {
    const result = await mapIdentity(
      sources.map((s) => s.mapper),
      identity,
      dns,
    )
    return { identity, result, trace, hints, invalidRules }
  } catch (err) {
    if (!isKiaError(err)) throw err
    return { identity, denial: err.message, trace, hints, invalidRules }
  }
}

/** `role rule mapRoles[2]`, or `role pattern mapRoles[3] (arn:aws:iam::111122223333:role/dev-*)`. */
export function ruleName(m: { kind: string; rule: string; pattern?: string | undefined }): string {
  return m.kind === 'role-pattern' ? `role pattern ${m.rule} (${m.pattern})` : `${m.kind} rule ${m.rule}`
}

/** Rules that almost match: same resource name with another account, partition, type or path. */
function nearMisses(source: ExplainSource, identity: Identity): string[] {
  const want = resourceName(identity.canonicalArn)
  if (want === undefined) return []
  const wantKey = identity.canonicalArn.toLowerCase()
  const out: string[] = []
  const check = (key: string, rule: string, kind: 'user' | 'role') => {
    if (key === wantKey || resourceName(key) !== want) return
    let roleKey = wantKey
    try {
      roleKey = stripRolePath(wantKey)
    } catch {
      // keep wantKey
    }
    if (key === roleKey) return
    out.push(
      `${source.mapper.name} ${rule} maps ${key} (${kind}): same name as ${identity.canonicalArn}, but a different ARN`,
    )
  }
  for (const [key, r] of source.rules!.users) check(key, r.rule, 'user')
  for (const [key, r] of source.rules!.roles) check(key, r.rule, 'role')
  return out
}

function resourceName(arn: string): string | undefined {
  try {
    return parseArn(arn).resource.split('/').at(-1)?.toLowerCase()
  } catch {
    return undefined
  }
}
