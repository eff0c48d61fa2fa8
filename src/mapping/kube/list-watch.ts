import { Watch, type KubeConfig } from '@kubernetes/client-node'
import { describeKubeFailure } from './errors.js'

/** The part of a Kubernetes object the watcher needs. */
export interface KubeObject {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string; readonly namespace?: string }
}

export interface ListResult<T> {
  readonly items: readonly T[]
  readonly resourceVersion: string
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface ListWatchOptions<T extends KubeObject> {
  readonly kubeConfig: KubeConfig
  /** A full list; its resourceVersion is where the watch starts. */
  readonly list: () => Promise<ListResult<T>>
  /** The collection path to watch, e.g. /api/v1/namespaces/kube-system/configmaps */
  readonly watchPath: string
  readonly fieldSelector?: string | undefined
  /** Called with every object after each (re-)list: the source replaces its whole state. */
  readonly onList: (items: readonly T[], resourceVersion: string) => void
  /** Called for each change event after the list. */
  readonly onEvent: (type: WatchEventType, object: T) => void
  /** Called when a list or watch fails; `attempt` counts consecutive failures. */
  readonly onFailure: (err: Error, attempt: number) => void
  /** Called when the API server answers again after failures (a list, or any watch event). */
  readonly onRecovered?: () => void
  readonly signal: AbortSignal
  /** Re-watch if nothing (not even a bookmark) arrives for this long. Default 5 minutes. */
  readonly idleTimeoutMs?: number
  /** Asks the API server to end each watch after this long (it is then resumed). Default 5-10 min. */
  readonly watchTimeoutSeconds?: number
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number }
  /** Resolves with the first list (or its failure). */
  readonly onFirstSync?: (err?: Error) => void
}

class Gone extends Error {}

/**
 * Keeps a local view of a Kubernetes collection: list, then watch from the list's resourceVersion;
 * on 410 Gone (history compacted) list again; on any other failure (dropped connection, API server
 * down, HTTP error) wait with exponential backoff and jitter and resume the watch from the last
 * resourceVersion seen, so no update is lost. Watches end by themselves (server timeout, idle
 * watchdog) and are resumed, so a silently dead connection cannot freeze the view.
 */
export async function runListWatch<T extends KubeObject>(opts: ListWatchOptions<T>): Promise<void> {
  const backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000 }
  const idleTimeoutMs = opts.idleTimeoutMs ?? 5 * 60_000
  const watch = new Watch(opts.kubeConfig)
  let resourceVersion: string | undefined
  let failures = 0
  let firstSync = true

  while (!opts.signal.aborted) {
    try {
      if (resourceVersion === undefined) {
        const listed = await opts.list()
        resourceVersion = listed.resourceVersion
        opts.onList(listed.items, listed.resourceVersion)
        if (failures > 0) opts.onRecovered?.()
        if (firstSync) {
          firstSync = false
          opts.onFirstSync?.()
        }
      }
      const started = Date.now()
      const recovering = failures > 0
      const onFirstEvent = recovering ? () => opts.onRecovered?.() : undefined
      const { lastResourceVersion, eventsSeen } = await watchOnce(
        watch,
        resourceVersion,
        opts,
        idleTimeoutMs,
        onFirstEvent,
      )
      resourceVersion = lastResourceVersion
      if (eventsSeen) failures = 0
      // A watch that ends at once with nothing to say must not turn into a tight reconnect loop.
      else if (Date.now() - started < 1000) await sleep(backoff.initialMs, opts.signal)
    } catch (err) {
      if (opts.signal.aborted) break
      if (err instanceof Gone) {
        // History was compacted past our resourceVersion: only a fresh list is complete.
        resourceVersion = undefined
        continue
      }
      failures++
      // One line naming the API server and why, whatever failed (connection, TLS, HTTP status, exec plugin).
      const e = new Error(describeKubeFailure(err, opts.kubeConfig), { cause: err })
      opts.onFailure(e, failures)
      if (firstSync) {
        firstSync = false
        opts.onFirstSync?.(e)
      }
      const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(failures - 1, 16))
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2), opts.signal)
    }
  }
}

/** One watch request; resolves with the last resourceVersion when the stream ends cleanly. */
function watchOnce<T extends KubeObject>(
  watch: Watch,
  fromVersion: string,
  opts: ListWatchOptions<T>,
  idleTimeoutMs: number,
  onFirstEvent?: () => void,
): Promise<{ lastResourceVersion: string; eventsSeen: boolean }> {
  return new Promise((resolve, reject) => {
    let rv = fromVersion
    let eventsSeen = false
    let settled = false
    let controller: AbortController | undefined
    let idle: NodeJS.Timeout | undefined
    const finish = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(idle)
      opts.signal.removeEventListener('abort', onAbort)
      controller?.abort()
      if (err) reject(err)
      else resolve({ lastResourceVersion: rv, eventsSeen })
    }
    const armIdle = () => {
      clearTimeout(idle)
      idle = setTimeout(() => finish(new Error(`watch ${opts.watchPath} idle for ${idleTimeoutMs} ms`)), idleTimeoutMs)
      idle.unref()
    }
    const onAbort = () => finish()
    opts.signal.addEventListener('abort', onAbort)
    armIdle()
    const timeoutSeconds = opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300)
    watch
      .watch(
        opts.watchPath,
        {
          resourceVersion: fromVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          ...(opts.fieldSelector === undefined ? {} : { fieldSelector: opts.fieldSelector }),
        },
        (type: string, object: T & { code?: number; message?: string; reason?: string }) => {
          armIdle()
          if (!eventsSeen && type !== 'ERROR') onFirstEvent?.()
          if (type === 'ERROR') {
            if (object?.code === 410 || object?.reason === 'Expired' || object?.reason === 'Gone') {
              finish(new Gone(object.message ?? 'resource version too old'))
            } else {
              finish(new Error(`watch error: ${object?.message ?? JSON.stringify(object)}`))
            }
            return
          }
          const version = object?.metadata?.resourceVersion
          if (version !== undefined) rv = version
          eventsSeen = true
          if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') opts.onEvent(type, object)
        },
        (err: unknown) => {
          if (err === null || err === undefined) return finish()
          if ((err as { statusCode?: number }).statusCode === 410) return finish(new Gone('resource version too old'))
          finish(err instanceof Error ? err : new Error(String(err)))
        },
      )
      .then(
        (c) => {
          controller = c
          if (settled) c.abort()
        },
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      )
  })
}

/** Starts runListWatch in the background; resolves once the first list has succeeded or failed. */
export function followCollection<T extends KubeObject>(opts: Omit<ListWatchOptions<T>, 'onFirstSync'>): Promise<void> {
  return new Promise((resolve) => void runListWatch({ ...opts, onFirstSync: () => resolve() }))
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
