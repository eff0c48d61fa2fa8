// A local stand-in for kube-apiserver's REST API, for tests that drive the real @kubernetes/client-node.
//
// It listens on 127.0.0.1 (plain HTTP by default, HTTPS with a fresh self-signed certificate on
// request, optionally requiring a bearer token or a client certificate) and serves three resources
// the way an etcd-backed kube-apiserver does:
// - ConfigMaps: /api/v1/namespaces/{ns}/configmaps[/{name}] and /api/v1/configmaps (all namespaces);
// - Events (core/v1): /api/v1/namespaces/{ns}/events[/{name}] and /api/v1/events, with the
//   involvedObject.* field selectors kubectl describe uses, and kube-apiserver's rule that the event
//   of a cluster-scoped object lives in `default` (legacy events, without eventTime);
// - IAMIdentityMappings (cluster-scoped custom resources with a status subresource):
//   /apis/iamauthenticator.k8s.aws/v1alpha1/iamidentitymappings[/{name}[/status]].
//
// One global, monotonically increasing resourceVersion is bumped by every write that changes an
// object (a no-op update keeps the object's resourceVersion and emits no event, as etcd does). Every
// change is kept in an event history, so a watch from resourceVersion R replays every change after
// R and then streams live ones; compact() discards history so that a watch from an older R gets the
// 410 Expired ERROR event, exactly as kube-apiserver reports "too old resource version".
//
// Protocol details reproduced on purpose:
// - lists answer `{kind: '<Kind>List', metadata: {resourceVersion}, items}`; typed (ConfigMap) list
//   items carry no kind/apiVersion, custom resource items do;
// - watches answer 200 with chunked `application/json`, one `{"type","object"}` JSON line per chunk;
//   resourceVersion absent or "0" starts with synthetic ADDED events; selectors apply to watches too,
//   and an object that stops (starts) matching a label selector is reported DELETED (ADDED);
// - PUT uses optimistic concurrency (409 Conflict), ConfigMap PUT creates a missing object, custom
//   resource PUT does not, main-resource writes of a custom resource ignore status and /status writes
//   change only status, and metadata.generation follows spec changes;
// - PATCH accepts JSON patch (client-node's default content type for patches), merge patch, and
//   strategic merge patch (as a merge patch) for ConfigMaps only: like kube-apiserver, custom
//   resources refuse strategic merge patch with 415;
// - errors are `Status` objects with kube-apiserver's reasons and messages.

import { randomBytes, randomUUID } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { generateServingCert } from '../../src/server/tls.js'

export type FakeKubeResource = 'configmaps' | 'events' | 'iamidentitymappings'
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

export interface KubeObjectMeta {
  name?: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  generation?: number
  creationTimestamp?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  [key: string]: unknown
}

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: KubeObjectMeta
  [key: string]: unknown
}

export interface KubeWatchEvent {
  type: WatchEventType
  object: KubeObject
}

export interface FakeKubeRequest {
  method: string
  /** Path and raw query, as received. */
  path: string
}

export interface FakeKubeOptions {
  /** HTTPS with a fresh self-signed certificate, trusted through the kubeconfig's CA data. Default: HTTP. */
  tls?: boolean
  /** Interval between BOOKMARK events on watches with allowWatchBookmarks=true; default 1000. */
  bookmarkIntervalMs?: number
  /** When set, every request needs `Authorization: Bearer <requireToken>` (401 Status otherwise). */
  requireToken?: string
  /**
   * With tls: client certificates signed by this CA (PEM) are asked for, and a request that presents
   * one is authenticated; without a valid certificate (or requireToken's token), 401.
   */
  clientCa?: string
}

export interface FakeKube {
  /** http(s)://127.0.0.1:<port> */
  readonly url: string
  /** The serving certificate (PEM) when tls is on. */
  readonly caPem: string | undefined
  /** The current global resourceVersion. */
  readonly resourceVersion: string
  /** Every request received, oldest first (a copy). */
  readonly requests: FakeKubeRequest[]
  /** Collection GETs without watch. */
  readonly lists: number
  /** Watch requests answered with a stream (including streams that only carried a 410 ERROR). */
  readonly watches: number
  /** Watch streams currently open. */
  readonly openWatches: number
  /** Creates the ConfigMap or replaces its data; returns the stored object. */
  setConfigMap(namespace: string, name: string, data: Record<string, string>): KubeObject
  /** False when there was no such ConfigMap. */
  deleteConfigMap(namespace: string, name: string): boolean
  /** Stored Events, oldest first, optionally of one namespace (copies). */
  events(namespace?: string): KubeObject[]
  /** Creates the IAMIdentityMapping or replaces its spec; returns the stored object. */
  putMapping(name: string, spec: Record<string, unknown>): KubeObject
  /** False when there was no such IAMIdentityMapping. */
  deleteMapping(name: string): boolean
  /** A copy of the stored object; namespace is '' for cluster-scoped resources. */
  getObject(resource: FakeKubeResource, namespace: string, name: string): KubeObject | undefined
  /** Discards the event history up to `uptoRv` (default: now): watches from older versions get 410. */
  compact(uptoRv?: string | number): void
  /** Destroys every open watch connection abruptly (no final chunk). */
  dropWatches(): void
  /** Ends every open watch cleanly (final chunk), as kube-apiserver does when its request timeout expires. */
  endWatches(): void
  /** While down, every connection is destroyed on arrival; going down also drops every open one. */
  setDown(down: boolean): void
  /** Answers the next `n` PUTs (main or status) with 409 Conflict, whatever their resourceVersion. */
  conflictNextUpdates(n: number): void
  /** A kubeconfig for this server; `token` defaults to requireToken. */
  kubeconfigFor(token?: string): string
  /** Stops listening and destroys every connection. */
  close(): Promise<void>
}

