import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import type { Logger } from '../../shared/logger.js'
import type { Metrics } from '../../shared/metrics.js'
import { SourceState } from '../source-state.js'
import type { Identity, Mapper, Match, SourceStatus } from '../types.js'
import { EMPTY_DYNAMIC, parseDynamicFile, type DynamicRules } from './parse.js'

export interface DynamicFileMapperOptions {
  readonly path: string
  readonly userIdStrict: boolean
  readonly log: Logger
  readonly metrics: Metrics
  readonly now: () => number
  readonly reservedPrefixes?: readonly string[]
  /** Fallback poll, for file systems whose change events are unreliable. Default 1 s. */
  readonly pollIntervalMs?: number
}

/**
 * DynamicFile: a JSON mapping file followed live. Writes, rename-over (atomic replace), delete and
 * re-create are all seen: the directory is watched (the file's inode changes on rename-over) and
 * polled as a fallback. A file that fails to parse or validate is not applied; a deleted file clears
 * the mapping, as upstream does.
 */
export class DynamicFileMapper implements Mapper {
  readonly name = 'DynamicFile' as const
  readonly reservedPrefixes: readonly string[]
  readonly #opts: DynamicFileMapperOptions
  readonly #state: SourceState
  #rules: DynamicRules = EMPTY_DYNAMIC
  #digest: string | undefined
  #reloading: Promise<void> | undefined
  #again = false
  #loads = 0

  constructor(opts: DynamicFileMapperOptions) {
    this.#opts = opts
    this.reservedPrefixes = opts.reservedPrefixes ?? []
    this.#state = new SourceState(this.name, opts.metrics)
  }

  async start(signal: AbortSignal): Promise<void> {
    let watcher: FSWatcher | undefined
    const file = basename(this.#opts.path)
    try {
      watcher = watch(dirname(this.#opts.path), { persistent: false }, (_event, name) => {
        if (name === null || name === file || name.startsWith('..')) this.#schedule()
      })
      watcher.on('error', () => undefined)
    } catch (err) {
      this.#opts.log.warn(
        { source: this.name, err: (err as Error).message },
        'cannot watch the DynamicFile directory; polling only',
      )
    }
    const poll = setInterval(() => this.#schedule(), this.#opts.pollIntervalMs ?? 1000)
    poll.unref()
    signal.addEventListener('abort', () => {
      clearInterval(poll)
      watcher?.close()
    })
    await this.#schedule()
  }

  lookup(identity: Identity): Match | undefined {
    return this.#rules.lookup(identity)
  }

  accountRule(accountId: string): string | undefined {
    return this.#rules.accounts.get(accountId)
  }

  status(): SourceStatus {
    return this.#state.status(this.#rules.counts)
  }

  /** Coalesces bursts of events into one reload at a time, plus one more if events came meanwhile. */
  #schedule(): Promise<void> {
    if (this.#reloading !== undefined) {
      this.#again = true
      return this.#reloading
    }
    this.#reloading = (async () => {
      do {
        this.#again = false
        await this.#reload()
      } while (this.#again)
    })().finally(() => (this.#reloading = undefined))
    return this.#reloading
  }

  async #reload(): Promise<void> {
    let text: string
    try {
      text = await readFile(this.#opts.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.#missing()
      // Polled every second: count and log a read error once, not once per poll.
      if (this.#digest !== `error:${(err as Error).message}`) {
        this.#digest = `error:${(err as Error).message}`
        this.#opts.metrics.dynamicFileFailures.inc()
        this.#state.watchFailed(err as Error, 1, this.#opts.log, 'DynamicFile')
      }
      return
    }
    const digest = createHash('sha256').update(text).digest('hex')
    if (digest === this.#digest) return
    this.#digest = digest
    const version = `sha256:${digest.slice(0, 12)}`
    const { rules, problems, partial } = parseDynamicFile(text, { userIdStrict: this.#opts.userIdStrict })
    if (rules === undefined) {
      const errors = problems.filter((p) => p.severity === 'error')
      // Nothing in force yet (start-up, or the file was missing): the valid entries apply rather than
      // none, which would lock out everyone the file maps. The invalid ones never apply.
      const inForce = this.#state.version
      const takePartial = partial !== undefined && (inForce === undefined || inForce === 'missing')
      if (takePartial) {
        this.#rules = partial
        this.#state.applied(version)
      }
      this.#opts.metrics.dynamicFileFailures.inc()
      this.#state.rejected(version, errors)
      this.#opts.log.error(
        { source: this.name, file: this.#opts.path, problems: errors.map((p) => `${p.path}: ${p.message}`) },
        takePartial
          ? 'DynamicFile has invalid entries: they are ignored; its valid entries apply, as nothing else was in force'
          : 'DynamicFile update rejected; the previous mapping stays in force',
      )
      return
    }
    for (const w of problems) this.#opts.log.warn({ source: this.name, path: w.path }, w.message)
    this.#rules = rules
    this.#state.applied(version)
    if (this.#loads++ > 0 && rules.lastUpdated !== undefined) {
      const lag = this.#opts.now() / 1000 - rules.lastUpdated
      if (lag >= 0) this.#opts.metrics.dynamicE2eLatency.observe({ type: 'dynamic_file' }, lag)
    }
    this.#opts.log.info(
      { source: this.name, file: this.#opts.path, version, ...rules.counts },
      'DynamicFile mapping applied',
    )
  }

  async #missing(): Promise<void> {
    // A rename-over can look like a delete for an instant: look once more before clearing.
    await new Promise((r) => setTimeout(r, 20))
    if (
      await stat(this.#opts.path).then(
        () => true,
        () => false,
      )
    )
      return this.#reload()
    if (this.#digest === 'missing') return
    const hadRules = this.#rules !== EMPTY_DYNAMIC
    this.#digest = 'missing'
    this.#rules = EMPTY_DYNAMIC
    this.#state.applied('missing')
    this.#opts.log[hadRules ? 'error' : 'warn'](
      { source: this.name, file: this.#opts.path },
      'DynamicFile is missing: its mappings are cleared (as aws-iam-authenticator does)',
    )
  }
}
