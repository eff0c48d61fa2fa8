import type { IncomingMessage } from 'node:http'

/**
 * Reads a request body of at most `limit` bytes. When Content-Length announces more, or the bytes
 * received pass the limit, it stops reading at once and reports 413 (a body parser that first reads
 * the whole oversized body to discard it would hold the connection for as long as a slow client
 * cares to send). Compressed bodies are refused (kube-apiserver never sends them).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer } | { status: 400 | 413 | 415 }> {
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