interface ResourceDef {
  readonly plural: FakeKubeResource
  readonly kind: string
  readonly listKind: string
  readonly group: string
  readonly version: string
  readonly apiVersion: string
  readonly namespaced: boolean
  /** Custom resource semantics: status subresource, generation, no strategic merge patch. */
  readonly custom: boolean
}

const CONFIGMAPS: ResourceDef = {
  plural: 'configmaps',
  kind: 'ConfigMap',
  listKind: 'ConfigMapList',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  namespaced: true,
  custom: false,
}

const MAPPINGS: ResourceDef = {
  plural: 'iamidentitymappings',
  kind: 'IAMIdentityMapping',
  listKind: 'IAMIdentityMappingList',
  group: 'iamauthenticator.k8s.aws',
  version: 'v1alpha1',
  apiVersion: 'iamauthenticator.k8s.aws/v1alpha1',
  namespaced: false,
  custom: true,
}

const EVENTS: ResourceDef = {
  plural: 'events',
  kind: 'Event',
  listKind: 'EventList',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  namespaced: true,
  custom: false,
}

const RESOURCES: Record<FakeKubeResource, ResourceDef> = {
  configmaps: CONFIGMAPS,
  events: EVENTS,
  iamidentitymappings: MAPPINGS,
}

/** Arbitrary, like a real cluster's: tests must not assume small numbers. */
const INITIAL_RV = 1000
const DEFAULT_BOOKMARK_INTERVAL_MS = 1000
const MAX_BODY_BYTES = 3 * 1024 * 1024
const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/
const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end'

// ---------------------------------------------------------------------------------------------
// Status errors

interface KubeStatus {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure'
  message: string
  reason: string
  details?: Record<string, unknown>
  code: number
}

/** Thrown by handlers; answered as a Status object. */
class KubeError extends Error {
  readonly status: KubeStatus

  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message)
    this.status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(details === undefined ? {} : { details }),
      code,
    }
  }
}

const qualifiedName = (r: ResourceDef): string => (r.group === '' ? r.plural : `${r.plural}.${r.group}`)

const objectDetails = (r: ResourceDef, name: string): Record<string, unknown> =>
  r.group === '' ? { name, kind: r.plural } : { name, group: r.group, kind: r.plural }

const notFound = (r: ResourceDef, name: string): KubeError =>
  new KubeError(404, 'NotFound', `${qualifiedName(r)} "${name}" not found`, objectDetails(r, name))

const alreadyExists = (r: ResourceDef, name: string): KubeError =>
  new KubeError(409, 'AlreadyExists', `${qualifiedName(r)} "${name}" already exists`, objectDetails(r, name))

const conflict = (r: ResourceDef, name: string, why: string): KubeError =>
  new KubeError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedName(r)} "${name}": ${why}`,
    objectDetails(r, name),
  )

const modifiedConflict = (r: ResourceDef, name: string): KubeError =>
  conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again')

const badRequest = (message: string): KubeError => new KubeError(400, 'BadRequest', message)

const invalid = (r: ResourceDef, name: string, message: string): KubeError =>
  new KubeError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${message}`, objectDetails(r, name))

const unsupportedMediaType = (contentType: string, accepted: string[]): KubeError =>
  new KubeError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format (${contentType}) - accepted media types include: ` +
      accepted.join(', '),
  )

const pathNotFound = (): KubeError => new KubeError(404, 'NotFound', 'the server could not find the requested resource')

const methodNotAllowed = (): KubeError =>
  new KubeError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')

const unauthorized = (): KubeError => new KubeError(401, 'Unauthorized', 'Unauthorized')

const expired = (requested: number, compacted: number): KubeError =>
  new KubeError(410, 'Expired', `too old resource version: ${requested} (${compacted})`)

// ---------------------------------------------------------------------------------------------
// JSON helpers

type JsonRecord = Record<string, unknown>

const isRecord = (v: unknown): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v)

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  }
  if (!isRecord(a) || !isRecord(b)) return false
  const keys = Object.keys(a).filter((k) => a[k] !== undefined)
  if (keys.length !== Object.keys(b).filter((k) => b[k] !== undefined).length) return false
  return keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`)
  }
}

function requireObject(body: unknown): JsonRecord {
  if (!isRecord(body)) throw badRequest('the request body must be a JSON object')
  return body
}

/** A non-empty string other than `actual` (absent and empty values never conflict). */
const isSetAndDiffers = (given: unknown, actual: unknown): boolean =>
  typeof given === 'string' && given !== '' && given !== actual

const metaOf = (obj: JsonRecord): KubeObjectMeta => (isRecord(obj.metadata) ? { ...obj.metadata } : {})

const withoutKeys = (obj: JsonRecord, keys: string[]): JsonRecord =>
  Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)))

// ---------------------------------------------------------------------------------------------
// Patches

/** RFC 7386 JSON merge patch. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch)
  const result: JsonRecord = isRecord(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = applyMergePatch(result[key], value)
  }
  return result
}

class PatchError extends Error {}

function parsePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/'))) {
    throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`)
  }
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function arrayIndex(token: string, max: number): number {
  const i = /^(0|[1-9]\d*)$/.test(token) ? Number(token) : NaN
  if (!(i >= 0 && i <= max)) throw new PatchError(`array index ${token} out of bounds`)
  return i
}

function pointerGet(doc: unknown, tokens: string[]): unknown {
  let current = doc
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[arrayIndex(token, current.length - 1)]
    else if (isRecord(current) && Object.hasOwn(current, token)) current = current[token]
    else throw new PatchError(`path /${tokens.join('/')} does not exist`)
  }
  return current
}

/** Returns the new document (a new root when `tokens` is empty). */
function pointerAdd(doc: unknown, tokens: string[], value: unknown): unknown {
  if (tokens.length === 0) return value
  const parent = pointerGet(doc, tokens.slice(0, -1))
  const key = tokens[tokens.length - 1]!
  if (Array.isArray(parent)) {
    parent.splice(key === '-' ? parent.length : arrayIndex(key, parent.length), 0, value)
  } else if (isRecord(parent)) parent[key] = value
  else throw new PatchError(`cannot add to a scalar at /${tokens.join('/')}`)
  return doc
}

