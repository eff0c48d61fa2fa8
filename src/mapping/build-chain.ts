import type { KubeConfig } from '@kubernetes/client-node'
import type { ServerConfig } from '../config/server-config.js'
import type { Logger } from '../server/logger.js'
import type { Metrics } from '../server/metrics.js'
import { ConfigMapMapper } from './configmap/index.js'
import { CrdMapper } from './crd/index.js'
import { DynamicFileMapper } from './dynamicfile/index.js'
import { FileMapper } from './file/index.js'
import { loadKubeConfig } from './kube/kubeconfig.js'
import type { BackendMode, Mapper } from './types.js'

export interface ChainDeps {
  readonly log: Logger
  readonly metrics: Metrics
  readonly now: () => number
  readonly env: Readonly<Record<string, string | undefined>>
}

/** One mapper per configured backend mode, in order. The Kubernetes client is loaded only if needed. */
export function buildChain(config: ServerConfig, modes: readonly BackendMode[], deps: ChainDeps): Mapper[] {
  let kubeConfig: KubeConfig | undefined
  const kube = () => (kubeConfig ??= loadKubeConfig({ kubeconfig: config.kubeconfig, master: config.master, fallback: 'in-cluster' }))
  return modes.map((mode) => {
    const reservedPrefixes = config.reservedPrefixes[mode] ?? []
    const common = { log: deps.log, metrics: deps.metrics, reservedPrefixes }
    switch (mode) {
      case 'MountedFile':
        return new FileMapper(config.mappings, { reservedPrefixes, source: 'server config' })
      case 'EKSConfigMap':
        return new ConfigMapMapper({ ...common, kubeConfig: kube() })
      case 'CRD':
        return new CrdMapper({ ...common, kubeConfig: kube() })
      case 'DynamicFile':
        return new DynamicFileMapper({
          ...common,
          path: config.dynamicFile!.path,
          userIdStrict: config.dynamicFile!.userIdStrict,
          now: deps.now,
        })
    }
  })
}
