import { lookup as dnsLookup } from 'node:dns'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'

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
  constructor(ms: number) {
    super(`deadline of ${ms} ms exceeded`)
  }
}

export interface StsTransportOptions {
  /** Connections kept per STS origin. */
  readonly maxConnections?: number
  /** Bodies above this are abandoned (a GetCallerIdentity answer is well under 1 KiB). */
  readonly maxBodyBytes?: number
  /** Longest time a name lookup (or, through a proxy, a connection) may take: normally the STS deadline. */
  readonly connectTimeoutMs?: number
  /** Name resolution (tests inject failures and stalls); bounded by connectTimeoutMs. Default dns.lookup. */
  readonly lookup?: LookupFunction
}

export interface StsTransportHandle {
  readonly send: StsTransport
  close(): Promise<void>
}

/**
 * The real transport: pooled keep-alive connections, no redirects followed (a 3xx is returned as
 * is), a cap on the body size, and a hard deadline on the whole exchange: the request is aborted
 * and answered at the deadline whatever phase it is in, and name lookups give up at the connect
 * timeout. Built on node:http(s), which the server loads anyway. When HTTPS_PROXY or HTTP_PROXY is
 * set, requests go through undici's proxy agent (honouring NO_PROXY), as upstream's Go client does.
 */
export function createStsTransport(opts: StsTransportOptions = {}): StsTransportHandle {
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => process.env[k])
  if (proxied) return proxiedTransport(opts)
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets: opts.maxConnections ?? 64,
    maxFreeSockets: opts.maxConnections ?? 64,
    scheduling: 'lifo' as const,
    // an idle kept-alive connection is closed after this (STS closes its own after about a minute)
    timeout: 30_000,
    lookup: lookupWithin(connectTimeoutMs, opts.lookup ?? dnsLookup),
  }
  const agents = { 'https:': new HttpsAgent(agentOptions), 'http:': new HttpAgent(agentOptions) }

  function exchange(req: StsHttpRequest, signal: AbortSignal): Promise<StsHttpResponse> {
    return new Promise((resolve, reject) => {
      const url = new URL(req.origin + req.pathAndQuery)
      const secure = url.protocol === 'https:'
      if (!secure && url.protocol !== 'http:') throw new TypeError(`unsupported STS origin ${req.origin}`)
      const send = secure ? httpsRequest : httpRequest
      const outgoing = send(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method: 'GET',
          headers: req.headers,
          agent: agents[url.protocol as 'https:' | 'http:'],
          // aborting destroys the connection whatever it is doing: resolving, connecting, handshaking
          signal,
        },
        (res) => readBounded(res, maxBodyBytes).then(resolve, reject),
      )
      outgoing.on('error', reject)
      outgoing.end()
    })
  }

  return {
    send: withDeadline(exchange),
    close: async () => {
      agents['https:'].destroy()
      agents['http:'].destroy()
    },
  }
}

/** Races every exchange against its deadline, and aborts it when the deadline wins. */
function withDeadline(exchange: (req: StsHttpRequest, signal: AbortSignal) => Promise<StsHttpResponse>) {
  return async function send(req: StsHttpRequest): Promise<StsHttpResponse> {
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
}

function readBounded(res: IncomingMessage, maxBodyBytes: number): Promise<StsHttpResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBodyBytes) {
        res.destroy()
        return reject(new ResponseTooLarge(maxBodyBytes))
      }
      chunks.push(chunk)
    })
    res.on('error', reject)
    // closed before the whole body arrived (after 'end', rejecting is a no-op)
    res.on('close', () => reject(Object.assign(new Error('response ended early'), { code: 'ECONNRESET' })))
    res.on('end', () => {
      const contentType = res.headers['content-type'] ?? ''
      resolve({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks, size).toString('utf8') })
    })
  })
}

/** The proxied transport: undici's proxy agent (NO_PROXY honoured), loaded only when a proxy is set. */
function proxiedTransport(opts: StsTransportOptions): StsTransportHandle {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  const undici = import('undici')
  const dispatcher = undici.then(
    ({ EnvHttpProxyAgent }) =>
      new EnvHttpProxyAgent({
        connections: opts.maxConnections ?? 64,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: connectTimeoutMs, lookup: lookupWithin(connectTimeoutMs, opts.lookup ?? dnsLookup) },
      }),
  )
  async function exchange(req: StsHttpRequest, signal: AbortSignal): Promise<StsHttpResponse> {
    const { request } = await undici
    const res = await request(req.origin + req.pathAndQuery, {
      method: 'GET',
      headers: req.headers,
      dispatcher: await dispatcher,
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
  return { send: withDeadline(exchange), close: async () => (await dispatcher).destroy() }
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