function pointerRemove(doc: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) throw new PatchError('cannot remove the whole document')
  const parent = pointerGet(doc, tokens.slice(0, -1))
  const key = tokens[tokens.length - 1]!
  if (Array.isArray(parent)) return parent.splice(arrayIndex(key, parent.length - 1), 1)[0]
  if (isRecord(parent) && Object.hasOwn(parent, key)) {
    const removed = parent[key]
    delete parent[key]
    return removed
  }
  throw new PatchError(`path /${tokens.join('/')} does not exist`)
}

function applyPatchOperation(doc: unknown, op: unknown): unknown {
  if (!isRecord(op)) throw new PatchError('a JSON patch operation must be an object')
  const path = parsePointer(op.path)
  switch (op.op) {
    case 'add':
      return pointerAdd(doc, path, structuredClone(op.value))
    case 'remove':
      pointerRemove(doc, path)
      return doc
    case 'replace':
      pointerGet(doc, path)
      if (path.length === 0) return structuredClone(op.value)
      pointerRemove(doc, path)
      return pointerAdd(doc, path, structuredClone(op.value))
    case 'move': {
      const value = pointerRemove(doc, parsePointer(op.from))
      return pointerAdd(doc, path, value)
    }
    case 'copy':
      return pointerAdd(doc, path, structuredClone(pointerGet(doc, parsePointer(op.from))))
    case 'test':
      if (!deepEqual(pointerGet(doc, path), op.value)) {
        throw new PatchError(`test failed at ${String(op.path)}`)
      }
      return doc
    default:
      throw new PatchError(`unsupported JSON patch operation ${JSON.stringify(op.op)}`)
  }
}

/** RFC 6902 JSON patch, on a copy of `doc`. */
function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations')
  try {
    return ops.reduce<unknown>((current, op) => applyPatchOperation(current, op), structuredClone(doc))
  } catch (err) {
    if (err instanceof PatchError) throw new KubeError(422, 'Invalid', err.message)
    throw err
  }
}

const JSON_PATCH = 'application/json-patch+json'
const MERGE_PATCH = 'application/merge-patch+json'
const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'

function applyPatch(r: ResourceDef, existing: KubeObject, contentType: string | undefined, body: string): unknown {
  const accepted = r.custom ? [JSON_PATCH, MERGE_PATCH] : [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase()
  if (!accepted.includes(mediaType)) throw unsupportedMediaType(mediaType, accepted)
  const patch = parseJson(body)
  if (mediaType === JSON_PATCH) return applyJsonPatch(existing, patch)
  return applyMergePatch(existing, requireObject(patch))
}

// ---------------------------------------------------------------------------------------------
// Selectors

type SelectorOp = '=' | '!=' | 'exists' | '!exists' | 'in' | 'notin'

interface Requirement {
  key: string
  op: SelectorOp
  values: string[]
}

type Matcher = (obj: KubeObject) => boolean

const FIELD_LABELS = [
  'metadata.name',
  'metadata.namespace',
  // events (kubectl describe selects by these)
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
]

/** Splits on commas outside parentheses: `a in (x,y),b=c` -> [`a in (x,y)`, `b=c`]. */
function selectorTerms(selector: string): string[] {
  const terms: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i]
    if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === ',' && depth === 0) {
      terms.push(selector.slice(start, i))
      start = i + 1
    }
  }
  terms.push(selector.slice(start))
  return terms.map((t) => t.trim()).filter((t) => t !== '')
}

function parseRequirement(term: string, kind: 'field' | 'label'): Requirement {
  const equality = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s,()]*)$/.exec(term)
  if (equality) {
    const [, key = '', op, value = ''] = equality
    if (kind === 'field' && !FIELD_LABELS.includes(key)) throw badRequest(`field label not supported: ${key}`)
    return { key, op: op === '!=' ? '!=' : '=', values: [value] }
  }
  const set = kind === 'label' ? /^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term) : null
  if (set) {
    const [, key = '', op, list = ''] = set
    const values = list.split(',').map((v) => v.trim())
    return { key, op: op === 'in' ? 'in' : 'notin', values }
  }
  const existence = kind === 'label' ? /^(!?)\s*([^\s!=()]+)$/.exec(term) : null
  if (existence) {
    return { key: existence[2] ?? '', op: existence[1] === '!' ? '!exists' : 'exists', values: [] }
  }
  throw badRequest(`unable to parse requirement: ${JSON.stringify(term)} in ${kind} selector`)
}

function requirementMatches(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case '=':
      return value === req.values[0]
    case '!=':
      return value !== req.values[0]
    case 'exists':
      return value !== undefined
    case '!exists':
      return value === undefined
    case 'in':
      return value !== undefined && req.values.includes(value)
    case 'notin':
      return value === undefined || !req.values.includes(value)
  }
}

function fieldValue(obj: KubeObject, key: string): string {
  if (key === 'source') return String((obj.source as { component?: unknown } | undefined)?.component ?? '')
  let value: unknown = obj
  for (const part of key.split('.')) value = isRecord(value) ? value[part] : undefined
  return value === undefined || value === null ? '' : String(value)
}

function parseSelectors(query: URLSearchParams): Matcher {
  const fields = selectorTerms(query.get('fieldSelector') ?? '').map((t) => parseRequirement(t, 'field'))
  const labels = selectorTerms(query.get('labelSelector') ?? '').map((t) => parseRequirement(t, 'label'))
  return (obj) =>
    fields.every((r) => requirementMatches(r, fieldValue(obj, r.key))) &&
    labels.every((r) => requirementMatches(r, obj.metadata.labels?.[r.key]))
}

