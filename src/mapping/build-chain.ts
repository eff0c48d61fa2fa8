import type { ServerConfig } from '../config/server-config.js'
import { ConfigInvalid } from '../errors.js'
import type { Logger } from '../server/logger.js'
import type { Metrics } from '../server/metrics.js'
import { FileMapper } from './file/index.js'
import type { BackendMode, Mapper } from './types.js'

export interface ChainDeps {
  readonly log: Logger
  readonly metrics: Metrics
  readonly now: () => number
  readonly env: Readonly<Record<string, string | undefined>>
}

/** One mapper per configured backend mode, in order. */
export function buildChain(config: ServerConfig, modes: readonly BackendMode[], deps: ChainDeps): Mapper[] {
  return modes.map((mode) => buildMapper(mode, config, deps))
}

export function buildMapper(mode: BackendMode, config: ServerConfig, _deps: ChainDeps): Mapper {
  const reservedPrefixes = config.reservedPrefixes[mode] ?? []
  switch (mode) {
    case 'MountedFile':
      return new FileMapper(config.mappings, { reservedPrefixes, source: 'server config' })
    default:
      throw new ConfigInvalid(`backend-mode "${mode}" is not available in this build`)
  }
}
