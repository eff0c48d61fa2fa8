import { connect } from 'node:net'
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeKube, startFakeKube } from './fake-kube.js'

const NS = 'kube-system'
const CM_PATH = `/api/v1/namespaces/${NS}/configmaps`
const GROUP = 'iamauthenticator.k8s.aws'
const VERSION = 'v1alpha1'
const PLURAL = 'iamidentitymappings'
const MAPPINGS_PATH = `/apis/${GROUP}/${VERSION}/${PLURAL}`
const MAPPING = { group: GROUP, version: VERSION, plural: PLURAL }
const BOB_ARN = 'arn:aws:iam::111122223333:user/bob'

interface SeenObject {
  kind?: string
  apiVersion?: string
  metadata: { name?: string; resourceVersion?: string }
  data?: Record<string, string>
  status?: unknown
  [key: string]: unknown
}

interface SeenEvent {
  type: string
  object: SeenObject
}

type WatchQuery = Record<string, string | number | boolean | undefined>

interface WatchHandle {
  events: SeenEvent[]
  /** Resolves with the done callback's argument. */
  done: Promise<unknown>
  controller: AbortController
}

/** The error code of a failed request or watch, looking through undici's `fetch failed`/`terminated` wrappers. */
function errorCode(err: unknown): string | undefined {
  const e = err as { name?: string; code?: unknown; cause?: { code?: string } } | undefined
  if (e?.name === 'AbortError') return 'AbortError' // a DOMException, whose code is the number 20
  return typeof e?.code === 'string' ? e.code : e?.cause?.code
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

function kubeConfig(fake: FakeKube, token?: string): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromString(fake.kubeconfigFor(token))
  return kc
}

async function startWatch(kc: KubeConfig, path: string, query: WatchQuery): Promise<WatchHandle> {
  const events: SeenEvent[] = []
  let finish: (err: unknown) => void = () => {}
  const done = new Promise<unknown>((resolve) => (finish = resolve))
  const onEvent = (type: string, object: SeenObject): number => events.push({ type, object })
  const controller = await new Watch(kc).watch(path, query, onEvent, finish)
  return { events, done, controller }
}

const types = (w: WatchHandle): string[] => w.events.map((e) => e.type)

const byType = (w: WatchHandle, type: string): SeenEvent[] => w.events.filter((e) => e.type === type)