// ---------------------------------------------------------------------------------------------
// Store

interface StoredEvent {
  rv: number
  type: 'ADDED' | 'MODIFIED' | 'DELETED'
  resource: ResourceDef
  object: KubeObject
  /** The object before a MODIFIED event. */
  previous: KubeObject | undefined
}

const objectKey = (r: ResourceDef, namespace: string, name: string): string => `${r.plural}/${namespace}/${name}`

/**
 * The objects, the global resourceVersion and the event history. Stored objects are never mutated:
 * every write stores a new object, so events and lists can share them.
 */
class Store {
  private rv = INITIAL_RV
  private compacted = 0
  private readonly objects = new Map<string, KubeObject>()
  private history: StoredEvent[] = []
  private readonly listeners = new Set<(event: StoredEvent) => void>()

  get resourceVersion(): number {
    return this.rv
  }

  /** Watches from a resourceVersion older than this one get 410 Expired. */
  get compactedRv(): number {
    return this.compacted
  }

  get(r: ResourceDef, namespace: string, name: string): KubeObject | undefined {
    return this.objects.get(objectKey(r, namespace, name))
  }

  /** Objects of `r`, in `namespace` unless undefined, in key order like etcd. */
  list(r: ResourceDef, namespace: string | undefined): KubeObject[] {
    const prefix = namespace === undefined ? `${r.plural}/` : `${r.plural}/${namespace}/`
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => obj)
  }

  /** Stores `obj` (ADDED or MODIFIED) with the next resourceVersion; returns the stored object. */
  write(r: ResourceDef, obj: KubeObject): KubeObject {
    const key = objectKey(r, obj.metadata.namespace ?? '', obj.metadata.name ?? '')
    const previous = this.objects.get(key)
    const stored = this.stamp(obj)
    this.objects.set(key, stored)
    this.record({ rv: this.rv, type: previous ? 'MODIFIED' : 'ADDED', resource: r, object: stored, previous })
    return stored
  }

  /** Deletes `obj`; the DELETED event carries its last state with the deletion's resourceVersion. */
  remove(r: ResourceDef, obj: KubeObject): KubeObject {
    this.objects.delete(objectKey(r, obj.metadata.namespace ?? '', obj.metadata.name ?? ''))
    const tombstone = this.stamp(obj)
    this.record({ rv: this.rv, type: 'DELETED', resource: r, object: tombstone, previous: obj })
    return tombstone
  }

  eventsAfter(rv: number): StoredEvent[] {
    return this.history.filter((e) => e.rv > rv)
  }

  compact(upto: number): void {
    this.compacted = Math.max(this.compacted, Math.min(upto, this.rv))
    this.history = this.history.filter((e) => e.rv > this.compacted)
  }

  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private stamp(obj: KubeObject): KubeObject {
    this.rv++
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } }
  }

  private record(event: StoredEvent): void {
    this.history.push(event)
    for (const listener of [...this.listeners]) listener(event)
  }
}

// ---------------------------------------------------------------------------------------------
// Object preparation (what kube-apiserver's registry strategies do before storing)

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

const randomSuffix = (): string => [...randomBytes(5)].map((b) => 'bcdfghjklmnpqrstvwxz2456789'[b % 27]).join('')

/** Everything that counts towards metadata.generation: all but metadata and status. */
const generationContent = (obj: JsonRecord): JsonRecord => withoutKeys(obj, ['metadata', 'status'])

function prepareCreate(r: ResourceDef, body: unknown, namespace: string): KubeObject {
  const obj = requireObject(body)
  const meta = metaOf(obj)
  let name = typeof meta.name === 'string' ? meta.name : ''
  if (name === '' && typeof meta.generateName === 'string' && meta.generateName !== '') {
    name = meta.generateName + randomSuffix()
  }
  if (name === '') throw invalid(r, '', 'metadata.name: Required value: name or generateName is required')
  if (name.length > 253 || !NAME_RE.test(name)) {
    const rule = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
    throw invalid(r, name, `metadata.name: Invalid value: "${name}": ${rule}`)
  }
  if (r.namespaced && isSetAndDiffers(meta.namespace, namespace)) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
  }
  if (typeof meta.resourceVersion === 'string' && meta.resourceVersion !== '') {
    throw new KubeError(500, 'InternalError', 'resourceVersion should not be set on objects to be created')
  }
  if (r === EVENTS) validateEvent(obj, namespace, name)
  const created = isoSeconds(new Date())
  const metadata: KubeObjectMeta = { ...meta, name, uid: randomUUID(), creationTimestamp: created }
  if (r.namespaced) metadata.namespace = namespace
  else delete metadata.namespace
  if (r.custom) metadata.generation = 1
  const content = r.custom ? withoutKeys(obj, ['status']) : obj
  return { ...content, apiVersion: r.apiVersion, kind: r.kind, metadata }
}

/**
 * kube-apiserver's validation of a core/v1 Event that matters to clients: the event of a namespaced
 * object lives in that object's namespace; the event of a cluster-scoped object (empty
 * involvedObject.namespace) in `default` (or, for new-style events with eventTime, kube-system).
 */
