import express, { type NextFunction, type Request, type Response } from 'express'
import { isKiaError } from '../shared/errors.js'
import type { SourceStatus } from '../mapping/types.js'
import type { Decision } from './authenticator.js'
import type { AuditThrottle } from './audit-throttle.js'
import type { Logger } from '../shared/logger.js'
import type { Metrics } from '../shared/metrics.js'
import { outcomeOf, reasonOf, type ResultLabel } from './outcome.js'
import {
  allowedReview,
  deniedReview,
  failedReview,
  MalformedReview,
  parseTokenReview,
  type TokenReviewVersion,
} from './token-review.js'

export interface AppDeps {
  /** `caller` identifies who asked (caller token subject, or remote address), for per-caller limits. */
  readonly authenticate: (token: string, caller: string) => Promise<Decision>
  readonly metrics: Metrics
  readonly log: Logger
  readonly now: () => number
  readonly maxRequestBytes: number
  readonly sources: () => readonly SourceStatus[]
  /**
   * Runs before /authenticate reads the body. Returns the caller's identity, or undefined after
   * answering the request itself (401 for a missing or invalid caller token).
   */
  readonly guard?: ((req: Request, res: Response) => Promise<string | undefined>) | undefined
  /** Write one audit line per decision (default true). */
  readonly audit?: boolean
  /** Summarises repeated denial and failure lines (a flood of junk must not flood the logs). */
  readonly auditThrottle?: AuditThrottle | undefined
  /** True once shutting down: /healthz answers 503 so load balancers stop sending work. */
  readonly draining?: () => boolean
}

/** The HTTP surface: /authenticate, /healthz, /status, /metrics. Never listens; see server/run.ts. */
export function createApp(deps: AppDeps): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  app.set('query parser', false)

  app.all('/authenticate', async function authenticateRoute(req, res, next) {
    const started = process.hrtime.bigint()
    const observe = (result: ResultLabel) =>
      deps.metrics.authenticateLatency.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9)
    const malformed = (status: number, message: string) => {
      observe('malformed_request')
      deps.metrics.reviews.inc({ decision: 'malformed', reason: String(status) })
      if (deps.auditThrottle?.admit({ decision: 'malformed', reason: String(status), level: 'info' }) ?? true) {
        deps.log.info({ status, reason: message }, 'malformed TokenReview request')
      }
      res.status(status).type('text/plain').send(`${message}\n`)
    }
    if (req.method !== 'POST') return malformed(405, 'expected POST')
    const caller = deps.guard === undefined ? (req.socket.remoteAddress ?? 'unknown') : await deps.guard(req, res)
    if (caller === undefined) return observe('malformed_request')
    const contentType = req.headers['content-type']
    if (contentType !== undefined && !/^application\/json\s*(;|$)/i.test(contentType)) {
      return malformed(415, 'expected Content-Type: application/json')
    }
    const read = await readBody(req, deps.maxRequestBytes)
    if ('status' in read) {
      if (read.status === 413) {
        // The rest of the body is never read: say so, and close instead of draining it.
        res.set('Connection', 'close')
        return malformed(413, `request body larger than ${deps.maxRequestBytes} bytes`)
      }
      return malformed(
        read.status,
        read.status === 415 ? 'expected an uncompressed request body (no Content-Encoding)' : 'expected a request body',
      )
    }
    if (read.body.length === 0) return malformed(400, 'expected a request body')
    let review
    try {
      review = parseTokenReview(read.body.toString('utf8'))
    } catch (e) {
      if (e instanceof MalformedReview) return malformed(400, e.message)
      return next(e)
    }
    try {
      const decision = await deps.authenticate(review.token, caller)
      respond(review.apiVersion, decision, res, deps, observe, started)
    } catch (e) {
      next(e)
    }
  })

  app.get('/healthz', function healthz(_req, res) {
    if (deps.draining?.()) res.status(503).type('text/plain').send('shutting down\n')
    else res.type('text/plain').send('ok')
  })

  app.get('/status', function status(_req, res) {
    const sources = deps.sources()
    res.status(sources.every((s) => s.synced) ? 200 : 503).json({ sources })
  })

  app.get('/metrics', async function metrics(_req, res, next) {
    try {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics())
    } catch (err) {
      next(err)
    }
  })

  app.use(function notFound(_req, res) {
    res.status(404).type('text/plain').send('404 page not found\n')
  })

  app.use(function internalError(err: unknown, _req: Request, res: Response, _next: NextFunction) {
    // Not under `err`: pino's error serializer would replace `type` with "Object" and add an empty stack.
    deps.log.error({ error: (err as Error)?.message, errorType: (err as Error)?.name }, 'internal error')
    if (!res.headersSent) res.status(500).type('text/plain').send('internal error\n')
  })

  return app
}

