import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
import { canonicalizeArn } from '../../sts/arn.js'
import { followCollection } from '../kube/list-watch.js'
import { compileRules, EMPTY_RULES, lookupRules, type RuleSet } from '../rules.js'
import { SourceState } from '../source-state.js'
import type { Identity, Mapper, Match, RoleMapping, SourceStatus, UserMapping } from '../types.js'

export const CRD_GROUP = 'iamauthenticator.k8s.aws'
export const CRD_VERSION = 'v1alpha1'
export const CRD_PLURAL = 'iamidentitymappings'

export interface IamIdentityMapping {
  metadata?: { name?: string; resourceVersion?: string; creationTimestamp?: string | Date }
  spec?: { arn?: unknown; username?: unknown; groups?: unknown }
  status?: { canonicalARN?: string; userID?: string }
}

export interface CrdMapperOptions {
  readonly kubeConfig: KubeConfig
  readonly log: Logger
  readonly metrics: Metrics
  readonly reservedPrefixes?: readonly string[]
}

/**
 * CRD: cluster-scoped IAMIdentityMapping objects, followed live. Each object stands alone: an
 * invalid one is skipped (and reported), the others apply. Objects map as soon as they are seen
 * (upstream waits for its controller to write status); status.canonicalARN is still written, as
 * upstream does, for tools that read it. Older objects win ties, deterministically.
 */
export class CrdMapper implements Mapper {
  readonly name = 'CRD' as const
  readonly reservedPrefixes: readonly string[]
  readonly #opts: CrdMapperOptions
  readonly #state: SourceState
  readonly #objects = new Map<string, IamIdentityMapping>()
  #rules: RuleSet = EMPTY_RULES
  #api: CustomObjectsApi | undefined
  #lastVersion = '0'

  constructor(opts: CrdMapperOptions) {
    this.#opts = opts
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#state = new SourceState(this.name, opts.metrics)
  }

  start(signal: AbortSignal): Promise<void> {
    const api = (this.#api = this.#opts.kubeConfig.makeApiClient(CustomObjectsApi))
    return followCollection<IamIdentityMapping>({
      kubeConfig: this.#opts.kubeConfig,
      list: async () => {
        const list = (await api.listClusterCustomObject({
          group: CRD_GROUP,
          version: CRD_VERSION,
          plural: CRD_PLURAL,
        })) as {
          items?: IamIdentityMapping[]
          metadata?: { resourceVersion?: string }
        }
        return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '0' }
      },
      watchPath: `/apis/${CRD_GROUP}/${CRD_VERSION}/${CRD_PLURAL}`,
      onList: (items, rv) => {
        this.#objects.clear()
        for (const o of items) if (o.metadata?.name) this.#objects.set(o.metadata.name, o)
        this.#rebuild(rv)
      },
      onEvent: (type, o) => {
        const name = o.metadata?.name
        if (name === undefined) return
        if (type === 'DELETED') this.#objects.delete(name)
        else this.#objects.set(name, o)
        this.#rebuild(o.metadata?.resourceVersion ?? this.#lastVersion)
      },
      onFailure: (err, attempt) => this.#state.watchFailed(err, attempt, this.#opts.log, 'IAMIdentityMapping'),
      onRecovered: () => this.#state.recovered(this.#opts.log),
      signal,
    })
  }

  lookup(identity: Identity): Match | undefined {
    return lookupRules(this.#rules, identity)
  }

  /** IAMIdentityMappings have no account allow-list. */
  accountRule(): string | undefined {
    return undefined
  }

  status(): SourceStatus {
    return this.#state.status(this.#rules.counts)
  }

  #rebuild(version: string): void {
    this.#lastVersion = version
    const objects = [...this.#objects.values()].sort(olderFirst)
    const roles: { name: string; entry: RoleMapping }[] = []
    const users: { name: string; entry: UserMapping }[] = []
    const statusWrites: { name: string; canonical: string }[] = []
    for (const o of objects) {
      const name = o.metadata!.name!
      const { arn, username, groups } = o.spec ?? {}
      const fields = { username: username as string, groups: (groups ?? []) as string[] }
      let type: string | undefined
      let canonical: string | undefined
      try {
        ;({ type, canonical } = canonicalizeArn(String(arn)))
      } catch {
        // reported by compileRules below
      }
      if (type === 'role' || type === 'assumed-role') roles.push({ name, entry: { rolearn: arn as string, ...fields } })
      else users.push({ name, entry: { userarn: (arn ?? '') as string, ...fields } })
      if (canonical !== undefined && o.status?.canonicalARN !== canonical.toLowerCase()) {
        statusWrites.push({ name, canonical: canonical.toLowerCase() })
      }
    }
    const { rules, problems } = compileRules(
      { mapRoles: roles.map((r) => r.entry), mapUsers: users.map((u) => u.entry), mapAccounts: [] },
      '',
      (list, i) => `IAMIdentityMapping/${(list === 'mapRoles' ? roles : users)[i]!.name}`,
    )
    this.#rules = rules
    this.#state.applied(version)
    const errors = problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) {
      this.#state.rejected(version, errors)
      this.#opts.log.error(
        { source: this.name, problems: errors.map((p) => `${p.path}: ${p.message}`) },
        'invalid IAMIdentityMapping objects are ignored',
      )
    }
    for (const w of statusWrites) void this.#writeStatus(w.name, w.canonical)
  }

  async #writeStatus(name: string, canonicalARN: string): Promise<void> {
    try {
      await this.#api!.patchClusterCustomObjectStatus(
        { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL, name, body: { status: { canonicalARN } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    } catch (err) {
      this.#opts.log.warn(
        { source: this.name, name, err: (err as Error).message },
        'could not write IAMIdentityMapping status',
      )
    }
  }
}

function olderFirst(a: IamIdentityMapping, b: IamIdentityMapping): number {
  const ta = new Date(a.metadata?.creationTimestamp ?? 0).getTime()
  const tb = new Date(b.metadata?.creationTimestamp ?? 0).getTime()
  return ta - tb || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')
}
