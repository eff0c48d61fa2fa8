import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node'
import { KubeApiFailed, UsageError } from '../shared/errors.js'
import { AWS_AUTH_NAME, AWS_AUTH_NAMESPACE } from '../mapping/configmap/index.js'
import { addToAwsAuth, type AwsAuthAddition } from '../mapping/configmap/edit.js'
import { isRolePattern } from '../mapping/role-pattern.js'
import { describeKubeFailure } from '../mapping/kube/errors.js'
import { kubeServer, loadKubeConfig } from '../mapping/kube/kubeconfig.js'
import type { Io } from './io.js'

export interface AddFlags {
  readonly kind: 'user' | 'role'
  readonly userarn?: string | undefined
  readonly rolearn?: string | undefined
  /** `permissionSetName=..,accountID=..[,partition=..]` */
  readonly sso?: string | undefined
  readonly username?: string | undefined
  readonly groups?: readonly string[] | undefined
  readonly prompt: boolean
  readonly kubeconfig?: string | undefined
  readonly masterUrl?: string | undefined
  readonly kubeconfigContext?: string | undefined
  /** The pod's service account directory (tests point it at a stand-in). */
  readonly serviceAccountDir?: string | undefined
}

const MAX_CONFLICT_RETRIES = 5

/**
 * `kube-iam-auth add user|role`: adds one mapping to kube-system/aws-auth through the Kubernetes
 * API. The whole result is validated before it is written, and a concurrent edit (409 Conflict) is
 * retried on the fresh object, so nobody's change is lost and nothing invalid is ever written.
 */
export async function runAdd(flags: AddFlags, io: Io): Promise<number> {
  const addition = additionOf(flags)
  const action = describe(addition)
  if (flags.prompt) {
    const answer = (await io.prompt(`Ready to add "${action}", should we continue? [y/N]: `)).toLowerCase()
    if (answer !== 'y' && answer !== 'yes') {
      io.stderr.write(`cancelled "${action}"\n`)
      return 0
    }
  }
  const kubeConfig = loadKubeConfig({
    kubeconfig: flags.kubeconfig,
    master: flags.masterUrl,
    context: flags.kubeconfigContext,
    fallback: 'default',
    env: io.env,
    serviceAccountDir: flags.serviceAccountDir,
  })
  const api = kubeConfig.makeApiClient(CoreV1Api)
  const failed = (err: unknown, what: string) => new KubeApiFailed(`${what}: ${describeKubeFailure(err, kubeConfig)}`)
  const where = `${AWS_AUTH_NAMESPACE}/${AWS_AUTH_NAME}`
  for (let attempt = 1; ; attempt++) {
    let current: V1ConfigMap
    try {
      current = await api.readNamespacedConfigMap({ namespace: AWS_AUTH_NAMESPACE, name: AWS_AUTH_NAME })
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new KubeApiFailed(
          `ConfigMap ${where} does not exist on ${kubeServer(kubeConfig)} (add does not create it: it would replace the mapping EKS manages)`,
        )
      }
      throw failed(err, `could not read ConfigMap ${where}`)
    }
    const data = addToAwsAuth(current.data ?? {}, addition)
    try {
      const updated = await api.replaceNamespacedConfigMap({
        namespace: AWS_AUTH_NAMESPACE,
        name: AWS_AUTH_NAME,
        body: { ...current, data },
      })
      io.stdout.write(`updated configmap:\n\n${configMapYaml(updated)}`)
      return 0
    } catch (err) {
      if (statusOf(err) !== 409) throw failed(err, `could not update ConfigMap ${where}`)
      if (attempt >= MAX_CONFLICT_RETRIES) {
        throw new KubeApiFailed(`ConfigMap ${where} kept changing (${attempt} conflicts in a row); try again`)
      }
      io.stderr.write(
        `aws-auth changed meanwhile (conflict); retrying on the new version (${attempt}/${MAX_CONFLICT_RETRIES})\n`,
      )
    }
  }
}

function additionOf(flags: AddFlags): AwsAuthAddition {
  const username = flags.username ?? ''
  const groups = [...(flags.groups ?? [])]
  if (flags.kind === 'user') {
    if (!flags.userarn || !username) {
      throw new UsageError(`invalid empty value in userARN "${flags.userarn ?? ''}", username "${username}"`)
    }
    return { kind: 'user', entry: { userarn: flags.userarn, username, groups } }
  }
  if (!username || (!flags.rolearn && !flags.sso)) {
    throw new UsageError(`invalid empty value in rolearn "${flags.rolearn ?? ''}" or --sso, username "${username}"`)
  }
  if (flags.rolearn && flags.sso) throw new UsageError('give either --rolearn or --sso, not both')
  return {
    kind: 'role',
    entry: flags.sso ? { sso: parseSso(flags.sso), username, groups } : { rolearn: flags.rolearn, username, groups },
  }
}

/** `permissionSetName=ViewOnly,accountID=012345678912[,partition=aws]` */
export function parseSso(value: string): { permissionSetName: string; accountID: string; partition?: string } {
  const fields: Record<string, string> = {}
  for (const part of value.split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`--sso: expected key=value, got "${part}"`)
    fields[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim()
  }
  const unknown = Object.keys(fields).filter((k) => !['permissionsetname', 'accountid', 'partition'].includes(k))
  if (unknown.length > 0)
    throw new UsageError(`--sso: unknown field ${unknown.join(', ')} (use permissionSetName, accountID, partition)`)
  if (!fields.permissionsetname || !fields.accountid)
    throw new UsageError('--sso needs permissionSetName=... and accountID=...')
  return {
    permissionSetName: fields.permissionsetname,
    accountID: fields.accountid,
    ...(fields.partition ? { partition: fields.partition } : {}),
  }
}

function describe(a: AwsAuthAddition): string {
  const groups = `groups=[${a.entry.groups.join(',')}]`
  if (a.kind === 'user') return `user ${a.entry.userarn} as ${a.entry.username} ${groups}`
  const who = a.entry.sso
    ? `SSO permission set ${a.entry.sso.permissionSetName} in ${a.entry.sso.accountID}`
    : `role${isRolePattern(a.entry.rolearn ?? '') ? ' pattern' : ''} ${a.entry.rolearn}`
  return `${who} as ${a.entry.username} ${groups}`
}

function statusOf(err: unknown): number | undefined {
  return (err as { code?: number }).code ?? (err as { statusCode?: number }).statusCode
}

function configMapYaml(cm: V1ConfigMap): string {
  const lines = [
    `apiVersion: v1`,
    `kind: ConfigMap`,
    `metadata:`,
    `  name: ${cm.metadata?.name}`,
    `  namespace: ${cm.metadata?.namespace}`,
    `data:`,
  ]
  for (const [k, v] of Object.entries(cm.data ?? {})) {
    lines.push(
      `  ${k}: |`,
      ...v
        .replace(/\n$/, '')
        .split('\n')
        .map((l) => `    ${l}`),
    )
  }
  return `${lines.join('\n')}\n`
}
