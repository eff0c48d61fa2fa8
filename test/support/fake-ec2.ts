// A local Amazon EC2 stand-in for tests: DescribeInstances only.
//
// It listens on 127.0.0.1 (plain HTTP, random port) and speaks the EC2 Query protocol the way
// @aws-sdk/client-ec2 uses it: a form-encoded POST (`Action=DescribeInstances&Version=2016-11-15&
// InstanceId.1=...`), header-signed with SigV4 for service `ec2`, which it really verifies with
// fake-sts's independent verifier. Answers are EC2's XML; errors use EC2's `<Response><Errors>` shape.
// Like EC2, one unknown instance ID fails the whole call with InvalidInstanceID.NotFound.

import type { IncomingMessage } from 'node:http'
import { type FakeStsPrincipal, verifySigV4Request } from './fake-sts.js'
import { startStandInServer, type ConnectionFault } from './standin-server.js'

export type FakeEc2Fault = 'none' | 'throttle' | 'error500' | 'hang' | 'reset'

export interface FakeEc2 {
  /** http://127.0.0.1:<port> */
  readonly url: string
  /** DescribeInstances requests received (whatever their outcome). */
  readonly calls: number
  /** The InstanceId.N values of each DescribeInstances request, in arrival order (a copy). */
  readonly idsPerCall: string[][]
  /** When each DescribeInstances request arrived (Date.now()), in arrival order (a copy). */
  readonly callTimes: number[]
  /** Requests refused for their signature or credentials. */
  readonly rejected: number
  /** Client connections currently open. */
  readonly connections: number
  /** The last 50 error replies (`Code: message`), oldest first. */
  readonly lastErrors: string[]
  addPrincipal(p: FakeStsPrincipal): void
  /** `dnsName` '' answers an instance without a private DNS name, as EC2 does for some states. */
  addInstance(id: string, dnsName: string): void
  removeInstance(id: string): void
  setFault(fault: FakeEc2Fault): void
  /** Delay before answering every request. */
  setLatency(ms: number): void
  resetCalls(): void
  /** Stops listening and destroys every open connection, including hung and keep-alive ones. */
  close(): Promise<void>
}

export interface FakeEc2Options {
  /** Access keys allowed to call; or a lookup (e.g. to accept keys minted by a fake STS). */
  principals?: FakeStsPrincipal[] | ((akid: string) => FakeStsPrincipal | undefined)
  instances?: Record<string, string>
  /** Answer at most this many instances per response, with a nextToken for the rest (EC2 itself does
   * not page when InstanceIds are given, but the client must not depend on it). */
  pageSize?: number
  latencyMs?: number
  now?: () => Date
}

