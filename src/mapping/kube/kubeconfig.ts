import { KubeConfig } from '@kubernetes/client-node'
import { ConfigInvalid } from '../../shared/errors.js'

export interface KubeConfigOptions {
  readonly kubeconfig?: string | undefined
  /** Overrides the API server URL of the current cluster. */
  readonly master?: string | undefined
  readonly context?: string | undefined
  /** Without --kubeconfig: the pod's service account (server) or KUBECONFIG/~/.kube/config (CLI). */
  readonly fallback: 'in-cluster' | 'default'
}

/** The Kubernetes client configuration for the EKSConfigMap and CRD backends and for `add`. */
export function loadKubeConfig(opts: KubeConfigOptions): KubeConfig {
  const kc = new KubeConfig()
  const from =
    opts.kubeconfig ??
    (opts.fallback === 'in-cluster' ? 'the in-cluster service account' : 'KUBECONFIG or ~/.kube/config')
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig)
    else if (opts.fallback === 'in-cluster') kc.loadFromCluster()
    else kc.loadFromDefault()
    if (opts.context) kc.setCurrentContext(opts.context)
  } catch (err) {
    throw new ConfigInvalid(`could not load Kubernetes client configuration from ${from}: ${(err as Error).message}`)
  }
  const current = kc.getCurrentCluster()
  if (current === null) {
    throw new ConfigInvalid(`no Kubernetes cluster configured in ${from} (set --kubeconfig or --master)`)
  }
  if (opts.master) {
    kc.loadFromOptions({
      clusters: kc.clusters.map((c) => (c.name === current.name ? { ...c, server: opts.master! } : c)),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.getCurrentContext(),
    })
  }
  return kc
}
