// The folders of src/ form layers, and imports only run down (docs/architecture.md draws the map).
// This test is the rule: a file that imports from a folder above its own, or from a sibling folder
// of the same layer, fails it.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../support/cli.js'

/** Top-level folders of src/, lowest first. Folders on one layer may not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ['shared'],
  ['token'],
  ['sts', 'client'],
  ['mapping'],
  ['config'],
  ['server'],
  ['cli'],
]

const layerOf = (folder: string): number => LAYERS.findIndex((l) => l.includes(folder))

export interface SourceFile {
  /** Path relative to src/, e.g. `server/app.ts`. */
  readonly path: string
  readonly text: string
}

/** Relative module specifiers a file imports: static and type imports, re-exports, dynamic import(). */
export function importsOf(text: string): string[] {
  const specs: string[] = []
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm
  for (const m of text.matchAll(re)) specs.push(m[1]!)
  return specs
}

/** Every import that breaks the layering, as `from -> to (why)`. */
export function layeringViolations(files: readonly SourceFile[]): string[] {
  const out: string[] = []
  for (const f of files) {
    const [folder, ...rest] = f.path.split('/')
    if (rest.length === 0) {
      out.push(`${f.path}: files belong in a folder of src/ (${LAYERS.flat().join(', ')})`)
      continue
    }
    const from = layerOf(folder!)
    if (from === -1) {
      out.push(`${f.path}: src/${folder}/ is not a known layer; add it to LAYERS and docs/architecture.md`)
      continue
    }
    for (const spec of importsOf(f.text)) {
      const target = relative('/src', resolve('/src', dirname(f.path), spec))
      const targetFolder = target.split('/')[0]!
      if (target.startsWith('..') || targetFolder === folder) continue
      const to = layerOf(targetFolder)
      if (to === -1 || to > from) out.push(`${f.path} -> ${target} (${targetFolder}/ is above ${folder}/)`)
      else if (to === from) out.push(`${f.path} -> ${target} (${targetFolder}/ and ${folder}/ are on one layer)`)
    }
  }
  return out
}

function sourceFiles(dir: string, base = dir): SourceFile[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path, base)
    return e.name.endsWith('.ts') ? [{ path: relative(base, path), text: readFileSync(path, 'utf8') }] : []
  })
}

describe('the folder graph of src/', () => {
  it('has no import from a folder above, or beside, its own', () => {
    const files = sourceFiles(join(ROOT, 'src'))
    expect(files.length).toBeGreaterThan(50)
    expect(layeringViolations(files)).toEqual([])
  })

  it('every folder of src/ is a layer, and every layer is a folder', () => {
    const folders = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()
    expect(folders).toEqual([...LAYERS.flat()].sort())
  })

  it('the checker catches what it is meant to catch', () => {
    const files: SourceFile[] = [
      { path: 'mapping/source-state.ts', text: "import type { Logger } from '../server/logger.js'" },
      { path: 'token/verify.ts', text: "import {\n  identify,\n} from '../sts/get-caller-identity.js'" },
      { path: 'sts/x.ts', text: "const m = await import('../client/y.js')" },
      { path: 'config/a.ts', text: "export { b } from '../cli/b.js'" },
      { path: 'errors.ts', text: '' },
      {
        path: 'server/ok.ts',
        text: "import { x } from '../shared/x.js'\nimport { y } from './y.js'\nimport 'reflect-metadata'",
      },
      {
        path: 'mapping/configmap/ok.ts',
        text: "import { r } from '../rules.js'\nimport { e } from '../../shared/errors.js'",
      },
    ]
    expect(layeringViolations(files)).toEqual([
      'mapping/source-state.ts -> server/logger.js (server/ is above mapping/)',
      'token/verify.ts -> sts/get-caller-identity.js (sts/ is above token/)',
      'sts/x.ts -> client/y.js (client/ and sts/ are on one layer)',
      'config/a.ts -> cli/b.js (cli/ is above config/)',
      'errors.ts: files belong in a folder of src/ (shared, token, sts, client, mapping, config, server, cli)',
    ])
  })
})
