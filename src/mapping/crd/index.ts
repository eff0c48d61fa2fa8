import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
import { followCollection } from '../kube/list-watch.js'
import type { Problem } from '../../shared/problem.js'
import { createEventRecorder, type EventRecorder } from '../kube/events.js'
import type { PatternRule } from '../pattern-rules.js'
import { EMPTY_RULES, lookupRules, type RuleSet } from '../rules.js'
import { SourceState } from '../source-state.js'
import type { Identity, Mapper, Match, SourceStatus } from '../types.js'
import { canonicalOf, compileObjects, objectErrors, olderFirst, type IamIdentityMapping } from './parse.js'

export type { IamIdentityMapping }

export const CRD_GROUP = 'iamauthenticator.k8s.aws'
export const CRD_VERSION = 'v1alpha1'
export const CRD_PLURAL = 'iamidentitymappings'

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
 * still written, as upstream does. Older objects win ties, deterministically: of two objects for
 * one ARN the older maps, and a newer object whose `spec.arnPattern` ties with an older one's (see
 * pattern-rules.ts) is rejected as an invalid edit is, with the Event naming the older object.
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
    // Role patterns in force so far: older objects come first and win ties (a newer object whose
    // pattern ties with one of them is rejected like an invalid edit).
    const admitted: PatternRule[] = []
    const admit = (o: IamIdentityMapping, pattern: PatternRule | undefined) => {
      inForce.push(o)
      if (pattern !== undefined) admitted.push(pattern)
    }
    const rejected: Problem[] = []
    let fresh = false
    for (const o of [...this.#objects.values()].sort(olderFirst)) {
      const name = o.metadata!.name!
      const { errors, pattern } = objectErrors(o, admitted)
      if (errors.length === 0) {
        this.#lastGood.set(name, o)
        admit(o, pattern)
        continue
      }
      const previous = this.#lastGood.get(name)
      const sameObject = previous !== undefined && previous.metadata?.uid === o.metadata?.uid
      const before = sameObject ? objectErrors(previous, admitted) : undefined
      const kept = before !== undefined && before.errors.length === 0 ? previous : undefined
      if (kept !== undefined) admit(kept, before?.pattern)
      rejected.push(...errors)
      fresh = this.#reportInvalid(o, errors, kept) || fresh
    }
    const { rules, problems } = compileObjects(inForce)
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
