import { ConfigInvalid } from '../../shared/errors.js'
import { compileRules, type MappingDocument } from '../rules.js'
import { snapshotOf, StaticMapper } from '../static.js'

/** MountedFile: the mapRoles/mapUsers/mapAccounts of the server config file, fixed at start-up. */
export class FileMapper extends StaticMapper {
  constructor(doc: MappingDocument, opts: { reservedPrefixes?: readonly string[]; source?: string } = {}) {
    const { rules, problems } = compileRules(doc, 'server.')
    const errors = problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) {
      throw new ConfigInvalid(
        `invalid server role mappings in ${opts.source ?? 'config'}`,
        errors.map((p) => `${p.path}: ${p.message}`),
      )
    }
    super('MountedFile', snapshotOf(rules), {
      ...(opts.reservedPrefixes === undefined ? {} : { reservedPrefixes: opts.reservedPrefixes }),
      version: opts.source ?? 'config',
    })
  }
}