function validateEvent(obj: JsonRecord, namespace: string, name: string): void {
  const involved = isRecord(obj.involvedObject) ? obj.involvedObject : undefined
  if (involved === undefined) throw invalid(EVENTS, name, 'involvedObject: Required value')
  const involvedNamespace = typeof involved.namespace === 'string' ? involved.namespace : ''
  const newStyle = typeof obj.eventTime === 'string' && obj.eventTime !== ''
  const allowed = involvedNamespace !== '' ? [involvedNamespace] : newStyle ? ['default', 'kube-system'] : ['default']
  if (!allowed.includes(namespace)) {
    throw invalid(
      EVENTS,
      name,
      `involvedObject.namespace: Invalid value: "${involvedNamespace}": does not match event.namespace`,
    )
  }
  if (newStyle && (typeof obj.reportingComponent !== 'string' || obj.reportingComponent === '')) {
    throw invalid(EVENTS, name, 'reportingComponent: Required value')
  }
  if (obj.type !== undefined && obj.type !== 'Normal' && obj.type !== 'Warning') {
    throw invalid(
      EVENTS,
      name,
      `type: Unsupported value: ${JSON.stringify(obj.type)}: supported values: "Normal", "Warning"`,
    )
  }
}

type UpdatePart = 'main' | 'status'

/**
 * The object an update (PUT or patched) turns `existing` into, or a KubeError. Server-owned
 * metadata is kept; a custom resource's main update keeps its status and a status update keeps all
 * else. The resourceVersion is `existing`'s: the store stamps a new one.
 */
function prepareUpdate(r: ResourceDef, existing: KubeObject, body: unknown, part: UpdatePart): KubeObject {
  const obj = requireObject(body)
  const meta = metaOf(obj)
  const name = existing.metadata.name ?? ''
  if (meta.name !== undefined && meta.name !== name) {
    const given = String(meta.name)
    throw badRequest(`the name of the object (${given}) does not match the name on the URL (${name})`)
  }
  if (r.namespaced && isSetAndDiffers(meta.namespace, existing.metadata.namespace)) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
  }
  if (isSetAndDiffers(meta.resourceVersion, existing.metadata.resourceVersion)) {
    throw modifiedConflict(r, name)
  }
  if (part === 'status') {
    const next: KubeObject = { ...existing }
    if (obj.status === undefined) delete next.status
    else next.status = obj.status
    return next
  }
  const serverOwned: KubeObjectMeta = {
    name,
    uid: existing.metadata.uid,
    creationTimestamp: existing.metadata.creationTimestamp,
    resourceVersion: existing.metadata.resourceVersion,
  }
  if (r.namespaced) serverOwned.namespace = existing.metadata.namespace
  const next: KubeObject = {
    ...(r.custom ? withoutKeys(obj, ['status']) : obj),
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { ...withoutKeys(meta, ['generation']), ...serverOwned },
  }
  if (r.custom) {
    if (existing.status !== undefined) next.status = existing.status
    const changed = !deepEqual(generationContent(next), generationContent(existing))
    next.metadata.generation = (existing.metadata.generation ?? 1) + (changed ? 1 : 0)
  }
  return next
}

function checkDeletePreconditions(r: ResourceDef, existing: KubeObject, body: string): void {
  if (body.trim() === '') return
  const options = requireObject(parseJson(body))
  const pre = isRecord(options.preconditions) ? options.preconditions : {}
  const name = existing.metadata.name ?? ''
  if (typeof pre.uid === 'string' && pre.uid !== existing.metadata.uid) {
    const why = `UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`
    throw conflict(r, name, `Precondition failed: ${why}`)
  }
  if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== existing.metadata.resourceVersion) {
    const why =
      `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion ` +
      `in record (${existing.metadata.resourceVersion}). The object might have been modified`
    throw conflict(r, name, why)
  }
}

/** kube-apiserver omits kind and apiVersion from the items of typed (built-in) lists. */
const listItem = (r: ResourceDef, obj: KubeObject): JsonRecord =>
  r.custom ? obj : withoutKeys(obj, ['kind', 'apiVersion'])

// ---------------------------------------------------------------------------------------------
// Routing

interface CollectionRoute {
  type: 'collection'
  resource: ResourceDef
  /** Undefined: every namespace (or a cluster-scoped resource). */
  namespace: string | undefined
}

interface ObjectRoute {
  type: 'object'
  resource: ResourceDef
  /** '' for cluster-scoped resources. */
  namespace: string
  name: string
  part: UpdatePart
}

type Route = CollectionRoute | ObjectRoute

function decodeSegments(pathname: string): string[] | undefined {
  try {
    return pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s))
  } catch {
    return undefined
  }
}

/** /api/v1/{configmaps,events} and /api/v1/namespaces/{ns}/{configmaps,events}[/{name}] */
function coreRoute(segs: string[]): Route | undefined {
  const core = (plural: string | undefined) => [CONFIGMAPS, EVENTS].find((r) => r.plural === plural)
  if (segs.length === 3) {
    const resource = core(segs[2])
    return resource && { type: 'collection', resource, namespace: undefined }
  }
  const resource = core(segs[4])
  if (segs[2] !== 'namespaces' || resource === undefined) return undefined
  const namespace = segs[3]!
  if (segs.length === 5) return { type: 'collection', resource, namespace }
  if (segs.length === 6) return { type: 'object', resource, namespace, name: segs[5]!, part: 'main' }
  return undefined
}

function mappingRoute(segs: string[]): Route | undefined {
  if (segs.length === 4) return { type: 'collection', resource: MAPPINGS, namespace: undefined }
  const name = segs[4]!
  if (segs.length === 5) return { type: 'object', resource: MAPPINGS, namespace: '', name, part: 'main' }
  if (segs.length === 6 && segs[5] === 'status') {
    return { type: 'object', resource: MAPPINGS, namespace: '', name, part: 'status' }
  }
  return undefined
}

function parseRoute(pathname: string): Route | undefined {
  const segs = decodeSegments(pathname)
  if (segs === undefined) return undefined
  if (segs[0] === 'api' && segs[1] === 'v1') return coreRoute(segs)
  if (segs[0] === 'apis' && segs.slice(1, 4).join('/') === `${MAPPINGS.apiVersion}/${MAPPINGS.plural}`) {
    return mappingRoute(segs)
  }
  return undefined
}

