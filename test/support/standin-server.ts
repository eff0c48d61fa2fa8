// The HTTP plumbing shared by the local AWS stand-ins (fake-sts.ts, fake-ec2.ts): a keep-alive HTTP
// server on 127.0.0.1 (random port) that collects each request's body (at most 1 MiB, else the
// connection is reset), applies the latency and the fault in force when the request arrived, and
// answers with what the stand-in computes, under a fresh x-amzn-requestid. The connection faults
// `hang` (never answer) and `reset` (destroy the connection) are handled here; every other fault is
// the stand-in's to answer. close() also destroys hung and idle keep-alive connections.
//
// No test framework here: bench/ runs the stand-ins as plain processes.

import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** Faults handled by the server itself, the same for every stand-in. */
export type ConnectionFault = 'hang' | 'reset'

export interface StandInReply {
  status: number
  contentType: string
  body: string
}

export interface StandInServerOptions<F extends string> {
  /** Delay before answering every request (0 answers at once). */
  latencyMs?: number | undefined
  /** Called as soon as a request's body has fully arrived, before any latency or fault (counters). */
  received?(req: IncomingMessage, body: string): void
  /**
   * Answers one request, after the latency, under the fault in force when it arrived (never a
   * connection fault). Called even when the client has gone meanwhile; the reply is then dropped.
   */
  respond(
    req: IncomingMessage,
    body: string,
    fault: Exclude<F | 'none', ConnectionFault>,
    requestId: string,
  ): StandInReply
}

export interface StandInServer<F extends string> {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  /** Client connections currently open. */
  readonly connections: number
  setFault(fault: F | 'none'): void
  setLatency(ms: number): void
  /** Stops listening and destroys every open connection, including hung and keep-alive ones. */
  close(): Promise<void>
}

const MAX_BODY_BYTES = 1 << 20

export async function startStandInServer<F extends string>(opts: StandInServerOptions<F>): Promise<StandInServer<F>> {
  let fault: F | 'none' = 'none'
  let latencyMs = Math.max(0, opts.latencyMs ?? 0)
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let closed = false

  const answer = (req: IncomingMessage, res: ServerResponse, body: string, activeFault: F | 'none'): void => {
    if (activeFault === 'hang') return // the socket is destroyed by close()
    if (activeFault === 'reset') {
      req.socket.destroy()
      return
    }
    const requestId = randomUUID()
    const reply = opts.respond(req, body, activeFault as Exclude<F | 'none', ConnectionFault>, requestId)
    if (res.destroyed) return
    res.writeHead(reply.status, {
      'x-amzn-requestid': requestId,
      'content-type': reply.contentType,
      'content-length': Buffer.byteLength(reply.body),
    })
    res.end(reply.body)
  }

  const server = createServer({ keepAlive: true }, (req, res) => {
    req.on('error', () => {})
    res.on('error', () => {})
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) req.socket.destroy()
      else chunks.push(chunk)
    })
    req.on('end', () => {
      if (closed) return
      const body = chunks.length === 0 ? '' : Buffer.concat(chunks).toString('utf8')
      opts.received?.(req, body)
      const activeFault = fault
      if (latencyMs === 0) return answer(req, res, body, activeFault)
      const timer = setTimeout(() => {
        timers.delete(timer)
        answer(req, res, body, activeFault)
      }, latencyMs)
      timers.add(timer)
    })
  })
  // Pooled client connections may sit idle for a while: do not close them under the client.
  server.keepAliveTimeout = 60_000
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket: Socket) => socket.destroy())

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port

  let closing: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get connections(): number {
      return sockets.size
    },
    setFault(f: F | 'none'): void {
      fault = f
    },
    setLatency(ms: number): void {
      latencyMs = Math.max(0, ms)
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        closed = true
        for (const t of timers) clearTimeout(t)
        timers.clear()
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
        sockets.clear()
      })
      return closing
    },
  }
}
