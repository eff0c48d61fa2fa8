import { ArnInvalid } from '../shared/errors.js'
import { PARTITION_IDS } from '../shared/partitions.js'

export interface Arn {
  readonly partition: string
  readonly service: string
  readonly region: string
  readonly account: string
  /** Everything after the fifth colon, colons included. */
  readonly resource: string
}

export type PrincipalType = 'root' | 'user' | 'role' | 'assumed-role' | 'federated-user'

export interface CanonicalArn {
  readonly type: PrincipalType
  /** The ARN a mapping is keyed by: an assumed-role session becomes its IAM role. */
  readonly canonical: string
}

/** AWS's ARN syntax: `arn:` and six colon-separated sections, the last keeping any further colons. */
export function parseArn(arn: string): Arn {
  if (!arn.startsWith('arn:')) throw new ArnInvalid('arn: invalid prefix')
  const sections = arn.split(':')
  if (sections.length < 6) throw new ArnInvalid('arn: not enough sections')
  const [, partition, service, region, account] = sections as [string, string, string, string, string]
  return { partition, service, region, account, resource: sections.slice(5).join(':') }
}

/**
 * The identity an STS ARN stands for, as upstream canonicalizes it: an assumed-role session ARN
 * becomes the IAM role ARN (session dropped, middle segments kept); users, roles, root and
 * federated users are returned unchanged. Case is preserved.
 */
export function canonicalizeArn(arn: string): CanonicalArn {
  const parsed = parseIdentityArn(arn)
  const parts = parsed.resource.split('/')
  const kind = parts[0]
  switch (parsed.service) {
    case 'sts':
      if (kind === 'federated-user') return { type: 'federated-user', canonical: arn }
      if (kind === 'assumed-role') {
        if (parts.length < 3) throw new ArnInvalid(`assumed-role arn '${arn}' does not have a role`)
        const role = parts.slice(1, -1).join('/')
        return {
          type: 'assumed-role',
          canonical: `arn:${parsed.partition}:iam::${parsed.account}:role/${role}`,
        }
      }
      throw new ArnInvalid(`unrecognized resource ${parsed.resource} for service sts`)
    case 'iam':
      if (kind === 'role' || kind === 'user') return { type: kind, canonical: arn }
      if (kind === 'root') return { type: 'root', canonical: arn }
      throw new ArnInvalid(`unrecognized resource ${parsed.resource} for service iam`)
    default:
      throw new ArnInvalid(`service ${parsed.service} in arn ${arn} is not a valid service for identities`)
  }
}

/**
 * Drops the path of a role ARN (`role/a/b/name` -> `role/name`). IAM role names are unique per
 * account whatever their path, and STS never reports paths, so this is how a configured role ARN
 * with a path is compared with what STS returns.
 */
export function stripRolePath(arn: string): string {
  const parsed = parseIdentityArn(arn)
  const parts = parsed.resource.split('/')
  if (parts[0] !== 'role' || parts.length <= 2) return arn
  return `arn:${parsed.partition}:${parsed.service}:${parsed.region}:${parsed.account}:role/${parts.at(-1)}`
}

/** parseArn with upstream's error texts, and the partition must be one we know. */
function parseIdentityArn(arn: string): Arn {
  let parsed: Arn
  try {
    parsed = parseArn(arn)
  } catch (err) {
    throw new ArnInvalid(`arn '${arn}' is invalid: '${(err as Error).message}'`)
  }
  if (!PARTITION_IDS.includes(parsed.partition)) {
    throw new ArnInvalid(`arn '${arn}' does not have a recognized partition`)
  }
  return parsed
}

/**
 * IAM's ArnLike: each of the six sections is matched on its own, `*` matching any run and `?` one
 * character. (Upstream lets `?` also match nothing; we follow IAM.) Case-sensitive.
 */
export function arnLike(arn: string, pattern: string): boolean {
  let a: string[]
  let p: string[]
  try {
    a = arnSections(arn)
  } catch (err) {
    throw new ArnInvalid(`could not parse input arn: ${(err as Error).message.replace(/^arn: /, '')}`)
  }
  try {
    p = arnSections(pattern)
  } catch (err) {
    throw new ArnInvalid(`could not parse ArnLike string: ${(err as Error).message.replace(/^arn: /, '')}`)
  }
  return p.every((section, i) => globToRegExp(section).test(a[i]!))
}

function arnSections(value: string): string[] {
  const parsed = parseArn(value)
  return ['arn', parsed.partition, parsed.service, parsed.region, parsed.account, parsed.resource]
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[\\^$.+()|[\]{}]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 's')
}