function apiResource(r: ResourceDef): JsonRecord {
  return {
    name: r.plural,
    singularName: r.kind.toLowerCase(),
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: VERBS,
  }
}

/** GET /api, /apis, /version and the group-version resource lists. */
function discovery(pathname: string, hostPort: string): JsonRecord | undefined {
  const path = pathname.replace(/\/+$/, '')
  const groupVersion = { groupVersion: MAPPINGS.apiVersion, version: MAPPINGS.version }
  const group = { name: MAPPINGS.group, versions: [groupVersion], preferredVersion: groupVersion }
  switch (path) {
    case '/version':
      return { major: '1', minor: '31', gitVersion: 'v1.31.0-fake', platform: 'linux/amd64' }
    case '/api':
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: hostPort }],
      }
    case '/api/v1':
      return { kind: 'APIResourceList', groupVersion: 'v1', resources: [apiResource(CONFIGMAPS), apiResource(EVENTS)] }
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] }
    case `/apis/${MAPPINGS.group}`:
      return { kind: 'APIGroup', apiVersion: 'v1', ...group }
    case `/apis/${MAPPINGS.apiVersion}`: {
      const verbs = ['get', 'patch', 'update']
      const status = { ...apiResource(MAPPINGS), name: `${MAPPINGS.plural}/status`, verbs }
      const resources = [apiResource(MAPPINGS), status]
      return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: MAPPINGS.apiVersion, resources }
    }
    default:
      return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

function responseHeaders(): Record<string, string> {
  return {
    'content-type': 'application/json',
    'cache-control': 'no-cache, private',
    'audit-id': randomUUID(),
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return
  const text = JSON.stringify(body)
  res.writeHead(code, { ...responseHeaders(), 'content-length': String(Buffer.byteLength(text)) })
  res.end(text)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    })
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        reject(new KubeError(413, 'RequestEntityTooLarge', 'Request entity too large'))
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'))
      }
    })
    req.on('error', reject)
  })
}

/** undefined: no resourceVersion, or "0" (start from the current state). */
function parseWatchRv(value: string | null): number | undefined {
  if (value === null || value === '' || value === '0') return undefined
  if (!/^\d+$/.test(value)) {
    throw badRequest(`resourceVersion: Invalid value: "${value}": must be an unsigned integer`)
  }
  return Number(value)
}

const isTrue = (value: string | null): boolean => value === 'true' || value === '1'

// ---------------------------------------------------------------------------------------------
// Watches

interface WatchSpec {
  resource: ResourceDef
  namespace: string | undefined
  matches: Matcher
  /** undefined: start with synthetic ADDED events for the current objects. */
  fromRv: number | undefined
  sendInitialEvents: boolean
  bookmarkIntervalMs: number | undefined
  timeoutMs: number | undefined
}

/** One open watch stream: replays history, then forwards live events that match. */
class WatchSession {
  private readonly res: ServerResponse
  private readonly spec: WatchSpec
  private readonly store: Store
  private readonly onEnd: (session: WatchSession) => void
  private readonly timers: NodeJS.Timeout[] = []
  private unsubscribe: (() => void) | undefined
  private ended = false

  constructor(res: ServerResponse, spec: WatchSpec, store: Store, onEnd: (session: WatchSession) => void) {
    this.res = res
    this.spec = spec
    this.store = store
    this.onEnd = onEnd
    res.once('close', () => this.cleanup())
  }

  start(): void {
    this.res.writeHead(200, { ...responseHeaders(), 'transfer-encoding': 'chunked' })
    this.res.flushHeaders()
    const { fromRv } = this.spec
    if (fromRv !== undefined && fromRv < this.store.compactedRv) {
      const status = expired(fromRv, this.store.compactedRv).status
      this.send({ type: 'ERROR', object: status as unknown as KubeObject })
      this.end()
      return
    }
    if (fromRv === undefined || this.spec.sendInitialEvents) this.sendCurrentState()
    else for (const event of this.store.eventsAfter(fromRv)) this.forward(event)
    this.unsubscribe = this.store.subscribe((event) => this.forward(event))
    this.startTimers()
  }

  /** Ends the stream cleanly (final chunk). */
  end(): void {
    this.cleanup()
    if (!this.res.writableEnded) this.res.end()
  }

  /** Destroys the connection: the client sees it cut, without the final chunk. */
  drop(): void {
    this.cleanup()
    this.res.socket?.destroy()
    this.res.destroy()
  }

  private sendCurrentState(): void {
    for (const obj of this.store.list(this.spec.resource, this.spec.namespace)) {
      if (this.spec.matches(obj)) this.send({ type: 'ADDED', object: obj })
    }
    if (this.spec.sendInitialEvents) this.sendBookmark({ [INITIAL_EVENTS_END]: 'true' })
  }

  private startTimers(): void {
    const { bookmarkIntervalMs, timeoutMs } = this.spec
    if (bookmarkIntervalMs !== undefined) {
      this.timers.push(setInterval(() => this.sendBookmark(), bookmarkIntervalMs))
    }
    if (timeoutMs !== undefined) this.timers.push(setTimeout(() => this.end(), timeoutMs))
  }

  private sendBookmark(annotations?: Record<string, string>): void {
    const { kind, apiVersion } = this.spec.resource
    const metadata: KubeObjectMeta = { resourceVersion: String(this.store.resourceVersion) }
    if (annotations !== undefined) metadata.annotations = annotations
    this.send({ type: 'BOOKMARK', object: { kind, apiVersion, metadata } })
  }

  /** Translates a stored change into what this watch sees, selector transitions included. */
  private forward(event: StoredEvent): void {
    const { resource, namespace, matches } = this.spec
    if (event.resource !== resource) return
    if (namespace !== undefined && event.object.metadata.namespace !== namespace) return
    const now = matches(event.object)
    if (event.type === 'MODIFIED' && event.previous !== undefined) {
      const before = matches(event.previous)
      if (before && !now) return this.send({ type: 'DELETED', object: event.object })
      if (!before && now) return this.send({ type: 'ADDED', object: event.object })
    }
    if (now) this.send({ type: event.type, object: event.object })
  }

