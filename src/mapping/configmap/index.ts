import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
import { createEventRecorder, type EventRecorder, type InvolvedObject } from '../kube/events.js'
import { followCollection } from '../kube/list-watch.js'
import { EMPTY_RULES, lookupRules, type RuleSet } from '../rules.js'
import { SourceState } from '../source-state.js'
import type { Identity, Mapper, Match, SourceStatus } from '../types.js'
import { parseAwsAuthData } from './parse.js'

export const AWS_AUTH_NAMESPACE = 'kube-system'
export const AWS_AUTH_NAME = 'aws-auth'

export interface ConfigMapMapperOptions {
  readonly kubeConfig: KubeConfig
  readonly log: Logger
  readonly metrics: Metrics
  readonly reservedPrefixes?: readonly string[]
  readonly namespace?: string
  readonly name?: string
  /** Where rejected edits are reported as Kubernetes Events (default: Events through kubeConfig). */
  readonly events?: EventRecorder
}

/**
 * EKSConfigMap: follows kube-system/aws-auth live. An edit with any invalid entry is not applied:
 * the previous mapping stays in force (when none is, at start-up or after a delete, only the valid
 * entries apply: refusing them all would lock everyone out). The rejection is loud: an error log
 * line, a metric, `healthy: false` with the first problem on /status until a valid edit arrives,
 * and a Warning Event on the ConfigMap, so `kubectl describe configmap -n kube-system aws-auth`
 * says why the edit did not apply and which version is in force. A deleted ConfigMap clears the
 * mapping, as upstream does, and is logged as an error.
 */
export class ConfigMapMapper implements Mapper {
  readonly name = 'EKSConfigMap' as const
  readonly reservedPrefixes: readonly string[]
  readonly #opts: ConfigMapMapperOptions
  readonly #state: SourceState
  readonly #events: EventRecorder
  #rules: RuleSet = EMPTY_RULES

  constructor(opts: ConfigMapMapperOptions) {
    this.#opts = opts
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#state = new SourceState(this.name, opts.metrics)
    this.#events = opts.events ?? createEventRecorder({ kubeConfig: opts.kubeConfig, log: opts.log })
  }

  start(signal: AbortSignal): Promise<void> {
    const namespace = this.#opts.namespace ?? AWS_AUTH_NAMESPACE
    const name = this.#opts.name ?? AWS_AUTH_NAME
    const api = this.#opts.kubeConfig.makeApiClient(CoreV1Api)
    const fieldSelector = `metadata.name=${name}`
    return followCollection<V1ConfigMap>({
      kubeConfig: this.#opts.kubeConfig,
      list: async () => {
        const list = await api.listNamespacedConfigMap({ namespace, fieldSelector })
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '0' }
      },
      watchPath: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
      fieldSelector,
      // The field selector does the filtering on the server; the name is checked again here.
      onList: (items) => {
        const cm = items.find((i) => i.metadata?.name === name)
        if (cm === undefined) this.#deleted(`${namespace}/${name} does not exist`)
        else this.#apply(cm)
      },
      onEvent: (type, cm) => {
        if (cm.metadata?.name !== name) return
        if (type === 'DELETED') this.#deleted(`${namespace}/${name} was deleted`)
        else this.#apply(cm)
      },
      onFailure: (err, attempt) => {
        this.#opts.metrics.configMapWatchFailures.inc()
        this.#state.watchFailed(err, attempt, this.#opts.log, 'aws-auth')
      },
      onRecovered: () => this.#state.recovered(this.#opts.log),
      signal,
    })
  }

  lookup(identity: Identity): Match | undefined {
    return lookupRules(this.#rules, identity)
  }

  accountRule(accountId: string): string | undefined {
    return this.#rules.accounts.get(accountId)
  }

  status(): SourceStatus {
    return this.#state.status(this.#rules.counts)
  }

  #apply(cm: V1ConfigMap): void {
    const version = cm.metadata?.resourceVersion ?? '?'
    // a relist brings the same version again: it was applied or reported already
    if (version === this.#state.version || version === this.#state.rejectedUpdate?.version) return
    const object: InvolvedObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: cm.metadata?.name ?? AWS_AUTH_NAME,
      namespace: cm.metadata?.namespace ?? AWS_AUTH_NAMESPACE,
      uid: cm.metadata?.uid,
      resourceVersion: version,
    }
    const parsed = parseAwsAuthData(cm.data)
    const errors = parsed.problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) {
      const inForce = this.#state.version
      // Nothing in force yet (the server just started, or aws-auth was deleted): refusing the whole
      // version would lock out everyone it maps, so its valid entries apply; the invalid ones never do.
      const partial = inForce === undefined || inForce === 'deleted'
      if (partial) {
        this.#rules = parsed.rules
        this.#state.applied(version)
      }
      this.#state.rejected(version, errors)
      this.#opts.log.error(
        {
          source: this.name,
          resourceVersion: version,
          inForce: partial ? version : inForce,
          problems: errors.map((p) => `${p.path}: ${p.message}`),
        },
        partial
          ? 'aws-auth has invalid entries: they are ignored; its valid entries apply, as nothing else was in force'
          : 'aws-auth edit rejected: it has invalid entries; the previous mapping stays in force',
      )
      const first = errors[0]!
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? 's' : ''})` : ''
      this.#events.record(
        object,
        'Warning',
        'InvalidMapping',
        (partial
          ? `version ${version} of aws-auth has invalid entries, which are ignored: ${first.path}: ${first.message}${more}. ` +
            'No earlier version was in force, so its valid entries apply.'
          : `version ${version} of aws-auth was not applied: ${first.path}: ${first.message}${more}. ` +
            `The mapping of version ${inForce} stays in force.`) +
          ' Check an edit with: kube-iam-auth validate --aws-auth FILE',
      )
      return
    }
    const wasRejected = this.#state.rejectedUpdate
    for (const w of parsed.problems) this.#opts.log.warn({ source: this.name, path: w.path }, w.message)
    this.#rules = parsed.rules
    this.#state.applied(version)
    if (wasRejected !== undefined) {
      this.#events.record(
        object,
        'Normal',
        'MappingApplied',
        `version ${version} of aws-auth is applied (the rejected version ${wasRejected.version} is superseded)`,
      )
    }
    this.#opts.log.info(
      { source: this.name, resourceVersion: version, ...parsed.rules.counts },
      'aws-auth mapping applied',
    )
  }

  #deleted(why: string): void {
    const hadRules = this.#rules !== EMPTY_RULES
    this.#rules = EMPTY_RULES
    this.#state.applied('deleted')
    this.#opts.log[hadRules ? 'error' : 'warn'](
      { source: this.name },
      `${why}: every aws-auth mapping is cleared (as aws-iam-authenticator does); only other backends map identities now`,
    )
  }
}