/**
 * Reads a request body of at most `limit` bytes. When Content-Length announces more, or the bytes
 * received pass the limit, it stops reading at once and reports 413 (express.raw would first read
 * the whole oversized body to discard it, holding the connection for as long as a slow client
 * cares to send). Compressed bodies are refused (kube-apiserver never sends them).
 */
function readBody(req: Request, limit: number): Promise<{ body: Buffer } | { status: 400 | 413 | 415 }> {
  return new Promise((resolve) => {
    const encoding = req.headers['content-encoding']
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return resolve({ status: 415 })
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > limit) return resolve({ status: 413 })
    const chunks: Buffer[] = []
    let size = 0
    const finish = (result: { body: Buffer } | { status: 400 | 413 }) => {
      req.off('data', onData).off('end', onEnd).off('error', onAborted).off('close', onAborted)
      resolve(result)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) return void chunks.push(chunk)
      req.pause()
      finish({ status: 413 })
    }
    const onEnd = () => finish({ body: Buffer.concat(chunks, size) })
    // The client went away (reset, or closed before sending the whole body): nobody to answer.
    const onAborted = () => finish({ status: 400 })
    req.on('data', onData).on('end', onEnd).on('error', onAborted).on('close', onAborted)
  })
}

function respond(
  apiVersion: TokenReviewVersion,
  decision: Decision,
  res: Response,
  deps: AppDeps,
  observe: (result: ResultLabel) => void,
  started: bigint,
): void {
  const latencyMs = Number(process.hrtime.bigint() - started) / 1e6
  const { identity, scrubbed, cache } = decision
  const who =
    identity === undefined || scrubbed
      ? { accountId: scrubbed ? 'scrubbed' : undefined }
      : {
          arn: identity.arn,
          canonicalArn: identity.canonicalArn,
          accountId: identity.accountId,
          accessKeyId: identity.accessKeyId,
        }
  if (decision.allowed) {
    observe('success')
    deps.metrics.reviews.inc({ decision: 'allow', reason: decision.mapped.kind })
    if (deps.audit ?? true) {
      deps.log.info(
        {
          audit: true,
          decision: 'allow',
          username: decision.user.username,
          groups: decision.user.groups ?? [],
          ...who,
          source: decision.mapped.source,
          rule: decision.mapped.rule,
          cache,
          latencyMs: Math.round(latencyMs * 100) / 100,
        },
        'access granted',
      )
    }
    sendJson(res, 200, allowedReview(apiVersion, decision.user))
    return
  }
  const err = decision.error
  if (!isKiaError(err)) {
    observe('sts_error')
    deps.metrics.reviews.inc({ decision: 'error', reason: 'internal' })
    deps.log.error(
      { audit: true, decision: 'error', error: err.message, errorType: err.name, ...who },
      'internal error',
    )
    sendJson(res, 500, failedReview(apiVersion, 'internal error'))
    return
  }
  const outcome = outcomeOf(err)
  const reason = reasonOf(err)
  const verdict = outcome.status === 200 ? 'deny' : 'error'
  observe(outcome.metric)
  deps.metrics.reviews.inc({ decision: verdict, reason })
  const throttle = deps.auditThrottle
  if (
    (deps.audit ?? true) &&
    (throttle === undefined ||
      throttle.admit({ decision: verdict, reason, level: outcome.level, who: who.arn ?? who.accountId }))
  ) {
    deps.log[outcome.level](
      {
        audit: true,
        decision: verdict,
        status: outcome.status,
        reason,
        error: err.message,
        ...who,
        cache,
        latencyMs: Math.round(latencyMs * 100) / 100,
      },
      outcome.status === 200 ? 'access denied' : 'could not decide',
    )
  }
  sendJson(
    res,
    outcome.status,
    outcome.status === 200 ? deniedReview(apiVersion) : failedReview(apiVersion, err.message),
  )
}

/**
 * Writes a JSON answer straight to the socket. The review path runs for every API request the
 * cluster serves, and express's res.json (content negotiation, charset handling, ETag logic) was a
 * measurable share of it.
 */
function sendJson(res: Response, status: number, body: object): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}
