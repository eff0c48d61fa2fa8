import { readFile } from 'node:fs/promises'
import { loadAll } from 'js-yaml'
import { ConfigInvalid } from '../shared/errors.js'

export interface TokenDefaults {
  clusterId?: string
  region?: string
  role?: string
  externalId?: string
  sessionName?: string
  tokenOnly?: boolean
  forwardSessionName?: boolean
  cache?: boolean
}

const STRING_KEYS = {
  clusterid: 'clusterId',
  region: 'region',
  role: 'role',
  externalid: 'externalId',
  sessionname: 'sessionName',
} as const
const BOOLEAN_KEYS = { tokenonly: 'tokenOnly', forwardsessionname: 'forwardSessionName', cache: 'cache' } as const

/** The top-level client keys of an aws-iam-authenticator config file (keys case-insensitive, as viper reads them). */
export async function readTokenDefaults(file: string): Promise<TokenDefaults> {
  let doc: unknown
  try {
    // loadAll: js-yaml's load() refuses a file that is empty or only comments
    const docs = loadAll(await readFile(file, 'utf8'))
    if (docs.length > 1) throw new Error('expected one YAML document')
    doc = docs[0]
  } catch (err) {
    throw new ConfigInvalid(`could not read config file ${file}: ${(err as Error).message}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigInvalid(`config file ${file}: top level must be a mapping`)
  const out: TokenDefaults = {}
  for (const [rawKey, value] of Object.entries(doc)) {
    const key = rawKey.toLowerCase()
    if (key in STRING_KEYS) {
      if (typeof value !== 'string') throw new ConfigInvalid(`config file ${file}: "${rawKey}" must be a string`)
      out[STRING_KEYS[key as keyof typeof STRING_KEYS]] = value
    } else if (key in BOOLEAN_KEYS) {
      if (typeof value !== 'boolean') throw new ConfigInvalid(`config file ${file}: "${rawKey}" must be true or false`)
      out[BOOLEAN_KEYS[key as keyof typeof BOOLEAN_KEYS]] = value
    }
  }
  return out
}