  private send(event: KubeWatchEvent): void {
    if (this.res.writableEnded || this.res.destroyed) return
    this.res.write(JSON.stringify(event) + '\n')
  }

  private cleanup(): void {
    if (this.ended) return
    this.ended = true
    for (const timer of this.timers) clearTimeout(timer)
    this.unsubscribe?.()
    this.onEnd(this)
  }
}

// ---------------------------------------------------------------------------------------------
// The API

interface ApiState {
  store: Store
  watches: Set<WatchSession>
  bookmarkIntervalMs: number
  conflictsPending: number
  lists: number
  watchCount: number
}

interface Reply {
  code: number
  body: unknown
}

/** The REST semantics, independent from sockets and faults. */
class KubeApi {
  private readonly state: ApiState

  constructor(state: ApiState) {
    this.state = state
  }

  handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://fake-kube')
    const method = req.method ?? 'GET'
    const route = parseRoute(url.pathname)
    if (route === undefined) {
      const doc = method === 'GET' ? discovery(url.pathname, req.headers.host ?? '') : undefined
      if (doc === undefined) throw pathNotFound()
      return sendJson(res, 200, doc)
    }
    if (route.type === 'collection') return this.collection(route, method, url.searchParams, body, res)
    const reply = this.object(route, method, req.headers['content-type'], body)
    sendJson(res, reply.code, reply.body)
  }

  private collection(
    route: CollectionRoute,
    method: string,
    query: URLSearchParams,
    body: string,
    res: ServerResponse,
  ): void {
    if (method === 'GET' && isTrue(query.get('watch'))) return this.watch(route, query, res)
    if (method === 'GET') return sendJson(res, 200, this.list(route, query))
    if (method === 'POST' && (route.namespace !== undefined || !route.resource.namespaced)) {
      const created = this.create(route.resource, route.namespace ?? '', parseJson(body))
      return sendJson(res, 201, created)
    }
    throw methodNotAllowed()
  }

  private list(route: CollectionRoute, query: URLSearchParams): JsonRecord {
    const matches = parseSelectors(query)
    this.state.lists++
    const r = route.resource
    const items = this.state.store.list(r, route.namespace).filter(matches)
    return {
      kind: r.listKind,
      apiVersion: r.apiVersion,
      metadata: { resourceVersion: String(this.state.store.resourceVersion) },
      items: items.map((obj) => listItem(r, obj)),
    }
  }

  private watch(route: CollectionRoute, query: URLSearchParams, res: ServerResponse): void {
    const timeout = Number(query.get('timeoutSeconds') ?? '')
    const { bookmarkIntervalMs } = this.state
    const spec: WatchSpec = {
      resource: route.resource,
      namespace: route.namespace,
      matches: parseSelectors(query),
      fromRv: parseWatchRv(query.get('resourceVersion')),
      sendInitialEvents: isTrue(query.get('sendInitialEvents')),
      bookmarkIntervalMs: isTrue(query.get('allowWatchBookmarks')) ? bookmarkIntervalMs : undefined,
      timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : undefined,
    }
    this.state.watchCount++
    const session = new WatchSession(res, spec, this.state.store, (s) => this.state.watches.delete(s))
    this.state.watches.add(session)
    session.start()
  }

  create(r: ResourceDef, namespace: string, body: unknown): KubeObject {
    const obj = prepareCreate(r, body, namespace)
    const name = obj.metadata.name ?? ''
    if (this.state.store.get(r, namespace, name) !== undefined) throw alreadyExists(r, name)
    return this.state.store.write(r, obj)
  }

  /** Writes `next` unless it equals `existing` (kube-apiserver skips no-op writes). */
  update(r: ResourceDef, existing: KubeObject, next: KubeObject): KubeObject {
    return deepEqual(next, existing) ? existing : this.state.store.write(r, next)
  }

  private object(route: ObjectRoute, method: string, contentType: string | undefined, body: string): Reply {
    const { resource: r, namespace, name, part } = route
    const existing = this.state.store.get(r, namespace, name)
    switch (method) {
      case 'GET':
        if (existing === undefined) throw notFound(r, name)
        return { code: 200, body: existing }
      case 'PUT':
        return this.put(route, existing, parseJson(body))
      case 'PATCH': {
        if (existing === undefined) throw notFound(r, name)
        const patched = applyPatch(r, existing, contentType, body)
        return { code: 200, body: this.update(r, existing, prepareUpdate(r, existing, patched, part)) }
      }
      case 'DELETE':
        if (part !== 'main') throw methodNotAllowed()
        if (existing === undefined) throw notFound(r, name)
        checkDeletePreconditions(r, existing, body)
        return { code: 200, body: this.deleteReply(r, this.state.store.remove(r, existing)) }
      default:
        throw methodNotAllowed()
    }
  }

  private put(route: ObjectRoute, existing: KubeObject | undefined, body: unknown): Reply {
    const { resource: r, namespace, name, part } = route
    if (existing === undefined) {
      const rv = isRecord(body) ? metaOf(body).resourceVersion : undefined
      if (r.custom || part !== 'main' || (typeof rv === 'string' && rv !== '')) throw notFound(r, name)
      return { code: 201, body: this.create(r, namespace, body) }
    }
    if (this.state.conflictsPending > 0) {
      this.state.conflictsPending--
      throw modifiedConflict(r, name)
    }
    return { code: 200, body: this.update(r, existing, prepareUpdate(r, existing, body, part)) }
  }

  /** Built-in resources answer a success Status, custom resources the deleted object. */
  private deleteReply(r: ResourceDef, deleted: KubeObject): unknown {
    if (r.custom) return deleted
    const details = { ...objectDetails(r, deleted.metadata.name ?? ''), uid: deleted.metadata.uid }
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details }
  }
}

