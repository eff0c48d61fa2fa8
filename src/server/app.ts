import type { IncomingMessage, ServerResponse } from 'node:http'
import { isKiaError } from '../shared/errors.js'
import type { SourceStatus } from '../mapping/types.js'
import type { Decision } from './authenticator.js'
import type { AuditThrottle } from './audit-throttle.js'
import type { Logger } from '../shared/logger.js'
import type { Metrics } from '../shared/metrics.js'
import { outcomeOf, reasonOf, type ResultLabel } from './outcome.js'
import { readBody } from './read-body.js'
import {
  allowedReview,
  deniedReview,
  failedReview,
  MalformedReview,
  parseTokenReview,
  TOKEN_REVIEW_VERSIONS,
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
  readonly guard?: ((req: IncomingMessage, res: ServerResponse) => Promise<string | undefined>) | undefined
  /** Write one audit line per decision (default true). */
  readonly audit?: boolean
  /** Summarises repeated denial and failure lines (a flood of junk must not flood the logs). */
  readonly auditThrottle?: AuditThrottle | undefined
  /** True once shutting down: /healthz answers 503 so load balancers stop sending work. */
  readonly draining?: () => boolean
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/**
 * The HTTP surface: /authenticate, /healthz, /status, /metrics, on node:http alone. Never listens;
 * see server/run.ts. Four fixed routes need no framework: express cost about 5% of every review's
 * CPU and several MiB of memory for routing this server never does. Paths match as express matched
 * them: exact, ignoring the query and a trailing slash, case-insensitive.
 */
export function createApp(deps: AppDeps): RequestListener {
  return function app(req, res) {
    route(req, res, deps).catch((err: unknown) => internalError(err, res, deps))
  }
}

async function route(req: IncomingMessage, res: ServerResponse, deps: AppDeps): Promise<void> {
  const path = pathOf(req.url ?? '')
  if (path === '/authenticate') return authenticateRoute(req, res, deps)
  const read = req.method === 'GET' || req.method === 'HEAD'
  if (read && path === '/healthz') {
    return deps.draining?.() ? sendText(res, 503, 'shutting down\n') : sendText(res, 200, 'ok')
  }
  if (read && path === '/status') {
    const sources = deps.sources()
    return sendJson(res, sources.every((s) => s.synced) ? 200 : 503, { sources })
  }
  if (read && path === '/metrics') {
    const text = await deps.metrics.registry.metrics()
    return send(res, 200, deps.metrics.registry.contentType, text)
  }
  sendText(res, 404, '404 page not found\n')
}

/** The lower-case path of a request target (origin or absolute form), without query or trailing slash. */
function pathOf(target: string): string {
  let path = target
  if (!path.startsWith('/')) {
    try {
      path = new URL(target).pathname
    } catch {
      return ''
    }
  }
  const q = path.indexOf('?')
  if (q !== -1) path = path.slice(0, q)
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
  return path.toLowerCase()
}

async function authenticateRoute(req: IncomingMessage, res: ServerResponse, deps: AppDeps): Promise<void> {
  const started = process.hrtime.bigint()
  const observe = (result: ResultLabel) =>
    deps.metrics.authenticateLatency.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9)
  const malformed = (status: number, message: string, headers: Record<string, string> = {}) => {
    observe('malformed_request')
    deps.metrics.reviews.inc({ decision: 'malformed', reason: String(status) })
    if (deps.auditThrottle?.admit({ decision: 'malformed', reason: String(status), level: 'info' }) ?? true) {
      deps.log.info({ status, reason: message }, 'malformed TokenReview request')
    }
    sendText(res, status, `${message}\n`, headers)
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
      return malformed(413, `request body larger than ${deps.maxRequestBytes} bytes`, { connection: 'close' })
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
    throw e
  }
  const decision = await deps.authenticate(review.token, caller)
  respond(review.apiVersion, decision, res, deps, observe, started)
}

function internalError(err: unknown, res: ServerResponse, deps: AppDeps): void {
  // Not under `err`: pino's error serializer would replace `type` with "Object" and add an empty stack.
  deps.log.error({ error: (err as Error)?.message, errorType: (err as Error)?.name }, 'internal error')
  if (!res.headersSent) sendText(res, 500, 'internal error\n')
  else res.destroy()
}

function respond(
  apiVersion: TokenReviewVersion,
  decision: Decision,
  res: ServerResponse,
  deps: AppDeps,
  observe: (result: ResultLabel) => void,
  started: bigint,
): void {
  const latencyMs = Number(process.hrtime.bigint() - started) / 1e6
  // clusterId: which cluster ID the token named (once STS verified it); stsCalls: what verifying it
  // cost. Undefined fields are left out of the line.
  const { identity, scrubbed, cache, clusterId, stsCalls } = decision
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
          clusterId,
          stsCalls,
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
        clusterId,
        stsCalls,
        cache,
        latencyMs: Math.round(latencyMs * 100) / 100,
      },
      outcome.status === 200 ? 'access denied' : 'could not decide',
    )
  }
  if (outcome.status === 200) send(res, 200, JSON_TYPE, DENIED[apiVersion])
  else sendJson(res, outcome.status, failedReview(apiVersion, err.message))
}

const JSON_TYPE = 'application/json; charset=utf-8'
/** The definitive denial never varies but by version: written once, sent as is. */
const DENIED = Object.fromEntries(TOKEN_REVIEW_VERSIONS.map((v) => [v, JSON.stringify(deniedReview(v))])) as Record<
  TokenReviewVersion,
  string
>

/** A JSON answer (the TokenReview answers, /status), written in one piece. */
function sendJson(res: ServerResponse, status: number, body: object): void {
  send(res, status, JSON_TYPE, JSON.stringify(body))
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  send(res, status, 'text/plain; charset=utf-8', text, headers)
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}
