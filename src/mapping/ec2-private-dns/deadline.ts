import { closedError, timedOut } from './outcome.js'

/** Waits `ms`, or rejects (closed) as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(closedError())
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(closedError())
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Runs `fn` with a signal aborted after `ms` or when `lifetime` aborts, and rejects at that moment. */
export async function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  lifetime: AbortSignal,
): Promise<T> {
  if (lifetime.aborted) throw closedError()
  const controller = new AbortController()
  let onStop!: () => void
  const stopped = new Promise<never>((_, reject) => {
    onStop = () => {
      controller.abort()
      reject(lifetime.aborted ? closedError() : timedOut(ms))
    }
  })
  const timer = setTimeout(onStop, ms)
  lifetime.addEventListener('abort', onStop, { once: true })
  try {
    return await Promise.race([fn(controller.signal), stopped])
  } finally {
    clearTimeout(timer)
    lifetime.removeEventListener('abort', onStop)
  }
}
