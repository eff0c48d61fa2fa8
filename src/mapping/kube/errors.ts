import type { KubeConfig } from '@kubernetes/client-node'
import { STATUS_CODES } from 'node:http'

const TLS_UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
])

/**
 * One line that says which Kubernetes API server could not be used and why, for any failure of a
 * request made with `kc`: connection (refused, DNS, TLS trust or name), HTTP status (with the API
 * server's own Status message), or the exec credential plugin. Never the credentials.
 */
export function describeKubeFailure(err: unknown, kc: KubeConfig): string {
  const server = kc.getCurrentCluster()?.server ?? '(no server)'
  return `Kubernetes API ${server}: ${reason(err, kc, server)}`.replace(/\s*\n\s*/g, ' ').trim()
}

function reason(err: unknown, kc: KubeConfig, server: string): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown; cause?: unknown; statusCode?: unknown }
  const status = typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined
  if (status !== undefined) {
    const text = `HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trim()
    const detail = statusMessage(e.body)
    const hint = status === 401 ? ' (the API server refused the credentials of the kubeconfig user)' : ''
    return detail === undefined || detail === STATUS_CODES[status] ? `${text}${hint}` : `${text}: ${detail}${hint}`
  }
  const cause = e?.cause as { code?: unknown; message?: unknown } | undefined
  const code = typeof cause?.code === 'string' ? cause.code : typeof e?.code === 'string' ? e.code : undefined
  const message = String(cause?.message ?? e?.message ?? err)
  const exec = kc.getCurrentUser()?.exec as { command?: unknown } | undefined
  if (exec !== undefined && cause === undefined && !(err instanceof TypeError)) {
    const why = code === 'ENOENT' ? 'command not found' : firstLine(message) || 'it failed without a message'
    return `the exec credential plugin ${String(exec.command)} failed: ${why}`
  }
  if (code !== undefined && TLS_UNTRUSTED.has(code)) {
    return (
      `the server's certificate is not trusted (${code}): set certificate-authority or ` +
      'certificate-authority-data for the cluster in the kubeconfig'
    )
  }
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the API server running, and is this its address?)'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host name of ${server}`
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out'
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      if (/TLS/.test(message)) return `TLS handshake failed (is it a plain http:// server?): ${firstLine(message)}`
      return 'the connection was closed by the server'
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the server's certificate does not name this host: ${firstLine(message)}`
    case 'CERT_HAS_EXPIRED':
      return "the server's certificate has expired"
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `TLS handshake failed (is it a plain http:// server?): ${firstLine(message)}`
    default:
      return firstLine(message)
  }
}

/** The message of a Kubernetes Status object (JSON or already parsed), if the body is one. */
function statusMessage(body: unknown): string | undefined {
  let doc = body
  if (typeof body === 'string') {
    try {
      doc = JSON.parse(body)
    } catch {
      return body.trim() === '' ? undefined : firstLine(body)
    }
  }
  const message = (doc as { message?: unknown } | null)?.message
  return typeof message === 'string' && message !== '' ? message : undefined
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]!.trim()
}
