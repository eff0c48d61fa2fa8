import { ConfigInvalid } from '../../errors.js'
import { compileRules, lookupRules, type MappingDocument, type RuleSet } from '../rules.js'
import type { Identity, Mapper, Match, SourceStatus } from '../types.js'

/** MountedFile: the mapRoles/mapUsers/mapAccounts of the server config file, fixed at start-up. */
export class FileMapper implements Mapper {
  readonly name = 'MountedFile' as const
  readonly reservedPrefixes: readonly string[]
  readonly #rules: RuleSet
  readonly #loadedAt = new Date().toISOString()
  readonly #version: string

  constructor(doc: MappingDocument, opts: { reservedPrefixes?: readonly string[]; source?: string } = {}) {
    const { rules, problems } = compileRules(doc, 'server.')
    const errors = problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) {
      throw new ConfigInvalid(
        `invalid server role mappings in ${opts.source ?? 'config'}`,
        errors.map((p) => `${p.path}: ${p.message}`),
      )
    }
    this.#rules = rules
    this.#version = opts.source ?? 'config'
    this.reservedPrefixes = opts.reservedPrefixes ?? []
  }

  async start(): Promise<void> {}

  lookup(identity: Identity): Match | undefined {
    return lookupRules(this.#rules, identity)
  }

  accountRule(accountId: string): string | undefined {
    return this.#rules.accounts.get(accountId)
  }

  status(): SourceStatus {
    return { name: this.name, synced: true, version: this.#version, lastSuccess: this.#loadedAt, counts: this.#rules.counts }
  }
}
