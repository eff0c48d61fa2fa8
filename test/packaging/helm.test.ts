// The Helm chart, checked without a helm binary.
//
// How: test/support/helm-render.ts parses every template into a syntax tree and renders it with
// Go-template/Sprig semantics for exactly the constructs the chart uses (anything else throws, so a
// template the renderer does not understand fails here instead of rendering differently). On top:
//   1. a static scan of that tree for every `.Values.x.y` path (resolving `.` inside `with`, and `$`),
//      checked against values.yaml both ways (no reference to a missing value, no unused value);
//   2. rendering with the defaults, with ci/examples-values.yaml and with targeted overrides, and
//      parsing every manifest;
//   3. checks of the rendered DaemonSet (host network, control-plane placement, security context,
//      probes, mounts against args), of the rendered config.yaml through the server's real config
//      decoder (no errors, no warnings), and a run of the real server with the rendered args and
//      config;
//   4. RBAC rules evaluated against the requests the backends' code makes;
//   5. the CRD in crds/ against deploy/.

import { createServer } from 'node:net'
import { createHash } from 'node:crypto'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { dirname, join, posix } from 'node:path'
import { load, loadAll } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/shared/reader.js'
import { decodeServerConfig, DEFAULTS, type ServerConfig } from '../../src/config/server-config.js'
import { SERVER_KEYS } from '../../src/config/server-keys.js'
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION } from '../../src/mapping/crd/index.js'
import { AWS_AUTH_NAME, AWS_AUTH_NAMESPACE } from '../../src/mapping/configmap/index.js'
import { BIN, cliEnv, ensureBuilt, ROOT, runCli, tempDir } from '../support/cli.js'
import { startFakeApiserver } from '../support/fake-apiserver.js'
import {
  goFloat,
  hasValuePath,
  loadChart,
  manifests,
  mergeValues,
  parseTemplate,
  renderChart,
  TemplateError,
  toYaml,
  valueLeaves,
  valuesReferences,
  type Rendered,
} from '../support/helm-render.js'

const CHART_DIR = join(ROOT, 'helm', 'kube-iam-auth')
const chart = loadChart(CHART_DIR)
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
const examples = load(readFileSync(join(CHART_DIR, 'ci', 'examples-values.yaml'), 'utf8')) as Record<string, unknown>

type Obj = Record<string, any>

const BASE = { clusterID: 'test-cluster' }
const render = (values: Record<string, unknown> = BASE, opts: { releaseName?: string; namespace?: string } = {}) =>
  renderChart(chart, { values, ...opts })
const docs = (r: Rendered) => manifests(r).map((m) => m.doc as Obj)
const one = (r: Rendered, kind: string): Obj => {
  const found = docs(r).filter((d) => d.kind === kind)
  expect(found, kind).toHaveLength(1)
  return found[0]!
}
const kinds = (r: Rendered) =>
  docs(r)
    .map((d) => d.kind as string)
    .sort()
const renderError = (values: Record<string, unknown>): string => {
  try {
    render(values)
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError)
    return (err as Error).message
  }
  throw new Error('expected the chart to refuse these values')
}

/** The server's view of the rendered config.yaml. */
function decodeRendered(r: Rendered): {
  config?: ServerConfig
  problems: { path: string; message: string; severity: string }[]
  doc: Obj
} {
  const cm = one(r, 'ConfigMap')
  const doc = load(cm.data['config.yaml']) as Obj
  return { ...decodeServerConfig(doc), doc }
}

/** The server config keys, from the loader's own list (src/config/server-keys.ts SERVER_KEYS). */
function serverKeys(): string[] {
  return [...SERVER_KEYS]
}

/** Keys the chart does not take from values.server, and why. */
const NOT_IN_VALUES_SERVER: Record<string, string> = {
  statedir: 'hostPaths.stateDir',
  generatekubeconfig: 'hostPaths.kubeconfigDir',
  dynamicbackendmodepath: 'not supported by the server (ignored with a warning)',
  healthport: 'accepted for compatibility, no effect',
  featuregates: 'accepted for compatibility, no effect',
}

// ------------------------------------------------------------------------------------------------