const EC2_VERSION = '2016-11-15'
const XMLNS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`

const xmlEscape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)

interface Reply {
  status: number
  body: string
}

/** The `InstanceId.N` parameters in N order (EC2 numbers list members from 1). */
function instanceIds(params: URLSearchParams): string[] {
  const numbered: [number, string][] = []
  for (const [k, v] of params) {
    const m = /^InstanceId\.(\d+)$/.exec(k)
    if (m) numbered.push([Number(m[1]), v])
  }
  return numbered.sort((a, b) => a[0] - b[0]).map(([, v]) => v)
}

export async function startFakeEc2(opts: FakeEc2Options = {}): Promise<FakeEc2> {
  const now = opts.now ?? (() => new Date())
  const principals = new Map<string, FakeStsPrincipal>()
  const extraLookup = typeof opts.principals === 'function' ? opts.principals : undefined
  if (Array.isArray(opts.principals)) for (const p of opts.principals) principals.set(p.accessKeyId, p)
  const lookup = (akid: string): FakeStsPrincipal | undefined => principals.get(akid) ?? extraLookup?.(akid)
  const instances = new Map<string, string>(Object.entries(opts.instances ?? {}))
  const pageSize = opts.pageSize ?? Infinity

  let calls = 0
  let rejected = 0
  const idsPerCall: string[][] = []
  const callTimes: number[] = []
  const lastErrors: string[] = []

  const errorReply = (requestId: string, status: number, code: string, message: string): Reply => {
    lastErrors.push(`${code}: ${message}`)
    if (lastErrors.length > 50) lastErrors.shift()
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${xmlEscape(code)}</Code>` +
      `<Message>${xmlEscape(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`
    return { status, body }
  }

  const describeInstances = (params: URLSearchParams, requestId: string): Reply => {
    const ids = instanceIds(params)
    const unknown = ids.filter((id) => !instances.has(id))
    if (unknown.length > 0) {
      const message =
        unknown.length === 1
          ? `The instance ID '${unknown[0]}' does not exist`
          : `The instance IDs '${unknown.join(', ')}' do not exist`
      return errorReply(requestId, 400, 'InvalidInstanceID.NotFound', message)
    }
    const all = ids.length > 0 ? [...new Set(ids)] : [...instances.keys()]
    const token = params.get('NextToken')
    const start = token === null ? 0 : Number(token)
    if (!Number.isInteger(start) || start < 0 || start > all.length) {
      return errorReply(requestId, 400, 'InvalidParameterValue', `Invalid value '${token}' for nextToken`)
    }
    const page = all.slice(start, start + pageSize)
    const next = start + page.length < all.length ? String(start + page.length) : undefined
    // One reservation per instance, so the client must flatten reservations.
    const reservations = page
      .map(
        (id) =>
          `<item><reservationId>r-${id.slice(2)}</reservationId><ownerId>111122223333</ownerId><groupSet/>` +
          `<instancesSet><item><instanceId>${xmlEscape(id)}</instanceId><imageId>ami-0abcdef1234567890</imageId>` +
          `<instanceState><code>16</code><name>running</name></instanceState>` +
          `<privateDnsName>${xmlEscape(instances.get(id)!)}</privateDnsName><dnsName/>` +
          `<instanceType>m5.large</instanceType></item></instancesSet></item>`,
      )
      .join('')
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${XMLNS}">` +
      `<requestId>${requestId}</requestId><reservationSet>${reservations}</reservationSet>` +
      (next === undefined ? '' : `<nextToken>${next}</nextToken>`) +
      `</DescribeInstancesResponse>`
    return { status: 200, body }
  }

  /** Answers one fully received request (hang and reset are the stand-in server's). */
  const handle = (
    req: IncomingMessage,
    body: string,
    activeFault: Exclude<FakeEc2Fault, ConnectionFault>,
    requestId: string,
  ): Reply => {
    switch (activeFault) {
      case 'error500':
        return errorReply(requestId, 500, 'InternalError', 'An internal error has occurred')
      case 'throttle':
        return errorReply(requestId, 503, 'RequestLimitExceeded', 'Request limit exceeded.')
      case 'none':
        break
    }
    const verified = verifySigV4Request(
      { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body },
      lookup,
      now(),
      'ec2',
    )
    if (!verified.ok) {
      rejected++
      const status = verified.code === 'InvalidClientTokenId' || verified.code === 'ExpiredToken' ? 401 : 403
      return errorReply(requestId, status, 'AuthFailure', `${verified.code}: ${verified.message}`)
    }
    const { params } = verified
    const action = params.get('Action')
    const version = params.get('Version')
    if (action === null)
      return errorReply(requestId, 400, 'MissingAction', 'The request must contain the parameter Action')
    if (version !== EC2_VERSION) {
      return errorReply(requestId, 400, 'InvalidParameterValue', `Unsupported Version '${version}'`)
    }
    if (action !== 'DescribeInstances') {
      return errorReply(requestId, 400, 'InvalidAction', `The action ${action} is not valid for this web service.`)
    }
    return describeInstances(params, requestId)
  }

  const server = await startStandInServer<FakeEc2Fault>({
    latencyMs: opts.latencyMs,
    received(_req, body) {
      const form = new URLSearchParams(body)
      if (form.get('Action') === 'DescribeInstances') {
        calls++
        idsPerCall.push(instanceIds(form))
        callTimes.push(Date.now())
      }
    },
    respond: (req, body, fault, requestId) => ({
      contentType: 'text/xml;charset=UTF-8',
      ...handle(req, body, fault, requestId),
    }),
  })

  return {
    url: server.url,
    get calls(): number {
      return calls
    },
    get idsPerCall(): string[][] {
      return idsPerCall.map((ids) => [...ids])
    },
    get callTimes(): number[] {
      return [...callTimes]
    },
    get rejected(): number {
      return rejected
    },
    get connections(): number {
      return server.connections
    },
    get lastErrors(): string[] {
      return [...lastErrors]
    },
    addPrincipal(p: FakeStsPrincipal): void {
      principals.set(p.accessKeyId, p)
    },
    addInstance(id: string, dnsName: string): void {
      instances.set(id, dnsName)
    },
    removeInstance(id: string): void {
      instances.delete(id)
    },
    setFault(f: FakeEc2Fault): void {
      server.setFault(f)
    },
    setLatency(ms: number): void {
      server.setLatency(ms)
    },
    resetCalls(): void {
      calls = 0
      rejected = 0
      idsPerCall.length = 0
      callTimes.length = 0
      lastErrors.length = 0
    },
    close(): Promise<void> {
      return server.close()
    },
  }
}
