// Raw sockets to the webhook, for requests no HTTP client library would send: bytes written exactly
// as given over TLS (or plain TCP), responses parsed by hand, and the moment the server closes
// recorded. 127.0.0.1 only.
import { connect as tcpConnect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'

export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface RawConn {
  readonly socket: TLSSocket | Socket
  /** Everything received so far. */
  received(): Buffer
  /** The complete responses received so far. */
  responses(): RawResponse[]
  /** Resolves when the connection closed, with the time (Date.now()) and the error if any. */
  readonly closed: Promise<{ at: number; error?: string }>
  readonly isClosed: () => boolean
  /** Resolves once `n` complete responses arrived or the connection closed (bounded by `ms`). */
  waitResponses(n: number, ms?: number): Promise<RawResponse[]>
  /** Writes, resolving once the data was handed to the kernel (false once the socket is gone). */
  write(data: string | Buffer): Promise<boolean>
  destroy(): void
}

function wrap(socket: TLSSocket | Socket, ready: Promise<void>): Promise<RawConn> {
  const chunks: Buffer[] = []
  let closedFlag = false
  let lastError: string | undefined
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const w of waiters) w()
  }
  socket.on('data', (d: Buffer) => {
    chunks.push(d)
    notify()
  })
  socket.on('error', (e: NodeJS.ErrnoException) => (lastError = e.code ?? e.message))
  const closed = new Promise<{ at: number; error?: string }>((resolve) =>
    socket.once('close', () => {
      closedFlag = true
      notify()
      resolve({ at: Date.now(), ...(lastError === undefined ? {} : { error: lastError }) })
    }),
  )
  const conn: RawConn = {
    socket,
    received: () => Buffer.concat(chunks),
    responses: () => parseResponses(Buffer.concat(chunks)),
    closed,
    isClosed: () => closedFlag,
    waitResponses: (n, ms = 10_000) =>
      new Promise((resolve) => {
        const check = () => {
          const got = conn.responses()
          if (got.length >= n || closedFlag) {
            clearTimeout(timer)
            waiters.delete(check)
            resolve(got)
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          resolve(conn.responses())
        }, ms)
        waiters.add(check)
        check()
      }),
    write: (data) =>
      new Promise((resolve) => {
        if (socket.destroyed || !socket.writable) return resolve(false)
        socket.write(data, (err) => resolve(err == null))
      }),
    destroy: () => socket.destroy(),
  }
  return ready.then(() => conn)
}

/** A TLS connection trusting `ca`; resolves once the handshake is done. */
export function openTls(port: number, ca: string): Promise<RawConn> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve())
    socket.once('error', reject)
  })
  return wrap(socket, ready)
}

/** TLS over a TCP socket we keep a handle on, so the test can reset (RST) the TCP connection. */
export async function openTlsOverTcp(port: number, ca: string): Promise<RawConn & { tcp: Socket }> {
  const tcp = tcpConnect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    tcp.once('connect', () => resolve())
    tcp.once('error', reject)
  })
  const socket = tlsConnect({ socket: tcp, ca, servername: 'localhost' })
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve())
    socket.once('error', reject)
  })
  tcp.on('error', () => {})
  return Object.assign(await wrap(socket, ready), { tcp })
}

/** A plain TCP connection (no TLS). */
export function openTcp(port: number): Promise<RawConn> {
  const socket = tcpConnect(port, '127.0.0.1')
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  return wrap(socket, ready)
}

/** An HTTP/1.1 request, byte for byte. `body` undefined: no body and no Content-Length. */
export function httpRequest(opts: {
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: string | Buffer
  contentLength?: number | false
}): Buffer {
  const body =
    opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8')
  const headers: Record<string, string> = { Host: 'localhost', ...opts.headers }
  if (body !== undefined && opts.contentLength !== false)
    headers['Content-Length'] = String(opts.contentLength ?? body.length)
  const head = `${opts.method ?? 'POST'} ${opts.path ?? '/authenticate'} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`
  return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body])
}

export const jsonPost = (body: string | Buffer, headers: Record<string, string> = {}) =>
  httpRequest({ body, headers: { 'Content-Type': 'application/json', ...headers } })

/** Complete HTTP/1.1 responses at the start of `buf` (Content-Length, chunked, or close-delimited once closed). */
export function parseResponses(buf: Buffer): RawResponse[] {
  const out: RawResponse[] = []
  let at = 0
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at)
    if (end < 0) return out
    const head = buf.subarray(at, end).toString('latin1').split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]!)
    if (m === null) return out
    const headers: Record<string, string> = {}
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':')
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    let bodyStart = end + 4
    let body: Buffer
    if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length'])
      if (buf.length < bodyStart + len) return out
      body = buf.subarray(bodyStart, bodyStart + len)
      at = bodyStart + len
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = []
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', bodyStart)
        if (lineEnd < 0) return out
        const size = parseInt(buf.subarray(bodyStart, lineEnd).toString('latin1'), 16)
        if (buf.length < lineEnd + 2 + size + 2) return out
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
        bodyStart = lineEnd + 2 + size + 2
        if (size === 0) break
      }
      body = Buffer.concat(parts)
      at = bodyStart
    } else {
      // no length: the body runs to the end of the connection (Node's own 400/408 answers have none)
      body = buf.subarray(bodyStart)
      at = buf.length
    }
    out.push({ status: Number(m[1]), headers, body: body.toString('utf8') })
    if (at >= buf.length) return out
  }
}
