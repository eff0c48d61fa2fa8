import { pino, type Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const

/**
 * Structured logs on stdout: JSON lines, or with `format: 'text'` (`-l text`) the same fields as
 * `key=value` lines like upstream's default format. What each level may hold: `info` one audit
 * line per decision and lifecycle events; `warn` rejected config/mapping updates and degraded
 * dependencies; `error` failures needing an operator. Tokens, presigned URLs and credentials are never logged at any level.
 * Writes are buffered (asynchronous) so logging keeps up with thousands of reviews per second.
 */
export function createLogger(
  opts: { level?: string; destination?: NodeJS.WritableStream | number; format?: LogFormat } = {},
): Logger {
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
  const sink = destination as pino.DestinationStream
  return pino(
    {
      level,
      base: { service: 'kube-iam-auth' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.format === 'text' ? textSink(sink) : sink,
  )
}

/** Rewrites each JSON line as text on its way to `sink`; flushing still reaches the sink. */
function textSink(sink: pino.DestinationStream): pino.DestinationStream {
  const flushable = sink as pino.DestinationStream & { flush?: (cb?: (err?: Error) => void) => void }
  return {
    write: (line: string) => sink.write(textLine(line)),
    ...(flushable.flush ? { flush: (cb?: (err?: Error) => void) => flushable.flush!(cb) } : {}),
  } as pino.DestinationStream
}

export const LOG_FORMATS = ['json', 'text'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

/**
 * One JSON log line as a human-readable line in the shape of upstream's default (logrus text)
 * format: `time=... level=info msg="..." key=value ...`. Strings with spaces, quotes or `=` are
 * quoted; numbers, objects and lists are written as JSON.
 */
export function textLine(json: string): string {
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json
  }
  const { time, level, msg, service: _service, ...rest } = doc
  const fields: [string, unknown][] = [['time', time], ['level', level], ['msg', msg], ...Object.entries(rest)]
  return `${fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${textValue(v)}`)
    .join(' ')}\n`
}

function textValue(v: unknown): string {
  if (typeof v !== 'string') return JSON.stringify(v)
  return v !== '' && /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v)
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
