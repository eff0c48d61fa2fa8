import { lookupRules, type RuleSet } from './rules.js'
import type { BackendMode, Identity, Mapper, Match, SourceStatus } from './types.js'

/** What a snapshot of any backend offers: a lookup, an account allow-list, counts for /status. */
export interface Snapshot {
  readonly lookup: (identity: Identity) => Match | undefined
  readonly accounts: ReadonlyMap<string, string>
  readonly counts: SourceStatus['counts']
}

export function snapshotOf(rules: RuleSet): Snapshot {
  return { lookup: (identity) => lookupRules(rules, identity), accounts: rules.accounts, counts: rules.counts }
}

/** A backend whose rules never change: MountedFile, and every source `explain` reads from a file. */
export class StaticMapper implements Mapper {
  readonly name: BackendMode
  readonly reservedPrefixes: readonly string[]
  readonly #snapshot: Snapshot
  readonly #version: string
  readonly #loadedAt = new Date().toISOString()

  constructor(
    name: BackendMode,
    snapshot: Snapshot,
    opts: { reservedPrefixes?: readonly string[]; version?: string } = {},
  ) {
    this.name = name
    this.#snapshot = snapshot
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#version = opts.version ?? 'static'
  }

  async start(): Promise<void> {}

  lookup(identity: Identity): Match | undefined {
    return this.#snapshot.lookup(identity)
  }

  accountRule(accountId: string): string | undefined {
    return this.#snapshot.accounts.get(accountId)
  }

  status(): SourceStatus {
    return {
      name: this.name,
      synced: true,
      version: this.#version,
      lastSuccess: this.#loadedAt,
      counts: this.#snapshot.counts,
    }
  }
}