describe('Chart.yaml and values.yaml', () => {
  it('Chart.yaml: apiVersion v2, name kube-iam-auth, version 0.1.0, appVersion = package.json version', () => {
    expect(chart.chart).toMatchObject({
      apiVersion: 'v2',
      name: 'kube-iam-auth',
      version: '0.1.0',
      type: 'application',
    })
    expect(chart.chart.appVersion).toBe(pkg.version)
  })

  it('values.server exposes every server config key the loader knows, and only those', () => {
    const values = chart.values.server as Obj
    const exposed = Object.keys(values).map((k) => k.toLowerCase())
    const known = serverKeys()
    expect(known.length).toBeGreaterThan(30)
    for (const key of known) {
      if (key in NOT_IN_VALUES_SERVER) continue
      expect(exposed, `server.${key}`).toContain(key)
    }
    for (const key of exposed) expect(known, `values.server.${key} is not a server config key`).toContain(key)
    // The ones left out are explained in values.yaml.
    const text = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')
    for (const k of ['dynamicBackendModePath', 'healthPort', 'featureGates']) expect(text).toContain(k)
  })

  it('the chart defaults are the server defaults, except callerAuth (on in the chart)', () => {
    const chartConfig = decodeRendered(render()).config!
    const serverOnly = decodeServerConfig({ clusterID: BASE.clusterID }).config!
    expect(chartConfig.callerAuth).toBe(true)
    expect(serverOnly.callerAuth).toBe(false)
    expect({ ...chartConfig, callerAuth: false }).toEqual(serverOnly)
  })

  it('hostPaths are upstream locations; security, placement and monitoring defaults', () => {
    const v = chart.values as Obj
    expect(v.hostPaths).toEqual({ stateDir: DEFAULTS.stateDir, kubeconfigDir: dirname(DEFAULTS.generateKubeconfig) })
    expect(v.image).toMatchObject({ tag: '', pullPolicy: 'IfNotPresent' })
    expect(v.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(v.podSecurityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(v.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' })
    expect(v.priorityClassName).toBe('system-cluster-critical')
    expect(v.hostNetwork).toBe(true)
    expect(v.serviceMonitor).toEqual({ enabled: false, interval: '30s', scrapeTimeout: '10s', labels: {} })
    expect(v.rbac).toEqual({ create: true })
    expect(v.server.callerAuth).toBe(true)
    expect(v.resources.requests).toHaveProperty('memory')
    expect(v.resources.limits).toHaveProperty('memory')
    expect(v.resources.limits).not.toHaveProperty('cpu')
    // The pod outlives the server's drain.
    expect(v.terminationGracePeriodSeconds * 1000).toBeGreaterThan(parseDuration(v.server.shutdownTimeout)!)
  })
})

describe('templates: .Values references (static scan of the parsed templates)', () => {
  const scan = valuesReferences(chart)

  it('every reference resolves statically: no unresolved dots, includes always get the root context', () => {
    expect(scan.references.length).toBeGreaterThan(40)
    expect(scan.unresolved).toEqual([])
    expect(scan.nonRootIncludes).toEqual([])
  })

  it('every .Values path used in a template (and _helpers.tpl) exists in values.yaml', () => {
    const missing = scan.references
      .filter((r) => !hasValuePath(chart.values, r.path))
      .map((r) => `${r.file}:${r.line} .Values.${r.path.join('.')}`)
    expect(missing).toEqual([])
  })

  it('every value in values.yaml is used by a template', () => {
    const used = scan.references.map((r) => r.path.join('.'))
    const unused = valueLeaves(chart.values)
      .map((leaf) => leaf.join('.'))
      .filter((leaf) => !used.some((u) => leaf === u || leaf.startsWith(`${u}.`)))
    expect(unused).toEqual([])
  })

  it('the scanner follows with, $ and variables, and reports what it cannot resolve', () => {
    const t = parseTemplate(
      '{{ with .Values.a }}{{ .b }}{{ $.Values.c }}{{ end }}{{ $x := .Values.d }}{{ $x.e }}{{ range .Values.f }}{{ .g }}{{ end }}{{ include "n" .Values }}',
      'templates/t.yaml',
    )
    const s = valuesReferences({ ...chart, templates: new Map([['t.yaml', t]]) })
    expect(s.references.map((r) => r.path.join('.'))).toEqual(['a', 'a.b', 'c', 'd', 'd.e', 'f'])
    expect(s.unresolved.map((u) => u.expr)).toEqual(['.g'])
    expect(s.nonRootIncludes.map((u) => u.name)).toEqual(['n'])
  })
})

describe('the renderer follows Go template and Sprig semantics where the chart depends on them', () => {
  const tpl = (src: string, values: Record<string, unknown> = {}) => {
    const t = parseTemplate(src, 'templates/x.yaml')
    return renderChart({ ...chart, values: {}, templates: new Map([['x.yaml', t]]) }, { values }).files.get(
      'templates/x.yaml',
    )
  }

  it('trim markers, comments, if/else if/else, with/else, range over lists and maps', () => {
    expect(
      tpl('a  {{- /* c */ -}}  b\n{{- if .Values.x }}X{{ else if .Values.y }}Y{{ else }}Z{{ end }}', { y: 1 }),
    ).toBe('abY')
    expect(
      tpl('{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}|{{ with .Values.n }}x{{ else }}none{{ end }}', {
        m: { k: 'v' },
      }),
    ).toBe('v|none')
    expect(
      tpl(
        '{{ range $i, $v := .Values.l }}{{ $i }}={{ $v }};{{ end }}{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}',
        { l: ['a', 'b'], m: { z: 1, a: 2 } },
      ),
    ).toBe('0=a;1=b;a=2;z=1;')
  })

  it('numbers print as Go prints float64 (1e+06); toYaml and int keep them whole', () => {
    expect(goFloat(21362)).toBe('21362')
    expect(goFloat(1000000)).toBe('1e+06')
    expect(goFloat(1234567)).toBe('1.234567e+06')
    expect(goFloat(0.5)).toBe('0.5')
    expect(tpl('{{ .Values.n }} {{ toYaml .Values.n }} {{ .Values.n | int }}', { n: 1000000 })).toBe(
      '1e+06 1000000 1000000',
    )
  })

  it('missing keys are empty, fields of nil are errors, unknown functions are errors', () => {
    expect(tpl('[{{ .Values.nope }}]')).toBe('[]')
    expect(() => tpl('{{ .Values.nope.deeper }}')).toThrow(/nil pointer evaluating interface \{\}\.deeper/)
    expect(() => tpl('{{ .Chart.Nope }}')).toThrow(/can't evaluate field Nope/)
    expect(() => tpl('{{ lookup "v1" "Secret" "ns" "n" }}')).toThrow(/function "lookup" is not supported/)
    expect(() => tpl('{{ template "x" . }}')).toThrow(/not supported/)
    expect(() => tpl('{{ eq .Values.n 1 }}', { n: 1 })).toThrow(/incompatible types/)
  })

  it('Sprig argument order: default, trimSuffix, contains, hasPrefix, has, omit, nindent', () => {
    expect(
      tpl(
        '{{ default "d" .Values.e }}|{{ default "d" .Values.f }}|{{ trimSuffix "-" "a-" }}|{{ contains "b" "abc" }}|{{ hasPrefix "/" "/x" }}|{{ has 2 (list 1 2) }}',
        { e: '', f: 'F' },
      ),
    ).toBe('d|F|a|true|true|true')
    expect(tpl('x:{{ toYaml (omit .Values.m "a") | nindent 2 }}', { m: { a: 1, b: [1] } })).toBe('x:\n  b:\n  - 1')
    expect(toYaml({ b: ['x'], a: {} })).toBe('a: {}\nb:\n- x')
  })

  it('values merge as Helm coalesces them: maps merge, lists replace, null deletes', () => {
    expect(mergeValues({ a: { b: 1, c: 2 }, l: [1, 2], d: 1 }, { a: { b: 3 }, l: [9], d: null })).toEqual({
      a: { b: 3, c: 2 },
      l: [9],
    })
  })
})

// ------------------------------------------------------------------------------------------------

describe('rendering with the default values', () => {
  it('requires clusterID', () => {
    expect(renderError({})).toMatch(/clusterID is required/)
  })

  const r = render()

  it('renders a ServiceAccount, a ConfigMap and a DaemonSet (no RBAC: MountedFile needs none)', () => {
    expect(kinds(r)).toEqual(['ConfigMap', 'DaemonSet', 'ServiceAccount'])
    for (const d of docs(r)) {
      expect(d.apiVersion, d.kind).toBeTruthy()
      expect(d.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      expect(d.metadata.namespace).toBe('kube-system')
      expect(d.metadata.labels['app.kubernetes.io/version']).toBe(pkg.version)
    }
  })

  it('config.yaml is accepted by the server config decoder with no errors and no warnings', () => {
    const { config, problems, doc } = decodeRendered(r)
    expect(problems).toEqual([])
    expect(config).toBeDefined()
    expect(Object.keys(doc)).toEqual(['clusterID', 'server'])
    expect(config!.clusterId).toBe('test-cluster')
  })

  const ds = one(r, 'DaemonSet')
  const pod = ds.spec.template.spec
  const container = pod.containers[0]

  it('DaemonSet: host network, control-plane nodes, critical priority, rolling update', () => {
    expect(ds.apiVersion).toBe('apps/v1')
    expect(pod.hostNetwork).toBe(true)
    expect(pod.dnsPolicy).toBe('Default')
    expect(pod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' })
    expect(pod.tolerations).toEqual(
      expect.arrayContaining([
        { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'CriticalAddonsOnly', operator: 'Exists' },
      ]),
    )
    expect(pod.priorityClassName).toBe('system-cluster-critical')
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } })
    expect(ds.spec.selector.matchLabels).toEqual(
      Object.fromEntries(
        Object.entries(ds.spec.template.metadata.labels as Record<string, string>).filter(
          ([k]) => k in ds.spec.selector.matchLabels,
        ),
      ),
    )
    expect(pod.automountServiceAccountToken).toBe(false)
    expect(pod.serviceAccountName).toBe(one(r, 'ServiceAccount').metadata.name)
  })

  it('security: non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(container.securityContext.capabilities.add).toBeUndefined()
    // The init container is the only root part: chown/chmod of the two host directories, nothing else.
    const init = pod.initContainers[0]
    expect(init.securityContext).toMatchObject({
      runAsUser: 0,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] },
    })
    expect(init.image).toBe(container.image)
    expect(init.command.slice(0, 2)).toEqual(['/bin/sh', '-c'])
    expect(init.command[2]).toContain('chown -R "$owner" "$STATE_DIR"')
    expect(init.command[2]).toContain('owner="65532:65532"')
    expect(init.volumeMounts.map((m: Obj) => m.name).sort()).toEqual(['kubeconfig', 'state'])
  })

  it('args: server with the mounted config, the state dir and the webhook kubeconfig on host paths', () => {
    expect(container.image).toBe(`kube-iam-auth:${pkg.version}`)
    expect(container.args).toEqual([
      'server',
      '--config=/etc/kube-iam-auth/config.yaml',
      `--state-dir=${DEFAULTS.stateDir}`,
      `--generate-kubeconfig=${DEFAULTS.generateKubeconfig}`,
      '--log-verbosity=info',
    ])
  })

  it('every path in args is on a volume: config from the ConfigMap (read-only), state and kubeconfig on hostPath', () => {
    const arg = (flag: string) => (container.args as string[]).find((a) => a.startsWith(`--${flag}=`))!.split('=')[1]!
    const mountFor = (path: string) =>
      (container.volumeMounts as Obj[])
        .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
        .sort((a, b) => b.mountPath.length - a.mountPath.length)[0] as Obj
    const volume = (name: string) => (pod.volumes as Obj[]).find((v) => v.name === name)!

    const configMount = mountFor(arg('config'))
    expect(configMount.readOnly).toBe(true)
    const cmVolume = volume(configMount.name)
    expect(cmVolume.configMap.name).toBe(one(r, 'ConfigMap').metadata.name)
    expect(Object.keys(one(r, 'ConfigMap').data)).toContain(posix.relative(configMount.mountPath, arg('config')))

    for (const [flag, hostPath] of [
      ['state-dir', DEFAULTS.stateDir],
      ['generate-kubeconfig', dirname(DEFAULTS.generateKubeconfig)],
    ] as const) {
      const m = mountFor(arg(flag))
      expect(m.readOnly, flag).toBeFalsy()
      const v = volume(m.name)
      expect(v.hostPath, flag).toEqual({ path: hostPath, type: 'DirectoryOrCreate' })
      // Mounted at the host path itself, so paths in the server's files and logs are the host's.
      expect(m.mountPath).toBe(hostPath)
    }
    // The config file names the same locations (for `kube-iam-auth rotate-caller-key --config ...`).
    const { config } = decodeRendered(r)
    expect(config!.stateDir).toBe(arg('state-dir'))
    expect(config!.generateKubeconfig).toBe(arg('generate-kubeconfig'))
    // /tmp is the only other writable place.
    expect(volume(mountFor('/tmp/x').name).emptyDir).toBeDefined()
  })

  it('probes: startup, liveness and readiness are HTTPS GET /healthz on the server port, at the listen address', () => {
    const port = (container.ports as Obj[]).find((p) => p.name === 'https')
    expect(port).toEqual({ name: 'https', containerPort: DEFAULTS.port, protocol: 'TCP' })
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(container[probe].httpGet, probe).toEqual({
        path: '/healthz',
        port: 'https',
        scheme: 'HTTPS',
        host: DEFAULTS.address,
      })
      expect(container[probe].periodSeconds, probe).toBeGreaterThan(0)
    }
  })

  it('resources and environment', () => {
    expect(container.resources).toEqual(chart.values.resources)
    expect(container.env).toBeUndefined()
  })

  it('a checksum of the ConfigMap rolls the pods when the config changes (and only then)', () => {
    const checksum = ds.spec.template.metadata.annotations['checksum/config']
    expect(checksum).toBe(createHash('sha256').update(r.files.get('templates/configmap.yaml')!).digest('hex'))
    expect(one(render(BASE), 'DaemonSet').spec.template.metadata.annotations['checksum/config']).toBe(checksum)
    const changed = one(render({ ...BASE, server: { identityCacheTTL: '5m' } }), 'DaemonSet')
    expect(changed.spec.template.metadata.annotations['checksum/config']).not.toBe(checksum)
  })

  it('NOTES.txt gives the kube-apiserver flag, the kubeconfig path and the caller-key rotation', () => {
    expect(r.notes).toContain(`--authentication-token-webhook-config-file=${DEFAULTS.generateKubeconfig}`)
    expect(r.notes).toContain('rotate-caller-key --config /etc/kube-iam-auth/config.yaml')
    expect(r.notes).toContain('rotate-caller-key --retire')
    expect(r.notes).toContain('kube-iam-auth token -i test-cluster')
    expect(r.notes).not.toContain('<no value>')
  })
})

