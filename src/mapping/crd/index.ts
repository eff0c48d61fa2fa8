import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
import { canonicalizeArn } from '../../sts/arn.js'
import { followCollection } from '../kube/list-watch.js'
import type { Problem } from '../../shared/problem.js'
import { createEventRecorder, type EventRecorder } from '../kube/events.js'
import { compileRules, EMPTY_RULES, lookupRules, type RuleSet } from '../rules.js'
import { SourceState } from '../source-state.js'
import type { Identity, Mapper, Match, RoleMapping, SourceStatus, UserMapping } from '../types.js'

export const CRD_GROUP = 'iamauthenticator.k8s.aws'
export const CRD_VERSION = 'v1alpha1'
export const CRD_PLURAL = 'iamidentitymappings'

export interface IamIdentityMapping {
  metadata?: { name?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date }
  spec?: { arn?: unknown; username?: unknown; groups?: unknown }
  status?: { canonicalARN?: string; userID?: string }
}

export interface CrdMapperOptions {
  readonly kubeConfig: KubeConfig
  readonly log: Logger
  readonly metrics: Metrics
  readonly reservedPrefixes?: readonly string[]
  /** Where rejected objects are reported as Kubernetes Events (default: Events through kubeConfig). */
  readonly events?: EventRecorder
}

/**
 * CRD: cluster-scoped IAMIdentityMapping objects, followed live. Each object stands alone: the
 * others apply whatever one holds. An edit that makes an object invalid is not applied: that
 * object's last valid version stays in force (an object never valid is ignored), /status says
 * `healthy: false` with the problem until it is fixed, an error is logged and counted, and a
 * Warning Event on the object says why (`kubectl describe iamidentitymapping NAME`). Objects map as
 * soon as they are seen (upstream waits for its controller to write status); status.canonicalARN is
 * still written, as upstream does. Older objects win ties, deterministically.
 */
export class CrdMapper implements Mapper {
  readonly name = 'CRD' as const
  readonly reservedPrefixes: readonly string[]
  readonly #opts: CrdMapperOptions
  readonly #state: SourceState
  readonly #events: EventRecorder
  readonly #objects = new Map<string, IamIdentityMapping>()
  /** The last valid version of each object, by name. */
  readonly #lastGood = new Map<string, IamIdentityMapping>()
  /** `name@resourceVersion` of the invalid versions already reported. */
  readonly #reported = new Set<string>()
  #rules: RuleSet = EMPTY_RULES
  #api: CustomObjectsApi | undefined
  #lastVersion = '0'

  constructor(opts: CrdMapperOptions) {
    this.#opts = opts
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#state = new SourceState(this.name, opts.metrics)
    this.#events = opts.events ?? createEventRecorder({ kubeConfig: opts.kubeConfig, log: opts.log })
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
        for (const name of this.#lastGood.keys()) if (!this.#objects.has(name)) this.#lastGood.delete(name)
        this.#rebuild(rv)
      },
      onEvent: (type, o) => {
        const name = o.metadata?.name
        if (name === undefined) return
        if (type === 'DELETED') {
          this.#objects.delete(name)
          this.#lastGood.delete(name)
        } else this.#objects.set(name, o)
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
    const inForce: IamIdentityMapping[] = []
    const rejected: Problem[] = []
    let fresh = false
    for (const o of this.#objects.values()) {
      const name = o.metadata!.name!
      const errors = compileObjects([o]).problems.filter((p) => p.severity === 'error')
      if (errors.length === 0) {
        this.#lastGood.set(name, o)
        inForce.push(o)
        continue
      }
      const previous = this.#lastGood.get(name)
      const kept = previous !== undefined && previous.metadata?.uid === o.metadata?.uid ? previous : undefined
      if (kept !== undefined) inForce.push(kept)
      rejected.push(...errors)
      fresh = this.#reportInvalid(o, errors, kept) || fresh
    }
    const { rules, problems } = compileObjects(inForce.sort(olderFirst))
    this.#rules = rules
    this.#state.applied(version)
    for (const w of problems) this.#opts.log.warn({ source: this.name, path: w.path }, w.message)
    if (rejected.length > 0) this.#state.rejected(version, rejected, { count: fresh })
    for (const o of inForce) {
      const canonical = canonicalOf(o.spec?.arn)
      if (canonical !== undefined && o.status?.canonicalARN !== canonical)
        void this.#writeStatus(o.metadata!.name!, canonical)
    }
  }

  /** One error log line, one rejected-update count and one Warning Event per invalid version of an object. */
  #reportInvalid(o: IamIdentityMapping, errors: readonly Problem[], kept: IamIdentityMapping | undefined): boolean {
    const name = o.metadata!.name!
    const version = o.metadata?.resourceVersion ?? '?'
    if (this.#reported.has(`${name}@${version}`)) return false
    if (this.#reported.size > 10_000) this.#reported.clear()
    this.#reported.add(`${name}@${version}`)
    const inForce =
      kept === undefined
        ? 'it maps nothing until it is fixed'
        : `its version ${kept.metadata?.resourceVersion} stays in force`
    this.#opts.log.error(
      {
        source: this.name,
        object: name,
        resourceVersion: version,
        problems: errors.map((p) => `${p.path}: ${p.message}`),
      },
      `IAMIdentityMapping ${name} edit rejected: ${inForce}`,
    )
    this.#events.record(
      {
        apiVersion: `${CRD_GROUP}/${CRD_VERSION}`,
        kind: 'IAMIdentityMapping',
        name,
        uid: o.metadata?.uid,
        resourceVersion: version,
      },
      'Warning',
      'InvalidMapping',
      `version ${version} of IAMIdentityMapping ${name} was not applied: ${errors[0]!.path}: ${errors[0]!.message}. ` +
        `${inForce[0]!.toUpperCase()}${inForce.slice(1)}.`,
    )
    return true
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

/** Compiles objects as mapRoles/mapUsers entries, problems named by object and spec field. */
function compileObjects(objects: readonly IamIdentityMapping[]): { rules: RuleSet; problems: Problem[] } {
  const roles: { name: string; entry: RoleMapping }[] = []
  const users: { name: string; entry: UserMapping }[] = []
  for (const o of objects) {
    const name = o.metadata!.name!
    const { arn, username, groups } = o.spec ?? {}
    const fields = { username: username as string, groups: (groups ?? []) as string[] }
    let type: string | undefined
    try {
      type = canonicalizeArn(String(arn)).type
    } catch {
      // reported by compileRules
    }
    if (type === 'role' || type === 'assumed-role') roles.push({ name, entry: { rolearn: arn as string, ...fields } })
    else users.push({ name, entry: { userarn: (arn ?? '') as string, ...fields } })
  }
  const { rules, problems } = compileRules(
    { mapRoles: roles.map((r) => r.entry), mapUsers: users.map((u) => u.entry), mapAccounts: [] },
    '',
    (list, i) => `IAMIdentityMapping/${(list === 'mapRoles' ? roles : users)[i]!.name}`,
  )
  // The fields as they are written in the object.
  const spec = (path: string) =>
    path.replace(/\.(rolearn|userarn)\b/, '.spec.arn').replace(/\.(username|groups)\b/, '.spec.$1')
  return { rules, problems: problems.map((p) => ({ ...p, path: spec(p.path) })) }
}

function canonicalOf(arn: unknown): string | undefined {
  try {
    return canonicalizeArn(String(arn)).canonical.toLowerCase()
  } catch {
    return undefined
  }
}
