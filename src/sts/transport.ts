import { lookup as dnsLookup } from 'node:dns'
import type { LookupFunction } from 'node:net'
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici'

/** One GET to STS. `origin` is `https://<sts host>` or the KUBE_IAM_AUTH_STS_ENDPOINT base URL. */
export interface StsHttpRequest {
  readonly origin: string
  readonly pathAndQuery: string
  readonly headers: Readonly<Record<string, string>>
  /** Deadline of the whole exchange: DNS, connect, TLS handshake, request, response headers and body. */
  readonly timeoutMs: number
}

export interface StsHttpResponse {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** Sends the request and returns the response; throws on network failure, timeout or an oversized body. */
export type StsTransport = (req: StsHttpRequest) => Promise<StsHttpResponse>

export class ResponseTooLarge extends Error {
  constructor(limit: number) {
    super(`response body larger than ${limit} bytes`)
  }
}

/** What the transport throws when the deadline passes, in any phase. */
export class StsDeadlineExceeded extends Error {
  override readonly name = 'TimeoutError'
  constructor(ms: number, phase?: string) {
    super(`deadline of ${ms} ms exceeded${phase === undefined ? '' : ` (${phase})`}`)
  }
}

export interface StsTransportOptions {
  /** Connections kept per STS origin. */
  readonly maxConnections?: number
  /** Bodies above this are abandoned (a GetCallerIdentity answer is well under 1 KiB). */
  readonly maxBodyBytes?: number
  /**
   * Longest time a connection may take to be ready (DNS, TCP, TLS), normally the STS deadline: a
   * connection is shared by the requests queued on it, so it is bounded on its own too.
   */
  readonly connectTimeoutMs?: number
  /** Name resolution (tests inject failures and stalls); bounded by connectTimeoutMs. Default dns.lookup. */
  readonly lookup?: LookupFunction
}

/**
 * The real transport: pooled keep-alive connections, no redirects followed (a 3xx is returned as
 * is), a cap on the body size, and a hard deadline on the whole exchange. The deadline does not
 * rely on the HTTP client alone: undici does not abort a request whose connection is still
 * resolving its host name, so every phase is also raced against a timer here, and name lookups
 * give up at the connect timeout. Honours HTTPS_PROXY and NO_PROXY when they are set, as
 * upstream's Go client does.
 */
export function createStsTransport(opts: StsTransportOptions = {}): {
  send: StsTransport
  close: () => Promise<void>
} {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  const poolOptions = {
    connections: opts.maxConnections ?? 64,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: connectTimeoutMs, lookup: lookupWithin(connectTimeoutMs, opts.lookup ?? dnsLookup) },
  }
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => process.env[k])
  const dispatcher: Dispatcher = proxied ? new EnvHttpProxyAgent(poolOptions) : new Agent(poolOptions)

  async function exchange(req: StsHttpRequest, signal: AbortSignal): Promise<StsHttpResponse> {
    const res = await request(req.origin + req.pathAndQuery, {
      method: 'GET',
      headers: req.headers,
      dispatcher,
      signal,
    })
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > maxBodyBytes) {
        res.body.destroy()
        throw new ResponseTooLarge(maxBodyBytes)
      }
      chunks.push(chunk)
    }
    const contentType = res.headers['content-type']
    return {
      status: res.statusCode,
      contentType: Array.isArray(contentType) ? (contentType[0] ?? '') : (contentType ?? ''),
      body: Buffer.concat(chunks).toString('utf8'),
    }
  }

  async function send(req: StsHttpRequest): Promise<StsHttpResponse> {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new StsDeadlineExceeded(req.timeoutMs)
        controller.abort(err)
        reject(err)
      }, req.timeoutMs)
    })
    const exchanged = exchange(req, controller.signal)
    exchanged.catch(() => {}) // it may settle after the deadline has answered
    try {
      return await Promise.race([exchanged, deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  return { send, close: () => dispatcher.destroy() }
}

/** A lookup that answers ETIMEOUT after `ms` if the real one has not answered (it is then ignored). */
function lookupWithin(ms: number, lookup: LookupFunction): LookupFunction {
  return function boundedLookup(hostname, options, callback) {
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      const err = Object.assign(new Error(`DNS lookup of ${hostname} timed out after ${ms} ms`), {
        code: 'ETIMEOUT',
      }) as NodeJS.ErrnoException
      callback(err, '', 4)
    }, ms)
    lookup(hostname, options, ((err: NodeJS.ErrnoException | null, address: unknown, family?: number) => {
      if (done) return
      done = true
      clearTimeout(timer)
      ;(callback as (e: NodeJS.ErrnoException | null, a: unknown, f?: number) => void)(err, address, family)
    }) as Parameters<LookupFunction>[2])
  }
}