describe('rendering with ci/examples-values.yaml (example mappings, EKSConfigMap + CRD, metrics)', () => {
  const r = render(examples)

  it('renders RBAC, the metrics Service and the ServiceMonitor as well', () => {
    expect(kinds(r)).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'DaemonSet',
      'Role', // aws-auth, and Events in kube-system
      'Role', // Events of IAMIdentityMappings, in default
      'RoleBinding',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ])
  })

  it('config.yaml with the example mappings is accepted with no errors and no warnings, and means what the values say', () => {
    const { config, problems, doc } = decodeRendered(r)
    expect(problems).toEqual([])
    const server = examples.server as Obj
    expect(doc.server.mapRoles).toEqual(server.mapRoles)
    expect(doc.server.mapUsers).toEqual(server.mapUsers)
    expect(config!.backendMode).toEqual(['MountedFile', 'EKSConfigMap', 'CRD'])
    expect(config!.mappings.mapRoles).toHaveLength(3)
    expect(config!.mappings.mapAccounts).toEqual(['444455556666'])
    expect(config!.scrubbedAccounts).toEqual(['777788889999'])
    expect(config!.reservedPrefixes.EKSConfigMap).toEqual(['aws:', 'eks:', 'amazon:', 'iam:'])
    expect(config!.ec2.describeInstancesRoleArn).toBe(server.ec2DescribeInstancesRoleARN)
    expect(config!.identityCacheTtlMs).toBe(5 * 60_000)
    expect(config!.address).toBe('0.0.0.0')
    // Username templates reach the file untouched.
    expect(readFileSync(join(CHART_DIR, 'ci', 'examples-values.yaml'), 'utf8')).toContain('{{SessionName}}')
    expect(one(r, 'ConfigMap').data['config.yaml']).toContain('admin:{{SessionName}}')
  })

  it('the example mappings are the ones of config/server.example.yaml', () => {
    const example = load(readFileSync(join(ROOT, 'config', 'server.example.yaml'), 'utf8')) as Obj
    expect((examples.server as Obj).mapRoles).toEqual(example.server.mapRoles)
    expect((examples.server as Obj).mapUsers).toEqual(example.server.mapUsers)
  })

  it('a wildcard address: probes go to the pod IP (no host); AWS_REGION and extraEnv are set; the token is mounted', () => {
    const pod = one(r, 'DaemonSet').spec.template.spec
    const c = pod.containers[0]
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
      expect(c[probe].httpGet.host, probe).toBeUndefined()
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'AWS_REGION', value: 'us-west-2' },
        { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
      ]),
    )
    expect(pod.automountServiceAccountToken).toBe(true)
  })

  it('the Service and ServiceMonitor scrape /metrics over HTTPS from the DaemonSet pods', () => {
    const svc = one(r, 'Service')
    const sm = one(r, 'ServiceMonitor')
    const ds = one(r, 'DaemonSet')
    expect(svc.spec.clusterIP).toBe('None')
    expect(svc.spec.selector).toEqual(ds.spec.selector.matchLabels)
    expect(svc.spec.ports).toEqual([{ name: 'https', port: DEFAULTS.port, targetPort: 'https', protocol: 'TCP' }])
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>))
      expect(svc.metadata.labels[k]).toBe(v)
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: ['kube-system'] })
    expect(sm.spec.endpoints).toEqual([
      {
        port: 'https',
        scheme: 'https',
        path: '/metrics',
        interval: '30s',
        scrapeTimeout: '10s',
        tlsConfig: { insecureSkipVerify: true },
      },
    ])
    expect(sm.metadata.labels.release).toBe('kube-prometheus-stack')
  })
})

