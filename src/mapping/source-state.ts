import type { Logger } from '../shared/logger.js'
import type { Metrics } from '../shared/metrics.js'
import type { Problem } from '../shared/problem.js'
import type { BackendMode, SourceStatus } from './types.js'

/**
 * The health of a live mapping source, kept in one place so /status, the metrics and the logs
 * always agree: which version is in force, when it was applied, and the last thing that went wrong.
 */
export class SourceState {
  readonly #name: BackendMode
  readonly #metrics: Metrics
  #version: string | undefined
  #lastSuccess: Date | undefined
  #lastError: string | undefined
  #lastErrorTime: Date | undefined
  /** True while the source cannot be read (API server away): the mapping in force may be stale. */
  #failing = false
  /** The latest update, while it was rejected and no valid one came after it. */
  #rejected: SourceStatus['rejected']

  constructor(name: BackendMode, metrics: Metrics) {
    this.#name = name
    this.#metrics = metrics
    metrics.sourceSynced.set({ source: name }, 0)
  }

  get version(): string | undefined {
    return this.#version
  }

  /** The rejected latest update, while no valid one came after it. */
  get rejectedUpdate(): SourceStatus['rejected'] {
    return this.#rejected
  }

  applied(version: string): void {
    this.#version = version
    this.#failing = false
    this.#lastSuccess = new Date()
    this.#lastError = undefined
    this.#lastErrorTime = undefined
    this.#rejected = undefined
    this.#metrics.sourceReloads.inc({ source: this.#name, result: 'applied' })
    this.#metrics.sourceSynced.set({ source: this.#name }, 1)
    this.#metrics.sourceRejectedUpdate.set({ source: this.#name }, 0)
    this.#metrics.sourceLastSuccess.set({ source: this.#name }, this.#lastSuccess.getTime() / 1000)
  }

  /** The source answers again after failures. */
  recovered(log?: Logger): void {
    if (!this.#failing) return
    this.#failing = false
    log?.info({ source: this.#name }, 'mapping source reachable again')
  }

  /** An update that was not applied; the version in force does not change, and the source is unhealthy. */
  rejected(version: string, problems: readonly Problem[], opts: { count?: boolean } = {}): void {
    this.#lastError = `version ${version} rejected: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`
    this.#lastErrorTime = new Date()
    const first = problems[0]
    this.#rejected = { version, path: first?.path ?? '', message: first?.message ?? '', problems: problems.length }
    // a source that re-evaluates an update it already rejected (CRD) counts it once
    if (opts.count ?? true) this.#metrics.sourceReloads.inc({ source: this.#name, result: 'rejected' })
    this.#metrics.sourceRejectedUpdate.set({ source: this.#name }, 1)
  }

  /** A failed read or watch; logged as an error once it keeps failing. */
  watchFailed(err: Error, attempt = 1, log?: Logger, what?: string): void {
    this.#failing = true
    this.#lastError = err.message
    this.#lastErrorTime = new Date()
    log?.[attempt > 3 ? 'error' : 'warn'](
      { source: this.#name, attempt, err: err.message },
      `${what ?? this.#name} watch failed; retrying with backoff`,
    )
  }

  status(counts: SourceStatus['counts']): SourceStatus {
    return {
      name: this.#name,
      synced: this.#version !== undefined,
      healthy: !this.#failing && this.#rejected === undefined,
      version: this.#version,
      lastSuccess: this.#lastSuccess?.toISOString(),
      lastError: this.#lastError,
      lastErrorTime: this.#lastErrorTime?.toISOString(),
      rejected: this.#rejected,
      counts,
    }
  }
}
