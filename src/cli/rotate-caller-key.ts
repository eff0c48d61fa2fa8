import { loadServerConfig, type ServerFlags } from '../config/server-config.js'
import { addCallerKey, issueCallerToken, loadCallerKeys, retireOldCallerKeys } from '../server/caller-auth.js'
import { loadOrCreateServingCert } from '../server/tls.js'
import { renderWebhookKubeconfig, writeWebhookKubeconfig } from '../server/webhook-kubeconfig.js'
import type { Io } from './io.js'

export interface RotateFlags extends ServerFlags {
  readonly config?: string | undefined
  readonly retire: boolean
}

/**
 * Caller-key rotation in two steps, with an overlap in which both keys are accepted:
 *   1. `rotate-caller-key` adds a key and rewrites the webhook kubeconfig with a token it signs;
 *      restart kube-apiserver so it reads the new kubeconfig (the old token keeps working meanwhile);
 *   2. `rotate-caller-key --retire` removes every older key, revoking the old token.
 * The running server picks up both changes within seconds.
 */
export async function runRotateCallerKey(flags: RotateFlags, io: Io): Promise<number> {
  const { config } = loadServerConfig(flags.config, flags, io.env)
  if (flags.retire) {
    const removed = retireOldCallerKeys(config.stateDir)
    const kept = loadCallerKeys(config.stateDir)[0]
    io.stderr.write(
      removed.length === 0
        ? `nothing to retire: only key ${kept?.kid ?? '(none)'} exists\n`
        : `retired caller keys ${removed.join(', ')}; only ${kept?.kid} is accepted now\n`,
    )
    return 0
  }
  const key = await addCallerKey(config.stateDir)
  const cert = await loadOrCreateServingCert({
    stateDir: config.stateDir,
    address: config.address,
    hostname: config.hostname,
  })
  writeWebhookKubeconfig(
    config.generateKubeconfig,
    renderWebhookKubeconfig({
      certPem: cert.certPem,
      hostname: config.hostname,
      port: config.port,
      bearerToken: await issueCallerToken(key, config.clusterId),
    }),
  )
  const accepted = loadCallerKeys(config.stateDir).map((k) => k.kid)
  io.stderr.write(
    `new caller key ${key.kid}; ${config.generateKubeconfig} now carries a token it signs.\n` +
      `accepted keys: ${accepted.join(', ')}\n` +
      `next: restart kube-apiserver so it reads the new webhook kubeconfig, then run ` +
      `'kube-iam-auth rotate-caller-key --retire' to revoke the old token.\n`,
  )
  return 0
}