describe('rendering with other values', () => {
  it('DynamicFile: the path reaches config.yaml and the extra volume is mounted', () => {
    const r = render({
      ...BASE,
      server: {
        backendMode: ['MountedFile', 'DynamicFile'],
        dynamicfilepath: '/etc/kube-iam-auth-dynamic/mappings.json',
        dynamicfileUserIDStrict: true,
      },
      extraVolumes: [{ name: 'dynamic', configMap: { name: 'kia-dynamic' } }],
      extraVolumeMounts: [{ name: 'dynamic', mountPath: '/etc/kube-iam-auth-dynamic', readOnly: true }],
    })
    const { config, problems } = decodeRendered(r)
    expect(problems).toEqual([])
    expect(config!.dynamicFile).toEqual({ path: '/etc/kube-iam-auth-dynamic/mappings.json', userIdStrict: true })
    const pod = one(r, 'DaemonSet').spec.template.spec
    expect(pod.volumes).toContainEqual({ name: 'dynamic', configMap: { name: 'kia-dynamic' } })
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'dynamic',
      mountPath: '/etc/kube-iam-auth-dynamic',
      readOnly: true,
    })
    expect(kinds(r)).not.toContain('Role')
  })

  it('every server value reaches config.yaml with its type (numbers stay whole, empty strings are left out)', () => {
    const r = render({
      ...BASE,
      server: {
        identityCacheSize: 1000000,
        ec2DescribeInstancesQps: 2.5,
        master: '',
        backendMode: ['EKSConfigMap'],
        kubeconfig: '/etc/kube/kubeconfig',
        port: 31000,
        headersTimeout: '15s',
      },
    })
    const { config, problems, doc } = decodeRendered(r)
    expect(problems).toEqual([])
    expect(config!.headersTimeoutMs).toBe(15_000)
    expect(config!.identityCacheSize).toBe(1000000)
    expect(config!.ec2.qps).toBe(2.5)
    expect(config!.kubeconfig).toBe('/etc/kube/kubeconfig')
    expect(doc.server).not.toHaveProperty('master')
    expect(one(r, 'DaemonSet').spec.template.spec.containers[0].ports[0].containerPort).toBe(31000)
  })

  it('clusterIDs: rendered next to clusterID, read by the server as the IDs accepted alongside it; the notes name them', () => {
    const r = render({ ...BASE, clusterIDs: ['blue', 'old-test-cluster'] })
    const { config, problems, doc } = decodeRendered(r)
    expect(problems).toEqual([])
    expect(Object.keys(doc)).toEqual(['clusterID', 'clusterIDs', 'server'])
    expect([config!.clusterId, config!.clusterIds]).toEqual(['test-cluster', ['blue', 'old-test-cluster']])
    expect(r.notes).toContain(
      'kube-iam-auth token -i test-cluster\n  (tokens for blue, old-test-cluster are accepted too: clusterIDs)',
    )
    // what the server refuses reaches it unchanged, and is refused there (one judge)
    const dup = decodeRendered(render({ ...BASE, clusterIDs: ['test-cluster'] }))
    expect(dup.problems).toEqual([
      {
        path: 'clusterIDs[0]',
        message: '"test-cluster" is clusterID already: list only the IDs accepted alongside it',
        severity: 'error',
      },
    ])
  })

  it('image digest, tag, fullnameOverride, release name and namespace, extra args, log level', () => {
    const r = render(
      {
        ...BASE,
        image: { repository: 'registry.example/kia', tag: '9.9.9' },
        extraArgs: ['--ec2-describeInstances-qps=3'],
        logLevel: 'debug',
      },
      { releaseName: 'auth', namespace: 'platform' },
    )
    const ds = one(r, 'DaemonSet')
    expect(ds.metadata.name).toBe('auth-kube-iam-auth')
    expect(ds.metadata.namespace).toBe('platform')
    expect(ds.spec.template.spec.containers[0].image).toBe('registry.example/kia:9.9.9')
    expect(ds.spec.template.spec.containers[0].args.slice(-2)).toEqual([
      '--log-verbosity=debug',
      '--ec2-describeInstances-qps=3',
    ])
    const digest = 'sha256:' + 'a'.repeat(64)
    expect(one(render({ ...BASE, image: { digest } }), 'DaemonSet').spec.template.spec.containers[0].image).toBe(
      `kube-iam-auth@${digest}`,
    )
    expect(one(render({ ...BASE, fullnameOverride: 'iam' }), 'DaemonSet').metadata.name).toBe('iam')
  })

  it('hostPathPermissions.enabled=false: no init container, nothing runs as root', () => {
    const pod = one(render({ ...BASE, hostPathPermissions: { enabled: false } }), 'DaemonSet').spec.template.spec
    expect(pod.initContainers).toBeUndefined()
  })

  it('custom host paths move args, mounts, config and NOTES together', () => {
    const r = render({ ...BASE, hostPaths: { stateDir: '/srv/kia/state', kubeconfigDir: '/srv/kia/kubeconfig/' } })
    const c = one(r, 'DaemonSet').spec.template.spec.containers[0]
    expect(c.args).toContain('--state-dir=/srv/kia/state')
    expect(c.args).toContain('--generate-kubeconfig=/srv/kia/kubeconfig/kubeconfig.yaml')
    expect(decodeRendered(r).config!.generateKubeconfig).toBe('/srv/kia/kubeconfig/kubeconfig.yaml')
    expect(r.notes).toContain('--authentication-token-webhook-config-file=/srv/kia/kubeconfig/kubeconfig.yaml')
  })

  it('refuses values that would install a broken authenticator', () => {
    expect(renderError({ ...BASE, server: { backendMode: 'MountedFile EKSConfigMap' } })).toMatch(
      /backendMode must be a list/,
    )
    expect(renderError({ ...BASE, server: { stateDir: '/x' } })).toMatch(/set hostPaths.stateDir/)
    expect(renderError({ ...BASE, hostPaths: { stateDir: '/etc/kubernetes' } })).toMatch(/directory of its own/)
    expect(renderError({ ...BASE, hostPaths: { kubeconfigDir: 'relative/dir' } })).toMatch(/directory of its own/)
    expect(renderError({ ...BASE, hostPaths: { kubeconfigDir: DEFAULTS.stateDir } })).toMatch(/must be different/)
    expect(renderError({ ...BASE, hostNetwork: false })).toMatch(/only with hostNetwork/)
    expect(renderError({ ...BASE, serviceMonitor: { enabled: true } })).toMatch(
      /serviceMonitor.enabled needs server.address/,
    )
    expect(renderError({ ...BASE, server: { backendMode: ['DynamicFile'] } })).toMatch(/set server.dynamicfilepath/)
    expect(renderError({ ...BASE, clusterIDs: 'blue,old-name' })).toMatch(/clusterIDs must be a list, e.g./)
    expect(renderError({ ...BASE, clusterIDs: ['blue', 1234] })).toMatch(/clusterIDs must be a list of strings/)
  })
})

