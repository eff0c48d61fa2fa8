import { pino, type Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const

/**
 * Structured JSON logs on stdout. What each level may hold: `info` one audit line per decision and
 * lifecycle events; `warn` rejected config/mapping updates and degraded dependencies; `error`
 * failures needing an operator. Tokens, presigned URLs and credentials are never logged at any level.
 * Writes are buffered (asynchronous) so logging keeps up with thousands of reviews per second.
 */
export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream | number } = {}): Logger {
  const level = normalizeLevel(opts.level ?? 'info')
  let destination: NodeJS.WritableStream | pino.DestinationStream
  if (typeof opts.destination === 'object') {
    destination = opts.destination
  } else {
    const buffered = pino.destination({ dest: opts.destination ?? 1, sync: false, minLength: 4096 })
    // Buffered for throughput, but a quiet server's lines (start-up, the odd denial) must not wait
    // for 4 KiB of company: flush at least every second.
    setInterval(() => {
      try {
        buffered.flush()
      } catch {
        // not open yet, or closing
      }
    }, 1000).unref()
    destination = buffered
  }
  return pino(
    {
      level,
      base: { service: 'kube-iam-auth' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream,
  )
}

/** Accepts upstream's logrus level names too (`warning`, `panic`). */
export function normalizeLevel(level: string): string {
  const l = level.toLowerCase()
  if (l === 'warning') return 'warn'
  if (l === 'panic') return 'fatal'
  if (!(LOG_LEVELS as readonly string[]).includes(l)) {
    throw new TypeError(`Invalid log level "${level}". Valid values are: ${LOG_LEVELS.join(', ')}`)
  }
  return l
}
