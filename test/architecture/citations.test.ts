// Comments and tests cite upstream behaviour by what it is: the upstream file, test or issue
// ("upstream's pkg/token/token_test.go TestVerifyTokenPreSTSValidations"). The numbered sections of
// the reference notes the project was started from are not in this repository, so a citation of a
// section or quirk number tells a reader nothing. This test fails when one comes back.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../support/cli.js'

const FOLDERS = ['src', 'test', 'bench']
const EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs)$/

/** What such a citation looks like. Built from parts so that this file does not cite itself. */
const RULES: readonly { readonly name: string; readonly pattern: RegExp }[] = [
  { name: 'a numbered section of the reference spec', pattern: new RegExp(`\\b${'spec'}\\s+\\d+(\\.\\d+)*\\b`, 'i') },
  { name: 'a numbered quirk', pattern: new RegExp(`\\b${'quirk'}s?\\s+\\d+(\\.\\d+)*\\b`, 'i') },
  { name: 'a section sign', pattern: new RegExp('\u00a7') },
  {
    name: 'a reference file name',
    pattern: new RegExp(
      ['aws-iam-authenticator-' + 'spec', 'users-asks-' + 'peers-cves', 'style-' + 'anchors'].join('|'),
      'i',
    ),
  },
  { name: 'a numbered upstream case', pattern: new RegExp(`\\bupstream ${'case'}s?\\s+\\d+`, 'i') },
  { name: 'a numbered upstream bug', pattern: new RegExp(`\\b${'bug'}s?\\s+\\d+\\.\\d+`, 'i') },
]

/** Every offending line of `text`, as `line: text (rule)`. */
export function citationProblems(text: string): string[] {
  const out: string[] = []
  text.split('\n').forEach((line, i) => {
    for (const rule of RULES) if (rule.pattern.test(line)) out.push(`${i + 1}: ${line.trim()} (${rule.name})`)
  })
  return out
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'fixtures' ? [] : filesUnder(path)
    return EXTENSIONS.test(e.name) ? [path] : []
  })
}

describe('citations of upstream behaviour', () => {
  it('recognises the forms it forbids, and lets through what only looks alike', () => {
    const cite = (s: string) => citationProblems(s).length
    expect(cite(`// ${'spec'} 8.1 pre-STS cases`)).toBe(1)
    expect(cite(`describe('${'spec'} 8.4 server cases', () => {})`)).toBe(1)
    expect(cite(`/** (${'spec'} 5.3, 8.3) */`)).toBe(1)
    expect(cite(`// ${'quirk'} 9.10`)).toBe(1)
    expect(cite('// see \u00a7 4')).toBe(1)
    expect(cite(`// history: ${'users-asks-'}peers-cves.md`)).toBe(1)
    expect(cite(`it('403 (upstream ${'case'} 21)')`)).toBe(1)
    expect(cite(`it('beats an allowed account (upstream ${'bug'} 9.6)')`)).toBe(1)
    expect(cite("// upstream's pkg/token/token_test.go TestVerifyTokenPreSTSValidations")).toBe(0)
    expect(cite("const spec = { token: 'x' }; o.spec.token; spec: {}")).toBe(0)
    expect(cite('// ARN syntax: six colon-separated sections')).toBe(0)
  })

  it('src/, test/ and bench/ cite upstream by file, test or issue, never by a section number', () => {
    const problems = FOLDERS.flatMap((folder) =>
      filesUnder(join(ROOT, folder)).flatMap((path) =>
        citationProblems(readFileSync(path, 'utf8')).map((p) => `${relative(ROOT, path)}:${p}`),
      ),
    )
    expect(problems).toEqual([])
  })
})