// ------------------------------------------------------------------------------------------------
// RBAC: the rules, evaluated like the RBAC authorizer does, against the requests the backends make.

interface Rule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}
interface Request {
  verb: string
  group: string
  resource: string
  namespace?: string
  /** For list/watch: the metadata.name field selector, which the API server turns into the name. */
  name?: string
}

function allows(r: Rendered, serviceAccount: { name: string; namespace: string }, req: Request): boolean {
  const all = docs(r)
  const bound = (binding: Obj) =>
    (binding.subjects as Obj[]).some(
      (s) => s.kind === 'ServiceAccount' && s.name === serviceAccount.name && s.namespace === serviceAccount.namespace,
    )
  const rulesOf = (kind: string, name: string, namespace?: string) =>
    all
      .filter(
        (d) =>
          d.kind === kind &&
          d.metadata.name === name &&
          (namespace === undefined || d.metadata.namespace === namespace),
      )
      .flatMap((d) => d.rules as Rule[])
  const rules: Rule[] = [
    ...all
      .filter((d) => d.kind === 'ClusterRoleBinding' && bound(d))
      .flatMap((b) => rulesOf('ClusterRole', b.roleRef.name)),
    ...all
      .filter((d) => d.kind === 'RoleBinding' && bound(d) && d.metadata.namespace === req.namespace)
      .flatMap((b) =>
        b.roleRef.kind === 'Role'
          ? rulesOf('Role', b.roleRef.name, b.metadata.namespace)
          : rulesOf('ClusterRole', b.roleRef.name),
      ),
  ]
  const has = (list: string[] | undefined, v: string) => (list ?? []).includes(v) || (list ?? []).includes('*')
  return rules.some(
    (rule) =>
      has(rule.apiGroups, req.group) &&
      has(rule.resources, req.resource) &&
      has(rule.verbs, req.verb) &&
      (rule.resourceNames === undefined ||
        rule.resourceNames.length === 0 ||
        (req.name !== undefined && rule.resourceNames.includes(req.name))),
  )
}