/** The ApiException a client-node call failed with, its body parsed (client-node leaves it a string). */
async function apiError(call: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  const err = await call.then(
    () => expect.fail('the call succeeded'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ApiException)
  const { code, body } = err as ApiException<unknown>
  return { code, status: typeof body === 'string' && body !== '' ? JSON.parse(body) : {} }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1, to see the chunk framing itself

interface RawResponse {
  head: string
  chunks: string[]
  /** The zero-length final chunk arrived. */
  terminated: boolean
}

function parseChunked(raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n')
  const head = raw.subarray(0, headEnd).toString('latin1')
  const chunks: string[] = []
  let pos = headEnd + 4
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', pos)
    if (lineEnd < 0) return { head, chunks, terminated: false }
    const size = parseInt(raw.subarray(pos, lineEnd).toString('latin1'), 16)
    if (size === 0) return { head, chunks, terminated: true }
    if (lineEnd + 2 + size + 2 > raw.length) return { head, chunks, terminated: false }
    chunks.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8'))
    pos = lineEnd + 2 + size + 2
  }
}

/** Sends a GET and collects every byte until the server closes the connection. */
function rawGet(url: string, path: string): { received: () => RawResponse; closed: Promise<RawResponse> } {
  const { hostname, port } = new URL(url)
  const data: Buffer[] = []
  const socket = connect(Number(port), hostname)
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`)
  socket.on('data', (chunk: Buffer) => data.push(chunk))
  const closed = new Promise<RawResponse>((resolve) => {
    socket.on('error', () => {})
    socket.on('close', () => resolve(parseChunked(Buffer.concat(data))))
  })
  return { received: () => parseChunked(Buffer.concat(data)), closed }
}

describe('fake-kube, driven by @kubernetes/client-node', () => {
  let fake: FakeKube
  let kc: KubeConfig
  let core: CoreV1Api
  let custom: CustomObjectsApi

  beforeEach(async () => {
    fake = await startFakeKube({ bookmarkIntervalMs: 50 })
    kc = kubeConfig(fake)
    core = kc.makeApiClient(CoreV1Api)
    custom = kc.makeApiClient(CustomObjectsApi)
  })

  afterEach(async () => {
    await fake.close()
  })

  it('lists ConfigMaps at the global resourceVersion, honouring fieldSelector', async () => {
    fake.setConfigMap(NS, 'aws-auth', { mapRoles: '[]' })
    fake.setConfigMap(NS, 'other', { a: '1' })
    fake.setConfigMap('default', 'aws-auth', { b: '2' })

    const fieldSelector = 'metadata.name=aws-auth'
    const list = await core.listNamespacedConfigMap({ namespace: NS, fieldSelector })

    expect(list.kind).toBe('ConfigMapList')
    expect(list.metadata?.resourceVersion).toBe(fake.resourceVersion)
    expect(list.items.map((cm) => [cm.metadata?.namespace, cm.metadata?.name, cm.data])).toEqual([
      [NS, 'aws-auth', { mapRoles: '[]' }],
    ])
    // typed list items come without kind/apiVersion from a real API server too
    expect(list.items[0]?.kind).toBeUndefined()
    expect(fake.lists).toBe(1)
    const path = `${CM_PATH}?fieldSelector=metadata.name%3Daws-auth`
    expect(fake.requests.at(-1)).toEqual({ method: 'GET', path })

    const all = await core.listConfigMapForAllNamespaces()
    expect(all.items.map((cm) => `${cm.metadata?.namespace}/${cm.metadata?.name}`)).toEqual([
      'default/aws-auth',
      `${NS}/aws-auth`,
      `${NS}/other`,
    ])
    const bad = await apiError(core.listNamespacedConfigMap({ namespace: NS, fieldSelector: 'data.x=1' }))
    expect(bad.code).toBe(400)
    expect(bad.status.message).toBe('field label not supported: data.x')
  })

  it('watches from a list resourceVersion: MODIFIED, DELETED, BOOKMARK, others filtered out', async () => {
    fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    const list = await core.listNamespacedConfigMap({ namespace: NS })
    const rv = list.metadata!.resourceVersion!
    const watch = await startWatch(kc, CM_PATH, {
      resourceVersion: rv,
      allowWatchBookmarks: true,
      fieldSelector: 'metadata.name=aws-auth',
    })
    await waitFor(() => fake.openWatches === 1, 'the watch to open')
    expect(fake.requests.at(-1)?.path).toBe(
      `${CM_PATH}?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true` +
        '&fieldSelector=metadata.name%3Daws-auth',
    )

    fake.setConfigMap(NS, 'other', { ignored: 'yes' })
    const modified = fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    await waitFor(() => byType(watch, 'MODIFIED').length === 1, 'MODIFIED')
    fake.deleteConfigMap(NS, 'aws-auth')
    await waitFor(() => byType(watch, 'DELETED').length === 1, 'DELETED')
    await waitFor(() => byType(watch, 'BOOKMARK').length >= 2, 'two bookmarks')

    const [mod] = byType(watch, 'MODIFIED')
    expect(mod?.object).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1', data: { v: '2' } })
    expect(mod?.object.metadata.resourceVersion).toBe(modified.metadata.resourceVersion)
    const [del] = byType(watch, 'DELETED')
    const deletedRv = Number(del?.object.metadata.resourceVersion)
    expect(deletedRv).toBeGreaterThan(Number(modified.metadata.resourceVersion))
    expect(del?.object.metadata.resourceVersion).toBe(fake.resourceVersion)
    const [bookmark] = byType(watch, 'BOOKMARK')
    const metadata = { resourceVersion: expect.any(String) }
    expect(bookmark?.object).toEqual({ kind: 'ConfigMap', apiVersion: 'v1', metadata })
    const names = watch.events.filter((e) => e.type !== 'BOOKMARK').map((e) => e.object.metadata.name)
    expect(names).toEqual(['aws-auth', 'aws-auth'])
    expect(fake.watches).toBe(1)

    watch.controller.abort()
    await waitFor(() => fake.openWatches === 0, 'the aborted watch to close')
  })

  it('replays every change after the given resourceVersion, in order, before live ones', async () => {
    const first = fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    fake.setConfigMap(NS, 'b', { v: '1' })
    fake.deleteConfigMap(NS, 'b')
    const watch = await startWatch(kc, CM_PATH, { resourceVersion: first.metadata.resourceVersion })
    await waitFor(() => watch.events.length === 3, 'the replayed events')
    fake.setConfigMap(NS, 'aws-auth', { v: '3' })
    await waitFor(() => watch.events.length === 4, 'the live event')

    expect(watch.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'MODIFIED aws-auth',
      'ADDED b',
      'DELETED b',
      'MODIFIED aws-auth',
    ])
    const rvs = watch.events.map((e) => Number(e.object.metadata.resourceVersion))
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b))
    watch.controller.abort()
  })

  it('starts a watch without resourceVersion (or "0") with synthetic ADDED events', async () => {
    fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    fake.setConfigMap(NS, 'b', { v: '1' })
    for (const query of [{}, { resourceVersion: '0' }]) {
      const watch = await startWatch(kc, CM_PATH, query)
      await waitFor(() => watch.events.length === 2, 'the initial events')
      const seen = watch.events.map((e) => `${e.type} ${e.object.metadata.name}`)
      expect(seen).toEqual(['ADDED aws-auth', 'ADDED b'])
      watch.controller.abort()
    }
  })

  it('answers a watch from a compacted resourceVersion with a 410 ERROR event, then ends it', async () => {
    const old = fake.setConfigMap(NS, 'aws-auth', { v: '1' }).metadata.resourceVersion!
    fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    fake.compact()

    const watch = await startWatch(kc, CM_PATH, { resourceVersion: old })

    expect(await watch.done).toBeNull()
    expect(watch.events).toEqual([
      {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${old} (${fake.resourceVersion})`,
          reason: 'Expired',
          code: 410,
        },
      },
    ])
    // the current resourceVersion is still watchable after a compaction
    const fresh = await startWatch(kc, CM_PATH, { resourceVersion: fake.resourceVersion })
    fake.setConfigMap(NS, 'aws-auth', { v: '3' })
    await waitFor(() => types(fresh).includes('MODIFIED'), 'MODIFIED after compaction')
    fresh.controller.abort()
  })

  it('dropWatches cuts the stream: the done callback gets an error', async () => {
    const watch = await startWatch(kc, CM_PATH, { resourceVersion: fake.resourceVersion })
    await waitFor(() => fake.openWatches === 1, 'the watch to open')

    fake.dropWatches()

    const err = (await watch.done) as NodeJS.ErrnoException
    expect(err).toBeInstanceOf(Error)
    // client-node 2 reads watches through undici's fetch: a cut stream is `terminated`, caused by a socket error
    expect(errorCode(err)).toBe('UND_ERR_SOCKET')
    expect(fake.openWatches).toBe(0)
  })

  it('closes a watch cleanly after timeoutSeconds: done(null)', async () => {
    const started = Date.now()
    const watch = await startWatch(kc, CM_PATH, { resourceVersion: fake.resourceVersion, timeoutSeconds: 1 })
    expect(await watch.done).toBeNull()
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(fake.openWatches).toBe(0)
  })

  it('creates, reads, replaces, patches and deletes ConfigMaps through CoreV1Api', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'aws-auth', labels: { app: 'x' } }, data: { a: '1' } },
    })
    const resourceVersion = fake.resourceVersion
    expect(created.metadata).toMatchObject({ name: 'aws-auth', namespace: NS, resourceVersion })
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/)

    const duplicate = await apiError(
      core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'aws-auth' } } }),
    )
    expect(duplicate.code).toBe(409)
    expect(duplicate.status).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 })

    const read = await core.readNamespacedConfigMap({ name: 'aws-auth', namespace: NS })
    const replaced = await core.replaceNamespacedConfigMap({
      name: 'aws-auth',
      namespace: NS,
      body: { ...read, data: { a: '2' } },
    })
    expect(replaced.data).toEqual({ a: '2' })
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion))

    // a no-op update is not a write: same resourceVersion, no event (etcd skips it)
    const rvBefore = fake.resourceVersion
    const same = await core.replaceNamespacedConfigMap({ name: 'aws-auth', namespace: NS, body: replaced })
    expect(same.metadata?.resourceVersion).toBe(rvBefore)
    expect(fake.resourceVersion).toBe(rvBefore)

    // client-node's default patch content type is JSON patch
    const jsonPatched = await core.patchNamespacedConfigMap({
      name: 'aws-auth',
      namespace: NS,
      body: [{ op: 'add', path: '/data/b', value: '3' }],
    })
    expect(jsonPatched.data).toEqual({ a: '2', b: '3' })
    const mergePatched = await core.patchNamespacedConfigMap(
      { name: 'aws-auth', namespace: NS, body: { data: { a: null, c: '4' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    expect(mergePatched.data).toEqual({ b: '3', c: '4' })
    const strategic = await core.patchNamespacedConfigMap(
      { name: 'aws-auth', namespace: NS, body: { metadata: { labels: { app: 'y' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    )
    expect(strategic.metadata?.labels).toEqual({ app: 'y' })
    const patchTypes = fake.requests.filter((r) => r.method === 'PATCH').length
    expect(patchTypes).toBe(3)

    const failedTest = await apiError(
      core.patchNamespacedConfigMap({
        name: 'aws-auth',
        namespace: NS,
        body: [{ op: 'test', path: '/data/b', value: 'nope' }],
      }),
    )
    expect(failedTest.code).toBe(422)

    const deleted = await core.deleteNamespacedConfigMap({ name: 'aws-auth', namespace: NS })
    const details = { name: 'aws-auth', kind: 'configmaps' }
    expect(deleted).toMatchObject({ kind: 'Status', status: 'Success', details })
    const missing = await apiError(core.readNamespacedConfigMap({ name: 'aws-auth', namespace: NS }))
    expect(missing.code).toBe(404)
    expect(missing.status).toMatchObject({ reason: 'NotFound', message: 'configmaps "aws-auth" not found' })
    expect(fake.getObject('configmaps', NS, 'aws-auth')).toBeUndefined()
  })

  it('answers updates with a stale resourceVersion, and forced conflicts, with 409 Conflict', async () => {
    const v1 = fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    const stale = { ...v1, data: { v: 'stale' } } as V1ConfigMap

    const replace = core.replaceNamespacedConfigMap({ name: 'aws-auth', namespace: NS, body: stale })
    const conflict = await apiError(replace)
    expect(conflict.code).toBe(409)
    expect(conflict.status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'Operation cannot be fulfilled on configmaps "aws-auth": the object has been modified; ' +
        'please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'aws-auth', kind: 'configmaps' },
      code: 409,
    })
    expect(fake.getObject('configmaps', NS, 'aws-auth')?.data).toEqual({ v: '2' })

    fake.conflictNextUpdates(1)
    const current = await core.readNamespacedConfigMap({ name: 'aws-auth', namespace: NS })
    const body = { ...current, data: { v: '3' } }
    const forced = await apiError(core.replaceNamespacedConfigMap({ name: 'aws-auth', namespace: NS, body }))
    expect(forced.status.reason).toBe('Conflict')
    const retried = await core.replaceNamespacedConfigMap({ name: 'aws-auth', namespace: NS, body })
    expect(retried.data).toEqual({ v: '3' })
  })

  it('serves IAMIdentityMappings through CustomObjectsApi: list, watch, status subresource', async () => {
    fake.putMapping('alice', { arn: 'arn:aws:iam::111122223333:user/alice', username: 'alice' })
    const created = await custom.createClusterCustomObject({
      ...MAPPING,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'IAMIdentityMapping',
        metadata: { name: 'bob' },
        spec: { arn: BOB_ARN, username: 'bob', groups: ['devs'] },
        status: { ignored: 'on create' },
      },
    })
    expect(created).toMatchObject({ metadata: { name: 'bob', generation: 1 } })
    expect(created.status).toBeUndefined()

    const list = await custom.listClusterCustomObject({ ...MAPPING })
    const metadata = { resourceVersion: fake.resourceVersion }
    expect(list).toMatchObject({ kind: 'IAMIdentityMappingList', metadata })
    const items = list.items as SeenObject[]
    expect(items.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual([
      'IAMIdentityMapping/alice',
      'IAMIdentityMapping/bob',
    ])

    const watch = await startWatch(kc, MAPPINGS_PATH, { resourceVersion: list.metadata.resourceVersion })
    const withStatus = await custom.replaceClusterCustomObjectStatus({
      ...MAPPING,
      name: 'bob',
      body: { ...created, spec: { ignored: 'by /status' }, status: { canonicalARN: BOB_ARN } },
    })
    expect(withStatus.status).toEqual({ canonicalARN: BOB_ARN })
    expect(withStatus.spec).toEqual(created.spec)
    expect(withStatus.metadata.generation).toBe(1)
    expect(fake.requests.at(-1)).toEqual({ method: 'PUT', path: `${MAPPINGS_PATH}/bob/status` })

    const respecced = await custom.replaceClusterCustomObject({
      ...MAPPING,
      name: 'bob',
      body: {
        ...withStatus,
        spec: { ...created.spec, groups: ['ops'] },
        status: { ignored: 'by the main resource' },
      },
    })
    expect(respecced.metadata.generation).toBe(2)
    expect(respecced.status).toEqual(withStatus.status)

    const merged = await custom.patchClusterCustomObject(
      { ...MAPPING, name: 'bob', body: { spec: { username: 'robert' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    expect(merged.spec).toMatchObject({ username: 'robert', groups: ['ops'] })
    const strategic = await apiError(
      custom.patchClusterCustomObject(
        { ...MAPPING, name: 'bob', body: { spec: {} } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      ),
    )
    expect(strategic.code).toBe(415)

    const stale = await apiError(
      custom.replaceClusterCustomObjectStatus({ ...MAPPING, name: 'bob', body: { ...created, status: {} } }),
    )
    const details = { group: GROUP, kind: PLURAL, name: 'bob' }
    expect(stale.status).toMatchObject({ reason: 'Conflict', details })

    fake.deleteMapping('alice')
    await waitFor(() => watch.events.length === 4, 'the mapping events')
    expect(watch.events.map((e) => `${e.type} ${e.object.kind}/${e.object.metadata.name}`)).toEqual([
      'MODIFIED IAMIdentityMapping/bob',
      'MODIFIED IAMIdentityMapping/bob',
      'MODIFIED IAMIdentityMapping/bob',
      'DELETED IAMIdentityMapping/alice',
    ])
    expect(watch.events[0]?.object.status).toEqual(withStatus.status)
    watch.controller.abort()

    const missing = await apiError(custom.getClusterCustomObject({ ...MAPPING, name: 'alice' }))
    expect(missing.status.message).toBe(`${PLURAL}.${GROUP} "alice" not found`)
  })

  it('informer: stops on a cut watch, relists after 410, re-watches after a clean end', async () => {
    fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    const informer = makeInformer(kc, CM_PATH, () => core.listNamespacedConfigMap({ namespace: NS }))
    const seen: string[] = []
    informer.on('add', (cm) => seen.push(`add ${cm.data?.v}`))
    informer.on('update', (cm) => seen.push(`update ${cm.data?.v}`))
    informer.on('delete', (cm) => seen.push(`delete ${cm.metadata?.name}`))
    informer.on('error', (err) => {
      seen.push(`error ${errorCode(err)}`)
    })
    await informer.start()
    await waitFor(() => fake.openWatches === 1, 'the informer watch')
    const v2 = fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    await waitFor(() => seen.includes('update 2'), 'update 2')

    // a cut connection: the informer reports the error and does NOT restart by itself
    fake.dropWatches()
    await waitFor(() => seen.includes('error UND_ERR_SOCKET'), 'the error')
    await sleep(100)
    expect(fake.openWatches).toBe(0)

    // meanwhile history moves on and is compacted: restarting watches from the old RV, gets 410, relists
    fake.setConfigMap(NS, 'aws-auth', { v: '3' })
    fake.setConfigMap(NS, 'new', { v: 'n' })
    fake.compact()
    await informer.start()
    await waitFor(() => seen.includes('update 3') && fake.openWatches === 1, 'the relist')
    expect(fake.lists).toBe(2)
    expect(informer.list().map((cm) => cm.metadata?.name)).toEqual(['aws-auth', 'new'])

    // a clean end of stream (kube-apiserver's request timeout): re-watch from the last RV, no relist
    const lastRv = fake.resourceVersion
    fake.endWatches()
    await waitFor(() => fake.watches === 4 && fake.openWatches === 1, 'the re-watch')
    expect(fake.requests.at(-1)?.path).toBe(`${CM_PATH}?watch=true&resourceVersion=${lastRv}`)
    fake.deleteConfigMap(NS, 'new')
    await waitFor(() => seen.includes('delete new'), 'delete new')
    expect(fake.lists).toBe(2)

    expect(seen).toEqual(['add 1', 'update 2', 'error UND_ERR_SOCKET', 'update 3', 'add n', 'delete new'])
    // list, watch, cut; watch from the old RV -> 410 ERROR, list, watch; clean end, watch
    const sequence = fake.requests.map((r) => (r.path.includes('watch=true') ? 'watch' : 'list'))
    expect(sequence).toEqual(['list', 'watch', 'watch', 'list', 'watch', 'watch'])
    // ListWatch tracks the resourceVersion of the last event it saw, and restarts from it
    const restartRv = v2.metadata.resourceVersion
    expect(fake.requests[2]?.path).toBe(`${CM_PATH}?watch=true&resourceVersion=${restartRv}`)
    expect(fake.requests.every((r) => !r.path.includes('allowWatchBookmarks'))).toBe(true)

    // stop() aborts the request, and the informer reports that abort as an error too
    await informer.stop()
    await waitFor(() => seen.at(-1) === 'error AbortError', 'the abort error')
    await waitFor(() => fake.openWatches === 0, 'the server to see the abort')
  })

  it('requires the bearer token when requireToken is set', async () => {
    const guarded = await startFakeKube({ requireToken: 'sekret' })
    try {
      const anonymous = kubeConfig(guarded, 'wrong').makeApiClient(CoreV1Api)
      const denied = await apiError(anonymous.listNamespacedConfigMap({ namespace: NS }))
      expect(denied.code).toBe(401)
      const watch = await startWatch(kubeConfig(guarded, 'wrong'), CM_PATH, {})
      expect(await watch.done).toMatchObject({ statusCode: 401 })

      const authed = kubeConfig(guarded).makeApiClient(CoreV1Api)
      expect((await authed.listNamespacedConfigMap({ namespace: NS })).items).toEqual([])
    } finally {
      await guarded.close()
    }
  })

  it('serves HTTPS with a certificate the kubeconfig trusts', async () => {
    const secure = await startFakeKube({ tls: true })
    try {
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      expect(secure.kubeconfigFor()).toContain('certificate-authority-data:')
      const skc = kubeConfig(secure)
      const list = await skc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: NS })
      const watch = await startWatch(skc, CM_PATH, { resourceVersion: list.metadata?.resourceVersion })
      secure.setConfigMap(NS, 'aws-auth', { v: '1' })
      await waitFor(() => types(watch).includes('ADDED'), 'ADDED over TLS')
      watch.controller.abort()
    } finally {
      await secure.close()
    }
  })

  it('setDown refuses connections and drops watches until it is back up', async () => {
    const watch = await startWatch(kc, CM_PATH, { resourceVersion: fake.resourceVersion })
    await waitFor(() => fake.openWatches === 1, 'the watch to open')

    fake.setDown(true)
    expect(await watch.done).toBeInstanceOf(Error)
    const refused = await core.listNamespacedConfigMap({ namespace: NS }).catch((err: unknown) => err)
    expect(errorCode(refused)).toBe('UND_ERR_SOCKET')

    fake.setDown(false)
    expect((await core.listNamespacedConfigMap({ namespace: NS })).items).toEqual([])
  })
})

describe('fake-kube, raw HTTP', () => {
  let fake: FakeKube

  beforeEach(async () => {
    fake = await startFakeKube({ bookmarkIntervalMs: 50 })
  })

  afterEach(async () => {
    await fake.close()
  })

  it('streams newline-delimited JSON events, one per chunk, ending with the final chunk', async () => {
    fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    const raw = rawGet(fake.url, `${CM_PATH}?watch=1&timeoutSeconds=1&allowWatchBookmarks=true`)
    await waitFor(() => raw.received().chunks.length >= 1, 'the first chunk')
    fake.setConfigMap(NS, 'aws-auth', { v: '2' })
    const res = await raw.closed

    expect(res.head).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(res.head.toLowerCase()).toContain('transfer-encoding: chunked')
    expect(res.head.toLowerCase()).toContain('content-type: application/json')
    expect(res.head.toLowerCase()).not.toContain('content-length')
    expect(res.terminated).toBe(true)
    expect(res.chunks.every((c) => c.endsWith('\n') && c.indexOf('\n') === c.length - 1)).toBe(true)
    const events = res.chunks.map((c) => JSON.parse(c) as SeenEvent)
    expect(events.slice(0, 2).map((e) => `${e.type} ${e.object.data?.v}`)).toEqual(['ADDED 1', 'MODIFIED 2'])
    expect(events.slice(2).length).toBeGreaterThanOrEqual(5)
    expect(events.slice(2).every((e) => e.type === 'BOOKMARK')).toBe(true)
  })

  it('cuts dropped watches without the final chunk', async () => {
    const raw = rawGet(fake.url, `${CM_PATH}?watch=true`)
    await waitFor(() => fake.openWatches === 1, 'the watch to open')
    fake.setConfigMap(NS, 'aws-auth', { v: '1' })
    await waitFor(() => raw.received().chunks.length === 1, 'the event')
    fake.dropWatches()
    const res = await raw.closed
    expect(res.chunks).toHaveLength(1)
    expect(res.terminated).toBe(false)
  })

  it('reports label selector transitions as ADDED and DELETED, like kube-apiserver', async () => {
    const labelSelector = encodeURIComponent('team in (a)')
    const raw = rawGet(fake.url, `${CM_PATH}?watch=true&timeoutSeconds=1&labelSelector=${labelSelector}`)
    await waitFor(() => fake.openWatches === 1, 'the watch to open')
    const cm = fake.setConfigMap(NS, 'x', { v: '1' })
    const put = (labels: Record<string, string>): Promise<Response> => {
      const body = { ...cm, metadata: { ...cm.metadata, resourceVersion: '', labels } }
      const headers = { 'content-type': 'application/json' }
      return fetch(`${fake.url}${CM_PATH}/x`, { method: 'PUT', headers, body: JSON.stringify(body) })
    }
    expect((await put({ team: 'a' })).status).toBe(200)
    expect((await put({ team: 'a', more: 'x' })).status).toBe(200)
    expect((await put({ team: 'b' })).status).toBe(200)
    const res = await raw.closed
    expect(res.chunks.map((c) => (JSON.parse(c) as SeenEvent).type)).toEqual(['ADDED', 'MODIFIED', 'DELETED'])
  })

  it('answers discovery, unknown paths and bad requests like kube-apiserver', async () => {
    const json = async (path: string, init?: RequestInit): Promise<[number, Record<string, unknown>]> => {
      const res = await fetch(`${fake.url}${path}`, init)
      return [res.status, (await res.json()) as Record<string, unknown>]
    }
    const version = expect.objectContaining({ major: '1', gitVersion: expect.any(String) })
    expect(await json('/version')).toEqual([200, version])
    const apiVersions = expect.objectContaining({ kind: 'APIVersions', versions: ['v1'] })
    expect(await json('/api')).toEqual([200, apiVersions])
    expect(await json('/apis')).toEqual([
      200,
      expect.objectContaining({ kind: 'APIGroupList', groups: [expect.objectContaining({ name: GROUP })] }),
    ])
    expect(await json('/api/v1/namespaces/x/secrets')).toEqual([
      404,
      expect.objectContaining({ kind: 'Status', reason: 'NotFound', code: 404 }),
    ])
    expect(await json(`${CM_PATH}?watch=true&resourceVersion=abc`)).toEqual([
      400,
      expect.objectContaining({ reason: 'BadRequest' }),
    ])
    expect(await json(`${MAPPINGS_PATH}/nobody`, { method: 'PUT', body: '{}' })).toEqual([
      404,
      expect.objectContaining({ reason: 'NotFound' }),
    ])
    expect(fake.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'GET', 'GET', 'PUT'])
  })
})
