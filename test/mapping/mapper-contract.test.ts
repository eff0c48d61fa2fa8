// The Mapper contract (mapper-contract.ts) against every backend, each through its real source:
// MountedFile from a config document, EKSConfigMap and CRD through the real @kubernetes/client-node
// against the Kubernetes API stand-in (list/watch over HTTP), DynamicFile from a file in a temp
// directory, in both of its key modes.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { dump } from 'js-yaml'
import { ConfigMapMapper } from '../../src/mapping/configmap/index.js'
import { CrdMapper } from '../../src/mapping/crd/index.js'
import { DynamicFileMapper } from '../../src/mapping/dynamicfile/index.js'
import { FileMapper } from '../../src/mapping/file/index.js'
import { isRolePattern } from '../../src/mapping/role-pattern.js'
import type { MappingDocument } from '../../src/mapping/rules.js'
import { tempDir } from '../support/cli.js'
import { startFakeKube, type FakeKube } from '../support/fake-kube.js'
import { describeMapper, type ListName, type SourceOptions } from './mapper-contract.js'

const prefixes = (opts: SourceOptions) =>
  opts.reservedPrefixes === undefined ? {} : { reservedPrefixes: opts.reservedPrefixes }

async function kubeFor(opts: SourceOptions): Promise<{ kube: FakeKube; kubeConfig: KubeConfig }> {
  const kube = await startFakeKube()
  if (opts.unreadable) kube.setDown(true)
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromString(kube.kubeconfigFor())
  return { kube, kubeConfig }
}

describeMapper('MountedFile (the server config file)', {
  name: 'MountedFile',
  differences: { updates: 'never', accountAllowList: true, sso: 'mapped', keyedBy: 'arn', rolePatterns: 'mapped' },
  source: async (doc, opts) => ({
    mapper: new FileMapper(doc, { ...prefixes(opts), source: 'contract' }),
    dispose: async () => {},
  }),
})

/** aws-auth's data: each list a YAML string, as kubectl edit leaves it. */
function awsAuthData(doc: MappingDocument): Record<string, string> {
  const data: Record<string, string> = {}
  if (doc.mapRoles.length > 0) data.mapRoles = dump(doc.mapRoles)
  if (doc.mapUsers.length > 0) data.mapUsers = dump(doc.mapUsers)
  if (doc.mapAccounts.length > 0) data.mapAccounts = dump(doc.mapAccounts)
  return data
}

describeMapper('EKSConfigMap (kube-system/aws-auth through the Kubernetes API)', {
  name: 'EKSConfigMap',
  differences: {
    updates: 'whole-document',
    accountAllowList: true,
    sso: 'mapped',
    keyedBy: 'arn',
    rolePatterns: 'mapped',
  },
  source: async (doc, opts) => {
    const { kube, kubeConfig } = await kubeFor(opts)
    kube.setConfigMap('kube-system', 'aws-auth', awsAuthData(doc))
    return {
      mapper: new ConfigMapMapper({ kubeConfig, log: opts.log, metrics: opts.metrics, ...prefixes(opts) }),
      publish: async (next) => void kube.setConfigMap('kube-system', 'aws-auth', awsAuthData(next)),
      heal: async () => kube.setDown(false),
      dispose: () => kube.close(),
    }
  },
})

/** IAMIdentityMapping names sort in document order: roles first, then users, by index. */
const objectName = (list: ListName, index: number) => `${list.toLowerCase()}-${String(index).padStart(3, '0')}`

/**
 * One IAMIdentityMapping per entry, created in document order (so "first" is also "oldest"); the
 * objects of `existing` that the document no longer has are deleted.
 */
function putMappings(kube: FakeKube, existing: Set<string>, doc: MappingDocument): void {
  if (doc.mapAccounts.length > 0) throw new Error('an IAMIdentityMapping cannot express mapAccounts')
  const wanted = new Map<string, Record<string, unknown>>()
  doc.mapRoles.forEach((r, i) => {
    if (r.sso !== undefined) throw new Error('an IAMIdentityMapping cannot express an SSO entry')
    // a role pattern goes in spec.arnPattern; spec.arn names one principal
    const arnField = isRolePattern(r.rolearn ?? '') ? 'arnPattern' : 'arn'
    wanted.set(objectName('mapRoles', i), { [arnField]: r.rolearn, username: r.username, groups: r.groups })
  })
  doc.mapUsers.forEach((u, i) =>
    wanted.set(objectName('mapUsers', i), { arn: u.userarn, username: u.username, groups: u.groups }),
  )
  for (const name of existing) if (!wanted.has(name) && kube.deleteMapping(name)) existing.delete(name)
  for (const [name, spec] of wanted) {
    kube.putMapping(name, spec)
    existing.add(name)
  }
}

describeMapper('CRD (IAMIdentityMapping objects through the Kubernetes API)', {
  name: 'CRD',
  differences: {
    updates: 'per-object',
    accountAllowList: false,
    sso: 'inexpressible',
    keyedBy: 'arn',
    rolePatterns: 'mapped',
    ruleName: (list, index) => `IAMIdentityMapping/${objectName(list, index)}`,
  },
  source: async (doc, opts) => {
    const { kube, kubeConfig } = await kubeFor(opts)
    const existing = new Set<string>()
    putMappings(kube, existing, doc)
    return {
      mapper: new CrdMapper({ kubeConfig, log: opts.log, metrics: opts.metrics, ...prefixes(opts) }),
      publish: async (next) => putMappings(kube, existing, next),
      heal: async () => kube.setDown(false),
      dispose: () => kube.close(),
    }
  },
})

for (const strict of [false, true]) {
  describeMapper(`DynamicFile (a JSON file${strict ? ', dynamicfileUserIDStrict' : ''})`, {
    name: 'DynamicFile',
    differences: {
      updates: 'whole-document',
      accountAllowList: true,
      sso: strict ? 'refused' : 'mapped',
      keyedBy: strict ? 'principal-id' : 'arn',
      rolePatterns: strict ? 'refused' : 'mapped',
    },
    source: async (doc, opts) => {
      const dir = tempDir('kia-contract-')
      const path = join(dir, 'mapping.json')
      let writes = 0
      const write = (d: MappingDocument) => {
        const tmp = join(dir, `.mapping.json.${writes++}`)
        writeFileSync(tmp, JSON.stringify({ Version: '1', ...d }))
        renameSync(tmp, path)
      }
      // unreadable: the path is a directory, so every read fails (EISDIR)
      if (opts.unreadable) mkdirSync(path)
      else write(doc)
      return {
        mapper: new DynamicFileMapper({
          path,
          userIdStrict: strict,
          log: opts.log,
          metrics: opts.metrics,
          now: Date.now,
          pollIntervalMs: 100,
          ...prefixes(opts),
        }),
        publish: async (next) => write(next),
        heal: async () => {
          rmSync(path, { recursive: true })
          write(doc)
        },
        dispose: async () => rmSync(dir, { recursive: true, force: true }),
      }
    },
  })
}
