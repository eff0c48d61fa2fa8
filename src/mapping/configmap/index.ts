import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
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
}

/**
 * EKSConfigMap: follows kube-system/aws-auth live. An edit with any invalid entry is not applied:
 * the previous mapping stays in force and the problem is logged, counted and shown on /status.
 * A deleted ConfigMap clears the mapping, as upstream does, and is logged as an error.
 */
export class ConfigMapMapper implements Mapper {
  readonly name = 'EKSConfigMap' as const
  readonly reservedPrefixes: readonly string[]
  readonly #opts: ConfigMapMapperOptions
  readonly #state: SourceState
  #rules: RuleSet = EMPTY_RULES

  constructor(opts: ConfigMapMapperOptions) {
    this.#opts = opts
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#state = new SourceState(this.name, opts.metrics)
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
    if (version === this.#state.version) return
    const parsed = parseAwsAuthData(cm.data)
    const errors = parsed.problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) {
      this.#state.rejected(version, errors)
      this.#opts.log.error(
        { source: this.name, resourceVersion: version, problems: errors.map((p) => `${p.path}: ${p.message}`) },
        'aws-auth edit rejected: it has invalid entries; the previous mapping stays in force',
      )
      return
    }
    for (const w of parsed.problems) this.#opts.log.warn({ source: this.name, path: w.path }, w.message)
    this.#rules = parsed.rules
    this.#state.applied(version)
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
