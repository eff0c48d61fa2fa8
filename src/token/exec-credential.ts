import { UsageError } from '../shared/errors.js'

export const EXEC_CREDENTIAL_VERSIONS = [
  'client.authentication.k8s.io/v1beta1',
  'client.authentication.k8s.io/v1',
] as const
export type ExecCredentialVersion = (typeof EXEC_CREDENTIAL_VERSIONS)[number]

/**
 * The ExecCredential apiVersion kubectl asked for in KUBERNETES_EXEC_INFO. Unset or empty means an
 * old kubectl: v1beta1. Unlike upstream, a version we cannot produce is an error, not an echo.
 */
export function execCredentialVersion(execInfo: string | undefined): ExecCredentialVersion {
  if (execInfo === undefined || execInfo.trim() === '') return 'client.authentication.k8s.io/v1beta1'
  let info: unknown
  try {
    info = JSON.parse(execInfo)
  } catch {
    throw new UsageError('KUBERNETES_EXEC_INFO is not valid JSON')
  }
  const apiVersion = (info as { apiVersion?: unknown } | null)?.apiVersion
  if (typeof apiVersion === 'string' && (EXEC_CREDENTIAL_VERSIONS as readonly string[]).includes(apiVersion)) {
    return apiVersion as ExecCredentialVersion
  }
  throw new UsageError(
    `KUBERNETES_EXEC_INFO asks for ExecCredential apiVersion ${JSON.stringify(apiVersion ?? null)}; ` +
      `supported: ${EXEC_CREDENTIAL_VERSIONS.join(', ')} (set apiVersion in the kubeconfig exec section)`,
  )
}

/** RFC 3339 in UTC with second precision, as client-go writes metav1.Time. */
export function rfc3339Seconds(d: Date): string {
  // Not toISOString(): its first call in a process costs about 0.2 ms, paid by every cache hit.
  const p = (n: number, width = 2) => String(n).padStart(width, '0')
  return (
    `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}` +
    `T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}Z`
  )
}

/** One line of JSON, key order as upstream prints it. */
export function formatExecCredential(version: ExecCredentialVersion, token: string, expiresAt: Date): string {
  return `${JSON.stringify({
    kind: 'ExecCredential',
    apiVersion: version,
    spec: { interactive: false },
    status: { expirationTimestamp: rfc3339Seconds(expiresAt), token },
  })}\n`
}
