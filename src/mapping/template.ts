import { MappingFailed } from '../shared/errors.js'
import type { Identity, Mapping } from './types.js'

export const TEMPLATE_VARIABLES = [
  'EC2PrivateDNSName',
  'AccountID',
  'SessionName',
  'SessionNameRaw',
  'AccessKeyID',
] as const
type Variable = (typeof TEMPLATE_VARIABLES)[number]

/** Resolves an EC2 instance ID to its private DNS name (EC2 DescribeInstances, cached). */
export type PrivateDnsResolver = (instanceId: string) => Promise<string>

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g
const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/

/** What is wrong with a template string: unknown variables or stray braces. */
export function templateProblems(template: string): string[] {
  const problems: string[] = []
  for (const [, name] of template.matchAll(PLACEHOLDER)) {
    if (!(TEMPLATE_VARIABLES as readonly string[]).includes(name!)) {
      problems.push(
        `unknown template variable {{${name}}} (known: ${TEMPLATE_VARIABLES.map((v) => `{{${v}}}`).join(', ')})`,
      )
    }
  }
  const rest = template.replace(PLACEHOLDER, '')
  if (rest.includes('{{') || rest.includes('}}')) problems.push(`unbalanced "{{" or "}}" in '${template}'`)
  return problems
}

/**
 * Renders `{{...}}` variables in one pass: a value that itself contains `{{...}}` (a session name
 * is chosen by whoever assumes the role) is inserted literally, never expanded again.
 */
export async function renderTemplate(
  template: string,
  identity: Identity,
  resolveDns: PrivateDnsResolver | undefined,
): Promise<string> {
  if (!template.includes('{{')) return template
  let dnsName: string | undefined
  if (template.includes('{{EC2PrivateDNSName}}')) {
    if (!INSTANCE_ID.test(identity.sessionName)) {
      throw new MappingFailed('SessionName did not contain an instance id')
    }
    if (resolveDns === undefined)
      throw new MappingFailed('{{EC2PrivateDNSName}} is used but no EC2 lookup is configured')
    dnsName = await resolveDns(identity.sessionName)
  }
  const values: Record<Variable, string | undefined> = {
    EC2PrivateDNSName: dnsName,
    AccountID: identity.accountId,
    SessionName: identity.sessionName.replaceAll('@', '-'),
    SessionNameRaw: identity.sessionName,
    AccessKeyID: identity.accessKeyId,
  }
  return template.replace(PLACEHOLDER, (whole, name: string) => values[name as Variable] ?? whole)
}

export async function renderMapping(
  mapping: Mapping,
  identity: Identity,
  resolveDns: PrivateDnsResolver | undefined,
): Promise<Mapping> {
  const username = await renderTemplate(mapping.username, identity, resolveDns).catch((err: unknown) => {
    throw wrap(err, `error rendering username template "${mapping.username}"`)
  })
  const groups: string[] = []
  for (const g of mapping.groups) {
    groups.push(
      await renderTemplate(g, identity, resolveDns).catch((err: unknown) => {
        throw wrap(err, `error rendering group template "${g}"`)
      }),
    )
  }
  return { username, groups }
}

function wrap(err: unknown, context: string): unknown {
  if (!(err instanceof MappingFailed)) return err
  return new MappingFailed(`${context}: ${err.message}`, { transient: err.transient, cause: err })
}
