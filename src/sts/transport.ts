import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici'

/** One GET to STS. `origin` is `https://<sts host>` or the KUBE_IAM_AUTH_STS_ENDPOINT base URL. */
export interface StsHttpRequest {
  readonly origin: string
  readonly pathAndQuery: string
  readonly headers: Readonly<Record<string, string>>
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

export interface StsTransportOptions {
  /** Connections kept per STS origin. */
  readonly maxConnections?: number
  /** Bodies above this are abandoned (a GetCallerIdentity answer is well under 1 KiB). */
  readonly maxBodyBytes?: number
}

/**
 * The real transport: pooled keep-alive connections, no redirects followed (a 3xx is returned as
 * is), a hard deadline covering headers and body, and a cap on the body size. Honours HTTPS_PROXY
 * and NO_PROXY when they are set, as upstream's Go client does.
 */
export function createStsTransport(opts: StsTransportOptions = {}): {
  send: StsTransport
  close: () => Promise<void>
} {
  const maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024
  const poolOptions = {
    connections: opts.maxConnections ?? 64,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
  }
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => process.env[k])
  const dispatcher: Dispatcher = proxied ? new EnvHttpProxyAgent(poolOptions) : new Agent(poolOptions)

  async function send(req: StsHttpRequest): Promise<StsHttpResponse> {
    const res = await request(req.origin + req.pathAndQuery, {
      method: 'GET',
      headers: req.headers,
      dispatcher,
      signal: AbortSignal.timeout(req.timeoutMs),
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

  return { send, close: () => dispatcher.close() }
}