describe('RBAC: what the configured backends need, nothing more', () => {
  const sa = (r: Rendered) => ({ name: one(r, 'ServiceAccount').metadata.name as string, namespace: 'kube-system' })
  const configMapRequests = (verb: string): Request => ({
    verb,
    group: '',
    resource: 'configmaps',
    namespace: AWS_AUTH_NAMESPACE,
    name: AWS_AUTH_NAME,
  })

  it('MountedFile only: no Role, no ClusterRole, no service account token in the pod', () => {
    const r = render()
    expect(kinds(r).filter((k) => /Role/.test(k))).toEqual([])
    expect(one(r, 'ServiceAccount').automountServiceAccountToken).toBe(false)
  })

  it('EKSConfigMap: get/list/watch of kube-system/aws-auth only (by name), through a Role in kube-system', () => {
    const r = render({ ...BASE, server: { backendMode: ['EKSConfigMap'] } }, { namespace: 'auth' })
    const account = { name: sa(r).name, namespace: 'auth' }
    for (const verb of ['get', 'list', 'watch']) expect(allows(r, account, configMapRequests(verb)), verb).toBe(true)
    // Least privilege: not every ConfigMap of kube-system, not other namespaces, no writes, no CRDs.
    expect(allows(r, account, { verb: 'list', group: '', resource: 'configmaps', namespace: 'kube-system' })).toBe(
      false,
    )
    expect(allows(r, account, { ...configMapRequests('get'), name: 'kubeadm-config' })).toBe(false)
    expect(allows(r, account, { ...configMapRequests('get'), namespace: 'default' })).toBe(false)
    for (const verb of ['update', 'patch', 'delete'])
      expect(allows(r, account, configMapRequests(verb)), verb).toBe(false)
    expect(
      allows(r, account, { verb: 'get', group: '', resource: 'secrets', namespace: 'kube-system', name: 'aws-auth' }),
    ).toBe(false)
    // a rejected aws-auth edit is reported as an Event on it: create, nothing else, only there
    const event = (verb: string, namespace = 'kube-system'): Request => ({
      verb,
      group: '',
      resource: 'events',
      namespace,
    })
    expect(allows(r, account, event('create'))).toBe(true)
    for (const verb of ['get', 'list', 'update', 'patch', 'delete'])
      expect(allows(r, account, event(verb)), verb).toBe(false)
    expect(allows(r, account, event('create', 'default'))).toBe(false)
    expect(kinds(r)).not.toContain('ClusterRole')
    expect(one(r, 'Role').metadata.namespace).toBe('kube-system')
    expect(one(r, 'RoleBinding').metadata.namespace).toBe('kube-system')
    expect(one(r, 'DaemonSet').spec.template.spec.automountServiceAccountToken).toBe(true)
  })

  it('the deprecated alias ConfigMap gets the same Role', () => {
    expect(kinds(render({ ...BASE, server: { backendMode: ['ConfigMap'] } }))).toContain('Role')
  })

  it('CRD: read IAMIdentityMappings cluster-wide, patch their status, create Events in default; nothing else', () => {
    const r = render({ ...BASE, server: { backendMode: ['CRD'] } })
    const req = (verb: string, resource = CRD_PLURAL): Request => ({ verb, group: CRD_GROUP, resource })
    for (const verb of ['get', 'list', 'watch']) expect(allows(r, sa(r), req(verb)), verb).toBe(true)
    expect(allows(r, sa(r), req('patch', `${CRD_PLURAL}/status`))).toBe(true)
    for (const verb of ['create', 'update', 'patch', 'delete']) expect(allows(r, sa(r), req(verb)), verb).toBe(false)
    expect(allows(r, sa(r), { verb: 'create', group: '', resource: 'events', namespace: 'kube-system' })).toBe(false)
    // cluster-scoped objects' Events live in default, where kubectl describe finds them
    expect(allows(r, sa(r), { verb: 'create', group: '', resource: 'events', namespace: 'default' })).toBe(true)
    expect(allows(r, sa(r), { verb: 'patch', group: '', resource: 'events', namespace: 'default' })).toBe(false)
    expect(allows(r, sa(r), configMapRequests('get'))).toBe(false)
  })

  it('rbac.create=false or an existing service account: no RBAC objects', () => {
    const r = render({
      ...BASE,
      rbac: { create: false },
      serviceAccount: { create: false, name: 'existing' },
      server: { backendMode: ['EKSConfigMap', 'CRD'] },
    })
    expect(kinds(r)).toEqual(['ConfigMap', 'DaemonSet'])
    expect(one(r, 'DaemonSet').spec.template.spec.serviceAccountName).toBe('existing')
  })

  it('the rules match the code: aws-auth is listed and watched by name, status is merge-patched, Events only created', () => {
    const cmSource = readFileSync(join(ROOT, 'src', 'mapping', 'configmap', 'index.ts'), 'utf8')
    expect(cmSource).toContain('const fieldSelector = `metadata.name=${name}`')
    expect(cmSource).toMatch(/listNamespacedConfigMap\(\{ namespace, fieldSelector \}\)/)
    expect(cmSource).toMatch(/watchPath:[^\n]*\n\s*fieldSelector,/)
    const crdSource = readFileSync(join(ROOT, 'src', 'mapping', 'crd', 'index.ts'), 'utf8')
    const calls = [...crdSource.matchAll(/\.(\w+ClusterCustomObject\w*)\(/g)].map((m) => m[1]).sort()
    expect(calls).toEqual(['listClusterCustomObject', 'patchClusterCustomObjectStatus'])
    const sources = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : [],
      )
    const allSource = sources(join(ROOT, 'src'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n')
    expect(allSource).not.toMatch(/EventsV1Api/)
    expect([...new Set(allSource.match(/\.\w+NamespacedEvent\w*\(/g))]).toEqual(['.createNamespacedEvent('])
    // written where kube-apiserver wants them: the object's namespace, default for cluster-scoped ones
    const events = readFileSync(join(ROOT, 'src', 'mapping', 'kube', 'events.ts'), 'utf8')
    expect(events).toContain("const namespace = object.namespace || 'default'")
  })
})

describe('crds/', () => {
  it('the IAMIdentityMapping CRD equals deploy/iamidentitymapping-crd.yaml and names what the code reads', () => {
    expect([...chart.crds.keys()]).toEqual(['iamidentitymapping.yaml'])
    const inChart = loadAll(chart.crds.get('iamidentitymapping.yaml')!)
    const deployed = loadAll(readFileSync(join(ROOT, 'deploy', 'iamidentitymapping-crd.yaml'), 'utf8'))
    expect(inChart).toEqual(deployed)
    const crd = inChart[0] as Obj
    expect(crd.spec.group).toBe(CRD_GROUP)
    expect(crd.spec.names.plural).toBe(CRD_PLURAL)
    expect(crd.spec.versions.map((v: Obj) => v.name)).toEqual([CRD_VERSION])
    expect(crd.spec.versions[0].subresources).toEqual({ status: {} })
    // crds/ is not templated by Helm: no template actions in it.
    expect(chart.crds.get('iamidentitymapping.yaml')).not.toContain('{{')
  })
})

// ------------------------------------------------------------------------------------------------
// The real server with the rendered DaemonSet's args and the rendered config.yaml.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function https(opts: {
  host: string
  port: number
  path: string
  method?: string
  token?: string
  body?: string
}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: opts.host,
        port: opts.port,
        path: opts.path,
        method: opts.method ?? 'GET',
        rejectUnauthorized: false,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let body = ''
        res.on('data', (d: Buffer) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode!, body }))
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/**
 * The rendered DaemonSet's pod on this machine: the ConfigMap's files in a folder, hostPaths as they
 * are, the server's arguments and environment rewritten to those paths.
 */