// ---------------------------------------------------------------------------------------------
// Server and control surface

function kubeconfigYaml(server: string, caPem: string | undefined, token: string | undefined): string {
  const tls =
    caPem === undefined
      ? '    insecure-skip-tls-verify: true'
      : `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`
  const user = token === undefined ? '  user: {}' : `  user:\n    token: ${JSON.stringify(token)}`
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fake-kube',
    '  cluster:',
    `    server: ${server}`,
    tls,
    'contexts:',
    '- name: fake-kube',
    '  context:',
    '    cluster: fake-kube',
    '    user: fake-kube-user',
    'current-context: fake-kube',
    'users:',
    '- name: fake-kube-user',
    user,
    '',
  ].join('\n')
}

async function createFakeKubeServer(
  tls: boolean,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  clientCa: string | undefined,
): Promise<{ server: Server; caPem: string | undefined }> {
  if (!tls) return { server: createHttpServer(handler), caPem: undefined }
  const { certPem, keyPem } = await generateServingCert({
    address: '127.0.0.1',
    hostname: 'localhost',
    now: new Date(),
  })
  // A client certificate is asked for, not required: the handler answers 401 without one, as
  // kube-apiserver does (it accepts other credentials too).
  const mtls = clientCa === undefined ? {} : { ca: clientCa, requestCert: true, rejectUnauthorized: false }
  return { server: createHttpsServer({ cert: certPem, key: keyPem, ...mtls }, handler), caPem: certPem }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')
  return match?.[1]?.trim()
}

export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const store = new Store()
  const state: ApiState = {
    store,
    watches: new Set(),
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? DEFAULT_BOOKMARK_INTERVAL_MS,
    conflictsPending: 0,
    lists: 0,
    watchCount: 0,
  }
  const api = new KubeApi(state)
  const requests: FakeKubeRequest[] = []
  const sockets = new Set<Socket>()
  let down = false
  let closed = false

  const authenticated = (req: IncomingMessage): boolean => {
    if (opts.requireToken === undefined && opts.clientCa === undefined) return true
    if (opts.requireToken !== undefined && bearerToken(req) === opts.requireToken) return true
    return opts.clientCa !== undefined && (req.socket as TLSSocket).authorized === true
  }

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const body = await readBody(req)
      if (!authenticated(req)) throw unauthorized()
      api.handle(req, res, body)
    } catch (err) {
      const failure = err instanceof KubeError ? err : new KubeError(500, 'InternalError', String(err))
      const { status } = failure
      sendJson(res, status.code, status)
    }
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    req.on('error', () => {})
    res.on('error', () => {})
    if (down || closed) {
      req.socket.destroy()
      return
    }
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/' })
    void answer(req, res)
  }

  const { server, caPem } = await createFakeKubeServer(opts.tls ?? false, onRequest, opts.clientCa)
  server.on('connection', (socket: Socket) => {
    if (down || closed) {
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_err, socket: Socket) => socket.destroy())
  server.on('tlsClientError', () => {})
  const port = await listen(server)
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`

  const dropWatches = (): void => {
    for (const watch of [...state.watches]) watch.drop()
  }

  const putObject = (r: ResourceDef, namespace: string, name: string, content: JsonRecord): KubeObject => {
    const existing = store.get(r, namespace, name)
    if (existing === undefined) {
      return structuredClone(api.create(r, namespace, { metadata: { name }, ...content }))
    }
    const next = prepareUpdate(r, existing, { ...existing, ...content, metadata: existing.metadata }, 'main')
    return structuredClone(api.update(r, existing, next))
  }

  const removeObject = (r: ResourceDef, namespace: string, name: string): boolean => {
    const existing = store.get(r, namespace, name)
    if (existing === undefined) return false
    store.remove(r, existing)
    return true
  }

  let closing: Promise<void> | undefined
  return {
    url,
    caPem,
    get resourceVersion(): string {
      return String(store.resourceVersion)
    },
    get requests(): FakeKubeRequest[] {
      return requests.map((r) => ({ ...r }))
    },
    get lists(): number {
      return state.lists
    },
    get watches(): number {
      return state.watchCount
    },
    get openWatches(): number {
      return state.watches.size
    },
    setConfigMap: (namespace, name, data) => putObject(CONFIGMAPS, namespace, name, { data: { ...data } }),
    deleteConfigMap: (namespace, name) => removeObject(CONFIGMAPS, namespace, name),
    putMapping: (name, spec) => putObject(MAPPINGS, '', name, { spec: structuredClone(spec) }),
    deleteMapping: (name) => removeObject(MAPPINGS, '', name),
    events: (namespace) =>
      store
        .list(EVENTS, namespace)
        .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
        .map((e) => structuredClone(e)),
    getObject(resource, namespace, name) {
      const obj = store.get(RESOURCES[resource], RESOURCES[resource].namespaced ? namespace : '', name)
      return obj === undefined ? undefined : structuredClone(obj)
    },
    compact(uptoRv) {
      store.compact(uptoRv === undefined ? store.resourceVersion : Number(uptoRv))
    },
    dropWatches,
    endWatches() {
      for (const watch of [...state.watches]) watch.end()
    },
    setDown(value) {
      down = value
      if (!down) return
      dropWatches()
      for (const socket of sockets) socket.destroy()
    },
    conflictNextUpdates(n) {
      state.conflictsPending = Math.max(0, Math.floor(n))
    },
    kubeconfigFor: (token) => kubeconfigYaml(url, caPem, token ?? opts.requireToken),
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        closed = true
        dropWatches()
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
        sockets.clear()
      })
      return closing
    },
  }
}
