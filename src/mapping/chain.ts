import { MappingFailed, NotMapped } from '../shared/errors.js'
import { renderMapping, type PrivateDnsResolver } from './template.js'
import type { BackendMode, Identity, Mapper, MatchKind } from './types.js'

export interface ChainResult {
  readonly username: string
  readonly groups: readonly string[]
  readonly source: BackendMode
  /** e.g. `mapRoles[2]`, or `mapAccounts[0]` for an account allow-list match. */
  readonly rule: string
  readonly kind: MatchKind | 'account'
  /** A role pattern match: the pattern as configured. */
  readonly pattern?: string | undefined
}

/**
 * Maps an identity through the backends in their configured order. Deterministic precedence:
 * the first backend with an explicit match (user > role > SSO > role pattern within a backend) wins, and only
 * when no backend has one do account allow-lists apply, so an allowed account in an early backend
 * never shadows an explicit mapping in a later one. A matched rule that cannot be applied (template
 * lookup failed, reserved username) denies: it never falls through to a weaker rule.
 */
export async function mapIdentity(
  chain: readonly Mapper[],
  identity: Identity,
  resolveDns: PrivateDnsResolver | undefined,
): Promise<ChainResult> {
  for (const mapper of chain) {
    const match = mapper.lookup(identity)
    if (match === undefined) continue
    const rendered = !hasTemplate(match.mapping)
      ? match.mapping
      : await renderMapping(match.mapping, identity, resolveDns).catch((err: unknown) => {
          if (err instanceof MappingFailed) {
            throw new MappingFailed(`mapper ${mapper.name} ${match.rule}: ${err.message}`, {
              transient: err.transient,
              cause: err,
            })
          }
          throw err
        })
    if (rendered.username.trim() === '') {
      throw new MappingFailed(`mapper ${mapper.name} ${match.rule}: the username template rendered an empty username`)
    }
    const reserved = mapper.reservedPrefixes.find((p) => p !== '' && rendered.username.startsWith(p))
    if (reserved !== undefined) {
      throw new MappingFailed(
        `invalid username '${rendered.username}' for mapper ${mapper.name} (${match.rule}): ` +
          `username must not begin with the following prefixes: [${mapper.reservedPrefixes.join(' ')}]`,
      )
    }
    return {
      ...rendered,
      source: mapper.name,
      rule: match.rule,
      kind: match.kind,
      ...(match.pattern === undefined ? {} : { pattern: match.pattern }),
    }
  }
  for (const mapper of chain) {
    const rule = mapper.accountRule(identity.accountId)
    if (rule !== undefined) {
      return { username: identity.canonicalArn, groups: [], source: mapper.name, rule, kind: 'account' }
    }
  }
  throw new NotMapped('identity is not mapped')
}

function hasTemplate(m: { username: string; groups: readonly string[] }): boolean {
  return m.username.includes('{{') || m.groups.some((g) => g.includes('{{'))
}
