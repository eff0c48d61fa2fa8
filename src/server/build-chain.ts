import type { ServerConfig } from '../config/server-config.js'
import type { Logger } from '../shared/logger.js'
import type { Metrics } from '../shared/metrics.js'
import { DynamicFileMapper } from '../mapping/dynamicfile/index.js'
import { FileMapper } from '../mapping/file/index.js'
import type { BackendMode, Mapper } from '../mapping/types.js'

export interface ChainDeps {
  readonly log: Logger
  readonly metrics: Metrics
  readonly now: () => number
  readonly env: Readonly<Record<string, string | undefined>>
}

/**
 * One mapper per configured backend mode, in order. The Kubernetes client (tens of MiB of memory
 * and most of a second of start-up) is loaded only when a backend needs it.
 */
export async function buildChain(
  config: ServerConfig,
  modes: readonly BackendMode[],
  deps: ChainDeps,
): Promise<Mapper[]> {
  const needsKube = modes.includes('EKSConfigMap') || modes.includes('CRD')
  const kube = needsKube ? await loadKubeBackends(config, deps.env) : undefined
  return modes.map((mode) => {
    const reservedPrefixes = config.reservedPrefixes[mode] ?? []
    const common = { log: deps.log, metrics: deps.metrics, reservedPrefixes }
    switch (mode) {
      case 'MountedFile':
        return new FileMapper(config.mappings, { reservedPrefixes, source: 'server config' })
      case 'EKSConfigMap':
        return new kube!.ConfigMapMapper({ ...common, kubeConfig: kube!.kubeConfig })
      case 'CRD':
        return new kube!.CrdMapper({ ...common, kubeConfig: kube!.kubeConfig })
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

async function loadKubeBackends(config: ServerConfig, env: ChainDeps['env']) {
  const [{ ConfigMapMapper }, { CrdMapper }, { loadKubeConfig }] = await Promise.all([
    import('../mapping/configmap/index.js'),
    import('../mapping/crd/index.js'),
    import('../mapping/kube/kubeconfig.js'),
  ])
  const kubeConfig = loadKubeConfig({
    kubeconfig: config.kubeconfig,
    master: config.master,
    fallback: 'in-cluster',
    env,
  })
  return { ConfigMapMapper, CrdMapper, kubeConfig }
}