function podOnThisMachine(r: Rendered, dir: string) {
  const pod = one(r, 'DaemonSet').spec.template.spec
  const c = pod.containers[0]
  const mountDirs = new Map<string, string>()
  for (const m of c.volumeMounts as Obj[]) {
    const v = (pod.volumes as Obj[]).find((x) => x.name === m.name)!
    if (v.configMap) {
      const folder = join(dir, 'configmap', m.name)
      mkdirSync(folder, { recursive: true })
      for (const [k, text] of Object.entries(one(r, 'ConfigMap').data as Record<string, string>))
        writeFileSync(join(folder, k), text)
      mountDirs.set(m.mountPath, folder)
    } else if (v.hostPath) {
      expect(v.hostPath.path).toBe(m.mountPath)
      mountDirs.set(m.mountPath, m.mountPath)
    } else {
      mountDirs.set(m.mountPath, join(dir, 'emptydir', m.name))
    }
  }
  const onHost = (p: string) => {
    for (const [mountPath, local] of [...mountDirs].sort((a, b) => b[0].length - a[0].length)) {
      if (p === mountPath || p.startsWith(`${mountPath}/`)) return local + p.slice(mountPath.length)
    }
    return p
  }
  const args = (c.args as string[]).map((a) =>
    a.replace(/^(--[a-z-]+=)(\/.*)$/, (_m, flag: string, p: string) => flag + onHost(p)),
  )
  const env = cliEnv(join(dir, 'home'), Object.fromEntries(((c.env ?? []) as Obj[]).map((e) => [e.name, e.value])))
  return { pod, c, args, env }
}

describe('the server runs with the rendered DaemonSet args and ConfigMap', () => {
  let dir: string
  beforeAll(async () => {
    await ensureBuilt()
    dir = tempDir('kia-helm-run-')
  }, 120_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('starts, answers the probes, requires the caller token, rotates the caller key and stops on SIGTERM', async () => {
    const port = await freePort()
    const state = join(dir, 'var', 'aws-iam-authenticator')
    const kubeconfigDir = join(dir, 'etc', 'kubernetes', 'aws-iam-authenticator')
    const r = render({ ...BASE, server: { port }, hostPaths: { stateDir: state, kubeconfigDir } })
    const { pod, c, args, env } = podOnThisMachine(r, dir)
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (out += d))
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    const kubeconfigFile = join(kubeconfigDir, 'kubeconfig.yaml')
    const tokenOf = () => (load(readFileSync(kubeconfigFile, 'utf8')) as Obj).users[0].user.token as string
    try {
      // Ready once the webhook kubeconfig is written (logs are buffered).
      const deadline = Date.now() + 15_000
      while (!existsSync(kubeconfigFile)) {
        if (child.exitCode !== null) throw new Error(`server exited:\n${out}`)
        if (Date.now() > deadline) throw new Error(`server did not start:\n${out}`)
        await new Promise((res) => setTimeout(res, 50))
      }
      const kubeconfig = load(readFileSync(kubeconfigFile, 'utf8')) as Obj
      expect(kubeconfig.clusters[0].cluster.server).toBe(`https://localhost:${port}/authenticate`)
      // Each probe exactly as the kubelet sends it.
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const g = c[probe].httpGet
        const containerPort = (c.ports as Obj[]).find((p) => p.name === g.port)!.containerPort
        expect(g.scheme).toBe('HTTPS')
        expect(await https({ host: g.host ?? '127.0.0.1', port: containerPort, path: g.path }), probe).toEqual({
          status: 200,
          body: 'ok',
        })
      }
      // Caller authentication is on: only the kubeconfig's bearer token gets to /authenticate.
      const review = JSON.stringify({
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token: 'k8s-aws-v1.not-a-token' },
      })
      expect(
        (await https({ host: '127.0.0.1', port, path: '/authenticate', method: 'POST', body: review })).status,
      ).toBe(401)
      const first = tokenOf()
      const authed = await https({
        host: '127.0.0.1',
        port,
        path: '/authenticate',
        method: 'POST',
        body: review,
        token: first,
      })
      expect(authed.status).not.toBe(401)
      expect(JSON.parse(authed.body).status.authenticated).toBeFalsy()

      // rotate-caller-key with nothing but the mounted config (as NOTES.txt tells operators).
      const configArg = args.find((a) => a.startsWith('--config='))!.slice('--config='.length)
      const rotate = await runCli(['rotate-caller-key', '--config', configArg], { env })
      expect(rotate.code, rotate.stderr).toBe(0)
      expect(readdirSync(join(state, 'caller-keys'))).toHaveLength(2)
      const second = tokenOf()
      expect(second).not.toBe(first)
      const retire = await runCli(['rotate-caller-key', '--retire', '--config', configArg], { env })
      expect(retire.code, retire.stderr).toBe(0)
      expect(readdirSync(join(state, 'caller-keys'))).toHaveLength(1)
    } finally {
      child.kill('SIGTERM')
    }
    const started = Date.now()
    expect(await exited).toBe(0)
    expect(Date.now() - started).toBeLessThan(pod.terminationGracePeriodSeconds * 1000)
    expect(readdirSync(state).sort()).toEqual(['caller-keys', 'cert.pem', 'key.pem'])
  }, 60_000)
})

// The pre-generate path with the chart's defaults (callerAuth on): the operator runs the init command
// the notes print, kube-apiserver reads the kubeconfig it wrote, and the server the chart runs must
// accept kube-apiserver. Before, init wrote no caller token and the server answered 401 to every
// review without a warning: kube-apiserver was locked out.
describe('the pre-generated kubeconfig path: the kubeconfig init writes and the rendered server agree', () => {
  let dir: string
  beforeAll(async () => {
    await ensureBuilt()
    dir = tempDir('kia-helm-pregen-')
  }, 120_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  async function install(name: string) {
    const port = await freePort()
    const state = join(dir, name, 'var', 'aws-iam-authenticator')
    const kubeconfigDir = join(dir, name, 'etc', 'kubernetes', 'aws-iam-authenticator')
    const r = render({
      ...BASE,
      server: { port, kubeconfigPregenerated: true },
      hostPaths: { stateDir: state, kubeconfigDir },
    })
    const pod = podOnThisMachine(r, join(dir, name))
    const init = r.notes.split('\n').find((l) => l.trim().startsWith('kube-iam-auth init '))
    expect(init, 'the notes print the init command').toBeDefined()
    return {
      ...pod,
      port,
      kubeconfig: join(kubeconfigDir, 'kubeconfig.yaml'),
      init: init!.trim().split(/\s+/).slice(1),
    }
  }

  function serve(args: string[], env: Record<string, string>, port: number) {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    const ready = (async () => {
      const deadline = Date.now() + 20_000
      for (;;) {
        if (child.exitCode !== null) return { up: false, code: await exited, stderr }
        const probe = await https({ host: '127.0.0.1', port, path: '/healthz' }).catch(() => undefined)
        if (probe?.status === 200) return { up: true }
        if (Date.now() > deadline) throw new Error(`server neither answered nor exited: ${stderr}`)
        await new Promise((res) => setTimeout(res, 100))
      }
    })()
    return { ready, stop: () => (child.kill('SIGTERM'), exited) }
  }

  it('the init command of the notes writes a caller token, and kube-apiserver is accepted', async () => {
    const node = await install('agree')
    expect(node.init).toContain('--caller-auth')
    const init = await runCli(node.init, { env: node.env })
    expect(init.code, init.stderr).toBe(0)
    const server = serve(node.args, node.env, node.port)
    try {
      expect(await server.ready).toEqual({ up: true })
      const apiserver = await startFakeApiserver({ webhookKubeconfig: node.kubeconfig, retryBaseMs: 10 })
      try {
        const whoami = await https({
          host: '127.0.0.1',
          port: Number(new URL(apiserver.url).port),
          path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
          method: 'POST',
          token: 'k8s-aws-v1.bm90LWEtdG9rZW4',
          body: '{}',
        })
        expect(whoami.status).toBe(401) // an unknown user: denied by the webhook...
        expect(apiserver.webhookStatuses).toEqual([200]) // ...which answered kube-apiserver (not 401)
      } finally {
        await apiserver.close()
      }
    } finally {
      expect(await server.stop()).toBe(0)
    }
  }, 60_000)

  it('a kubeconfig pre-generated without the caller token: the rendered server refuses to start, saying what to run', async () => {
    const node = await install('no-token')
    // `kube-iam-auth init` as the chart README used to say, which writes no caller token
    const init = await runCli(
      node.init.filter((a) => a !== '--caller-auth'),
      { env: node.env },
    )
    expect(init.code, init.stderr).toBe(0)
    const server = serve(node.args, node.env, node.port)
    const started = await server.ready.finally(() => server.stop())
    expect(started).toMatchObject({ up: false, code: 1 })
    expect((started as { stderr: string }).stderr).toBe(
      `error: server.callerAuth is on, but the pre-generated kubeconfig ${node.kubeconfig} holds no caller token: ` +
        `kube-apiserver would get 401 on every review; run kube-iam-auth ${node.init.join(' ')} on this node, then restart kube-apiserver\n`,
    )
  }, 60_000)
})
