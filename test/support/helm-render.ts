// A small, strict renderer for this repository's Helm chart, for tests on a machine without `helm`.
//
// It implements the part of Go's text/template and of Sprig the chart uses, with Go's semantics
// where they matter for the output:
//   - actions {{ }}, trim markers {{- and -}}, comments {{/* */}}, string/raw-string/number/bool literals
//   - pipelines with |, parenthesised pipelines, variables ($, $x := ..., $x = ...), field chains
//   - if / else if / else, with / else, range (lists, maps in sorted key order; $v or $k, $v), define
//   - functions: Go's and, or, not, eq, ne, print, printf, len; Helm's include, required, fail,
//     toYaml; Sprig's default, empty, quote, squote, nindent, indent, trunc, trimSuffix, trimPrefix,
//     hasPrefix, hasSuffix, contains, replace, lower, upper, join, splitList, list, dict, set, omit,
//     hasKey, has, kindIs, toString, int, sha256sum
//   - Helm's value model: numbers from values are float64 (printed the way Go prints them, so
//     1000000 prints as 1e+06), integer literals and `int` results are ints (BigInt here); `eq`
//     refuses to compare an int with a float64, as Go does; a missing map key is nil ("" in the
//     output, as Helm prints it), while a field of nil is an error.
// Anything else (an unknown function, `template`, `block`, `break`, a method call, a field access
// after a parenthesised pipeline) throws: a chart that needs more must extend this file, never get a
// silently different rendering. It is not Helm: it has no lookup, tpl, Files, Capabilities checks or
// schema validation, and it formats toYaml with js-yaml (same data, different quoting than go-yaml).
//
// valuesReferences() is a static scanner over the same syntax tree: every `.Values.a.b` path a
// template can use, resolving `.` inside `with` blocks and variables assigned from plain field
// chains; dots inside `range` blocks are element values and are reported as unresolved.

import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { dump, load } from 'js-yaml'

// ------------------------------------------------------------------------------------------------
// Syntax tree

type Literal =
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
type Arg =
  | Literal
  | { t: 'dot'; fields: string[] }
  | { t: 'var'; name: string; fields: string[] }
  | { t: 'pipe'; pipe: Pipeline }
  | { t: 'fn'; name: string }
interface Command {
  readonly args: Arg[]
}
interface Pipeline {
  readonly decl?: { names: string[]; op: ':=' | '=' }
  readonly cmds: Command[]
}
interface Pos {
  readonly file: string
  readonly line: number
}
type Node =
  | { k: 'text'; text: string }
  | { k: 'action'; pipe: Pipeline; pos: Pos }
  | { k: 'if'; branches: { pipe: Pipeline; body: Node[]; pos: Pos }[]; otherwise?: Node[] }
  | { k: 'with'; pipe: Pipeline; body: Node[]; otherwise?: Node[]; pos: Pos }
  | { k: 'range'; pipe: Pipeline; body: Node[]; otherwise?: Node[]; pos: Pos }

export class TemplateError extends Error {}

// ------------------------------------------------------------------------------------------------
// Lexer: text and actions, with trim markers applied

type Token = { k: 'text'; text: string } | { k: 'action'; src: string; pos: Pos }

const SPACE = /[ \t\r\n]/

function lex(src: string, file: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  let trimNext = false
  const lineAt = (offset: number) => src.slice(0, offset).split('\n').length
  while (i < src.length) {
    const open = src.indexOf('{{', i)
    let text = open === -1 ? src.slice(i) : src.slice(i, open)
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '')
    trimNext = false
    if (open === -1) {
      if (text !== '') tokens.push({ k: 'text', text })
      break
    }
    let j = open + 2
    const trimLeft = src[j] === '-' && SPACE.test(src[j + 1] ?? '')
    if (trimLeft) {
      text = text.replace(/[ \t\r\n]+$/, '')
      j += 2
    }
    if (text !== '') tokens.push({ k: 'text', text })
    // Comment: {{/* ... */}} or {{- /* ... */ -}}
    const afterSpace = trimLeft ? j + (src.slice(j).match(/^[ \t\r\n]*/)?.[0].length ?? 0) : j
    if (src.startsWith('/*', afterSpace)) {
      const endComment = src.indexOf('*/', afterSpace + 2)
      if (endComment === -1) throw new TemplateError(`${file}:${lineAt(open)}: unclosed comment`)
      const rest = src.slice(endComment + 2)
      const m = /^(?:[ \t\r\n]+-)?}}/.exec(rest)
      if (m === null) throw new TemplateError(`${file}:${lineAt(open)}: comment ends before }}`)
      trimNext = m[0].length > 2
      i = endComment + 2 + m[0].length
      continue
    }
    // Find the closing }} outside string literals.
    let k = j
    let quote: string | undefined
    for (; k < src.length; k++) {
      const c = src[k]!
      if (quote !== undefined) {
        if (c === '\\' && quote === '"') k++
        else if (c === quote) quote = undefined
      } else if (c === '"' || c === '`') quote = c
      else if (c === '}' && src[k + 1] === '}') break
    }
    if (k >= src.length) throw new TemplateError(`${file}:${lineAt(open)}: unclosed action`)
    let body = src.slice(j, k)
    if (body.endsWith('-') && SPACE.test(body[body.length - 2] ?? '')) {
      body = body.slice(0, -1)
      trimNext = true
    }
    tokens.push({ k: 'action', src: body.trim(), pos: { file, line: lineAt(open) } })
    i = k + 2
  }
  return tokens
}

// ------------------------------------------------------------------------------------------------
// Pipeline parser

type PTok = { k: 'str' | 'num' | 'ident' | 'var' | 'field' | 'punct'; v: string }

function tokenizeAction(src: string, pos: Pos): PTok[] {
  const out: PTok[] = []
  let i = 0
  const fail = (msg: string): never => {
    throw new TemplateError(`${pos.file}:${pos.line}: ${msg} in {{ ${src} }}`)
  }
  const fieldChain = () => {
    const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(src.slice(i))!
    i += m[0].length
    return m[0]
  }
  while (i < src.length) {
    const c = src[i]!
    if (SPACE.test(c)) {
      i++
    } else if (c === '"') {
      let k = i + 1
      for (; k < src.length && src[k] !== '"'; k++) if (src[k] === '\\') k++
      if (k >= src.length) fail('unterminated string')
      out.push({ k: 'str', v: JSON.parse(src.slice(i, k + 1)) as string })
      i = k + 1
    } else if (c === '`') {
      const k = src.indexOf('`', i + 1)
      if (k === -1) fail('unterminated raw string')
      out.push({ k: 'str', v: src.slice(i + 1, k) })
      i = k + 1
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i))!
      out.push({ k: 'num', v: m[0] })
      i += m[0].length
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i))!
      i += m[0].length
      out.push({ k: 'var', v: m[0] + fieldChain() })
    } else if (c === '.') {
      if (/[A-Za-z_]/.test(src[i + 1] ?? '')) out.push({ k: 'field', v: fieldChain() })
      else {
        out.push({ k: 'field', v: '.' })
        i++
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!
      out.push({ k: 'ident', v: m[0] })
      i += m[0].length
      if (src[i] === '.') fail(`method call or field of "${m[0]}" is not supported`)
    } else if (src.startsWith(':=', i)) {
      out.push({ k: 'punct', v: ':=' })
      i += 2
    } else if ('()|=,'.includes(c)) {
      out.push({ k: 'punct', v: c })
      i++
      if (c === ')' && src[i] === '.') fail('field access on a parenthesised pipeline is not supported')
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`)
    }
  }
  return out
}

function parsePipeline(src: string, pos: Pos, allowDecl = true): Pipeline {
  const toks = tokenizeAction(src, pos)
  let i = 0
  const fail = (msg: string): never => {
    throw new TemplateError(`${pos.file}:${pos.line}: ${msg} in {{ ${src} }}`)
  }
  const pipeline = (nested: boolean): Pipeline => {
    let decl: Pipeline['decl']
    // $x := ... | $x = ... | $k, $v := ...
    if (toks[i]?.k === 'var' && !toks[i]!.v.includes('.', 1)) {
      const names = [toks[i]!.v]
      let j = i + 1
      if (toks[j]?.v === ',' && toks[j + 1]?.k === 'var') {
        names.push(toks[j + 1]!.v)
        j += 2
      }
      const op = toks[j]
      if (op?.k === 'punct' && (op.v === ':=' || op.v === '=')) {
        if (!allowDecl || nested) fail('declaration not allowed here')
        decl = { names, op: op.v }
        i = j + 1
      }
    }
    const cmds: Command[] = []
    let args: Arg[] = []
    for (;;) {
      const tok = toks[i]
      if (tok === undefined || (tok.k === 'punct' && tok.v === ')')) break
      i++
      if (tok.k === 'punct' && tok.v === '|') {
        if (args.length === 0) fail('empty command')
        cmds.push({ args })
        args = []
        continue
      }
      if (tok.k === 'punct' && tok.v === '(') {
        const inner = pipeline(true)
        if (toks[i]?.v !== ')') fail('missing )')
        i++
        args.push({ t: 'pipe', pipe: inner })
        continue
      }
      if (tok.k === 'punct') fail(`unexpected ${tok.v}`)
      args.push(operand(tok))
    }
    if (args.length === 0) fail('empty command')
    cmds.push({ args })
    return decl === undefined ? { cmds } : { decl, cmds }
  }
  const operand = (tok: PTok): Arg => {
    switch (tok.k) {
      case 'str':
        return { t: 'str', v: tok.v }
      case 'num':
        return /[.eE]/.test(tok.v) ? { t: 'float', v: Number(tok.v) } : { t: 'int', v: BigInt(tok.v) }
      case 'field':
        return { t: 'dot', fields: tok.v === '.' ? [] : tok.v.slice(1).split('.') }
      case 'var': {
        const [name, ...fields] = tok.v.split('.')
        return { t: 'var', name: name!, fields }
      }
      case 'ident':
        if (tok.v === 'true' || tok.v === 'false') return { t: 'bool', v: tok.v === 'true' }
        if (tok.v === 'nil') return { t: 'nil' }
        return { t: 'fn', name: tok.v }
      default:
        return fail(`unexpected ${tok.v}`)
    }
  }
  const p = pipeline(false)
  if (i !== toks.length) fail('unexpected )')
  return p
}

// ------------------------------------------------------------------------------------------------
// Statement parser

interface ParsedTemplate {
  readonly nodes: Node[]
  readonly defines: Map<string, Node[]>
}

export function parseTemplate(src: string, file: string): ParsedTemplate {
  const tokens = lex(src, file)
  const defines = new Map<string, Node[]>()
  let i = 0
  const keyword = (s: string) => /^([a-z]+)\b\s*(.*)$/s.exec(s)
  // Parses until one of `stops` (an action whose first word is in it); returns the stop action.
  const list = (stops: readonly string[]): { nodes: Node[]; stop?: { word: string; rest: string; pos: Pos } } => {
    const nodes: Node[] = []
    while (i < tokens.length) {
      const tok = tokens[i++]!
      if (tok.k === 'text') {
        nodes.push({ k: 'text', text: tok.text })
        continue
      }
      const m = keyword(tok.src)
      const word = m?.[1]
      const rest = m?.[2] ?? ''
      if (word !== undefined && stops.includes(word)) return { nodes, stop: { word, rest, pos: tok.pos } }
      switch (word) {
        case 'if': {
          const branches = [{ pipe: parsePipeline(rest, tok.pos), body: [] as Node[], pos: tok.pos }]
          let otherwise: Node[] | undefined
          for (;;) {
            const r = list(['else', 'end'])
            if (otherwise !== undefined) otherwise = r.nodes
            else branches[branches.length - 1]!.body = r.nodes
            if (r.stop === undefined) throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: if without end`)
            if (r.stop.word === 'end') break
            if (otherwise !== undefined)
              throw new TemplateError(`${r.stop.pos.file}:${r.stop.pos.line}: else after else`)
            const elseIf = /^if\b\s*(.*)$/s.exec(r.stop.rest)
            if (elseIf) branches.push({ pipe: parsePipeline(elseIf[1]!, r.stop.pos), body: [], pos: r.stop.pos })
            else if (r.stop.rest === '') otherwise = []
            else throw new TemplateError(`${r.stop.pos.file}:${r.stop.pos.line}: unsupported else ${r.stop.rest}`)
          }
          nodes.push(otherwise === undefined ? { k: 'if', branches } : { k: 'if', branches, otherwise })
          break
        }
        case 'with':
        case 'range': {
          const pipe = parsePipeline(rest, tok.pos)
          if (word === 'with' && pipe.decl !== undefined)
            throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: with $x := is not supported`)
          const r = list(['else', 'end'])
          if (r.stop === undefined) throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: ${word} without end`)
          let otherwise: Node[] | undefined
          if (r.stop.word === 'else') {
            if (r.stop.rest !== '')
              throw new TemplateError(`${r.stop.pos.file}:${r.stop.pos.line}: unsupported else ${r.stop.rest}`)
            const e = list(['end'])
            if (e.stop === undefined) throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: ${word} without end`)
            otherwise = e.nodes
          }
          const node = { k: word, pipe, body: r.nodes, pos: tok.pos } as Node & { otherwise?: Node[] }
          if (otherwise !== undefined) node.otherwise = otherwise
          nodes.push(node)
          break
        }
        case 'define': {
          const name = /^"([^"]+)"$/.exec(rest)?.[1]
          if (name === undefined) throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: define needs a quoted name`)
          const r = list(['end'])
          if (r.stop === undefined) throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: define without end`)
          if (defines.has(name))
            throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: template ${name} defined twice`)
          defines.set(name, r.nodes)
          break
        }
        case 'else':
        case 'end':
          throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: unexpected {{ ${word} }}`)
        case 'template':
        case 'block':
        case 'break':
        case 'continue':
          throw new TemplateError(`${tok.pos.file}:${tok.pos.line}: {{ ${word} }} is not supported (use include)`)
        default:
          nodes.push({ k: 'action', pipe: parsePipeline(tok.src, tok.pos), pos: tok.pos })
      }
    }
    return { nodes }
  }
  const top = list([])
  return { nodes: top.nodes, defines }
}

// ------------------------------------------------------------------------------------------------
// Values: Go-like kinds and printing

const STRICT = Symbol('struct')
/** An object whose missing fields are an error (Helm's .Chart, .Release, .Template are Go structs). */
function struct<T extends object>(o: T): T {
  return Object.assign(Object.create({ [STRICT]: true }) as object, o) as T
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Go's reflect Kind name, as Sprig's kindOf reports it. */
export function kindOf(v: unknown): string {
  if (v === undefined || v === null) return 'invalid'
  if (typeof v === 'string') return 'string'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'bigint') return 'int'
  if (typeof v === 'number') return 'float64'
  if (Array.isArray(v)) return 'slice'
  if (isMap(v)) return STRICT in v ? 'struct' : 'map'
  return 'invalid'
}

/** strconv.FormatFloat(f, 'g', -1, 64), which is how Go's %v prints a float64. */
export function goFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN'
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf'
  if (f === 0) return Object.is(f, -0) ? '-0' : '0'
  const [mantissa, expText] = f.toExponential().split('e') as [string, string]
  const exp = Number(expText)
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp))
    return `${mantissa}e${exp < 0 ? '-' : '+'}${e}`
  }
  return String(f)
}

/** fmt's %v. */
function goPrint(v: unknown, nil = '<nil>'): string {
  if (v === undefined || v === null) return nil
  if (typeof v === 'string') return v
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  if (typeof v === 'number') return goFloat(v)
  if (Array.isArray(v)) return `[${v.map((x) => goPrint(x)).join(' ')}]`
  if (isMap(v))
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goPrint(v[k])}`)
      .join(' ')}]`
  throw new TemplateError(`cannot print ${typeof v}`)
}

/** Go template truth. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null) return false
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'bigint') return v !== 0n
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0
  if (isMap(v)) return STRICT in v || Object.keys(v).length > 0
  return true
}

/** Sprig's empty. */
function empty(v: unknown): boolean {
  return !truthy(v)
}

function toPlain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v)
  if (Array.isArray(v)) return v.map(toPlain)
  if (isMap(v)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = toPlain(x)
    return out
  }
  return v
}

/** Helm's toYaml: the YAML of the value (keys sorted, as sigs.k8s.io/yaml does), no final newline. */
export function toYaml(v: unknown): string {
  if (v === undefined || v === null) return 'null'
  return dump(toPlain(v), { sortKeys: true, lineWidth: -1, seqNoIndent: true }).replace(/\n$/, '')
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(toPlain(a)) === JSON.stringify(toPlain(b))
}

function str(v: unknown, fn: string): string {
  if (typeof v !== 'string') throw new TemplateError(`${fn}: expected a string, got ${kindOf(v)}`)
  return v
}

function goEq(a: unknown, b: unknown): boolean {
  const ka = kindOf(a)
  const kb = kindOf(b)
  const basic = ['string', 'bool', 'int', 'float64']
  if (!basic.includes(ka) || !basic.includes(kb)) throw new TemplateError(`eq: cannot compare ${ka} with ${kb}`)
  if (ka !== kb) throw new TemplateError(`eq: incompatible types for comparison (${ka} and ${kb})`)
  return a === b
}

function sprintf(format: string, args: unknown[]): string {
  let n = 0
  return format.replace(/%([%svdq])/g, (_m, verb: string) => {
    if (verb === '%') return '%'
    if (n >= args.length) throw new TemplateError(`printf: missing argument for %${verb}`)
    const a = args[n++]
    if (verb === 's') return typeof a === 'string' ? a : `%!s(${kindOf(a)}=${goPrint(a)})`
    if (verb === 'd') {
      if (typeof a !== 'bigint') throw new TemplateError(`printf %d of ${kindOf(a)}`)
      return String(a)
    }
    if (verb === 'q') return JSON.stringify(str(a, 'printf %q'))
    return goPrint(a)
  })
}

// ------------------------------------------------------------------------------------------------
// Evaluation

class Scope {
  readonly #vars = new Map<string, unknown>()
  readonly parent: Scope | undefined
  constructor(parent?: Scope) {
    this.parent = parent
  }
  declare(name: string, v: unknown): void {
    this.#vars.set(name, v)
  }
  assign(name: string, v: unknown): void {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      if (s.#vars.has(name)) {
        s.#vars.set(name, v)
        return
      }
    }
    throw new TemplateError(`undefined variable ${name}`)
  }
  get(name: string): unknown {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.#vars.has(name)) return s.#vars.get(name)
    throw new TemplateError(`undefined variable ${name}`)
  }
}

function field(v: unknown, name: string): unknown {
  if (v === undefined || v === null) throw new TemplateError(`nil pointer evaluating interface {}.${name}`)
  if (!isMap(v)) throw new TemplateError(`can't evaluate field ${name} in type ${kindOf(v)}`)
  if (Object.prototype.hasOwnProperty.call(v, name)) return v[name]
  if (STRICT in v) throw new TemplateError(`can't evaluate field ${name} (no such field)`)
  return undefined
}

export interface ChartFiles {
  readonly dir: string
  readonly chart: Record<string, unknown>
  readonly values: Record<string, unknown>
  /** templates/<name> -> parsed template, in file-name order. */
  readonly templates: Map<string, ParsedTemplate>
  /** crds/<name> -> raw text (Helm installs them as they are). */
  readonly crds: Map<string, string>
}

export function loadChart(dir: string): ChartFiles {
  const chart = load(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>
  const values = (load(readFileSync(join(dir, 'values.yaml'), 'utf8')) ?? {}) as Record<string, unknown>
  const templates = new Map<string, ParsedTemplate>()
  for (const name of readdirSync(join(dir, 'templates')).sort()) {
    templates.set(name, parseTemplate(readFileSync(join(dir, 'templates', name), 'utf8'), `templates/${name}`))
  }
  const crds = new Map<string, string>()
  if (existsSync(join(dir, 'crds'))) {
    for (const name of readdirSync(join(dir, 'crds')).sort())
      crds.set(name, readFileSync(join(dir, 'crds', name), 'utf8'))
  }
  return { dir, chart, values, templates, crds }
}

/** Helm's coalescing of user values over the chart's: maps merge, anything else replaces, null deletes. */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return over === undefined ? structuredClone(base) : structuredClone(over)
  const out = structuredClone(base)
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k]
    else out[k] = isMap(out[k]) && isMap(v) ? mergeValues(out[k], v) : structuredClone(v)
  }
  return out
}

export interface RenderOptions {
  readonly values?: Record<string, unknown>
  readonly releaseName?: string
  readonly namespace?: string
}

export interface Rendered {
  /** templates/<file> -> rendered text, for every non-helper template (empty ones included). */
  readonly files: Map<string, string>
  readonly notes: string
  readonly values: Record<string, unknown>
}

/** Renders every template as `helm template` would (without the CRDs, which Helm never templates). */
export function renderChart(chart: ChartFiles, opts: RenderOptions = {}): Rendered {
  const values = mergeValues(chart.values, opts.values ?? {}) as Record<string, unknown>
  const chartName = String(chart.chart.name)
  const defines = new Map<string, Node[]>()
  for (const [name, t] of chart.templates) {
    defines.set(`${chartName}/templates/${name}`, t.nodes)
    for (const [d, body] of t.defines) {
      if (defines.has(d)) throw new TemplateError(`template ${d} defined twice`)
      defines.set(d, body)
    }
  }
  const root = (file: string) =>
    struct({
      Values: values,
      Chart: struct({
        Name: chartName,
        Version: String(chart.chart.version),
        AppVersion: String(chart.chart.appVersion ?? ''),
        Description: String(chart.chart.description ?? ''),
      }),
      Release: struct({
        Name: opts.releaseName ?? 'kube-iam-auth',
        Namespace: opts.namespace ?? 'kube-system',
        Service: 'Helm',
        IsInstall: true,
        IsUpgrade: false,
        Revision: 1n,
      }),
      Template: struct({ BasePath: `${chartName}/templates`, Name: `${chartName}/templates/${file}` }),
    })

  const execute = (nodes: readonly Node[], dot: unknown, scope: Scope, out: string[], depth: number): void => {
    for (const node of nodes) {
      switch (node.k) {
        case 'text':
          out.push(node.text)
          break
        case 'action': {
          const v = pipeline(node.pipe, dot, scope, node.pos, depth)
          if (node.pipe.decl === undefined) out.push(goPrint(v, ''))
          break
        }
        case 'if': {
          const inner = new Scope(scope)
          const hit = node.branches.find((b) => truthy(pipeline(b.pipe, dot, inner, b.pos, depth)))
          if (hit) execute(hit.body, dot, new Scope(inner), out, depth)
          else if (node.otherwise) execute(node.otherwise, dot, new Scope(inner), out, depth)
          break
        }
        case 'with': {
          const v = pipeline(node.pipe, dot, scope, node.pos, depth)
          if (truthy(v)) execute(node.body, v, new Scope(scope), out, depth)
          else if (node.otherwise) execute(node.otherwise, dot, new Scope(scope), out, depth)
          break
        }
        case 'range': {
          const { decl, cmds } = node.pipe
          const v = pipeline({ cmds }, dot, scope, node.pos, depth)
          const entries: [unknown, unknown][] = Array.isArray(v)
            ? v.map((x, i) => [BigInt(i), x])
            : isMap(v) && !(STRICT in v)
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, v[k]])
              : v === undefined || v === null
                ? []
                : (() => {
                    throw new TemplateError(`${node.pos.file}:${node.pos.line}: range over ${kindOf(v)}`)
                  })()
          if (entries.length === 0) {
            if (node.otherwise) execute(node.otherwise, dot, new Scope(scope), out, depth)
            break
          }
          for (const [key, elem] of entries) {
            const inner = new Scope(scope)
            if (decl?.names.length === 1) inner.declare(decl.names[0]!, elem)
            if (decl?.names.length === 2) {
              inner.declare(decl.names[0]!, key)
              inner.declare(decl.names[1]!, elem)
            }
            execute(node.body, elem, inner, out, depth)
          }
          break
        }
      }
    }
  }

  const include = (name: string, ctx: unknown, depth: number): string => {
    const body = defines.get(name)
    if (body === undefined) throw new TemplateError(`include: no template "${name}"`)
    if (depth > 50) throw new TemplateError(`include: too deep (recursion in ${name}?)`)
    const scope = new Scope()
    scope.declare('$', ctx)
    const out: string[] = []
    execute(body, ctx, scope, out, depth + 1)
    return out.join('')
  }

  const pipeline = (p: Pipeline, dot: unknown, scope: Scope, pos: Pos, depth: number): unknown => {
    try {
      let v: unknown
      p.cmds.forEach((cmd, i) => {
        v = command(cmd, dot, scope, i === 0 ? undefined : { v }, pos, depth)
      })
      if (p.decl) {
        if (p.decl.names.length !== 1) throw new TemplateError('too many variables in declaration')
        if (p.decl.op === ':=') scope.declare(p.decl.names[0]!, v)
        else scope.assign(p.decl.names[0]!, v)
      }
      return v
    } catch (err) {
      if (err instanceof TemplateError && !/^templates\//.test(err.message)) {
        throw new TemplateError(`${pos.file}:${pos.line}: ${err.message}`)
      }
      throw err
    }
  }

  const arg = (a: Arg, dot: unknown, scope: Scope, pos: Pos, depth: number): unknown => {
    switch (a.t) {
      case 'str':
      case 'int':
      case 'float':
      case 'bool':
        return a.v
      case 'nil':
        return null
      case 'dot':
        return a.fields.reduce(field, dot)
      case 'var':
        return a.fields.reduce(field, scope.get(a.name))
      case 'pipe':
        return pipeline(a.pipe, dot, scope, pos, depth)
      case 'fn':
        return callLazy(a.name, [], depth)
    }
  }

  const command = (
    cmd: Command,
    dot: unknown,
    scope: Scope,
    piped: { v: unknown } | undefined,
    pos: Pos,
    depth: number,
  ): unknown => {
    const [first, ...rest] = cmd.args
    if (first!.t === 'fn') {
      const lazy = rest.map((a) => () => arg(a, dot, scope, pos, depth))
      if (piped) lazy.push(() => piped.v)
      return callLazy(first!.name, lazy, depth)
    }
    if (rest.length > 0 || piped) throw new TemplateError(`can't give argument to non-function`)
    return arg(first!, dot, scope, pos, depth)
  }

  const callLazy = (name: string, lazy: (() => unknown)[], depth: number): unknown => {
    // and/or evaluate left to right and stop once the result is known (Go 1.18+).
    if (name === 'and' || name === 'or') {
      if (lazy.length < 1) throw new TemplateError(`${name}: needs arguments`)
      let v: unknown
      for (const f of lazy) {
        v = f()
        if (name === 'and' ? !truthy(v) : truthy(v)) return v
      }
      return v
    }
    const a = lazy.map((f) => f())
    const want = (n: number) => {
      if (a.length !== n) throw new TemplateError(`${name}: wants ${n} arguments, got ${a.length}`)
    }
    switch (name) {
      case 'not':
        want(1)
        return !truthy(a[0])
      case 'eq':
        if (a.length < 2) throw new TemplateError('eq: wants at least 2 arguments')
        return a.slice(1).some((b) => goEq(a[0], b))
      case 'ne':
        want(2)
        return !goEq(a[0], a[1])
      case 'len':
        want(1)
        if (typeof a[0] === 'string' || Array.isArray(a[0])) return BigInt(a[0].length)
        if (isMap(a[0])) return BigInt(Object.keys(a[0]).length)
        throw new TemplateError(`len of ${kindOf(a[0])}`)
      case 'print': {
        let s = ''
        a.forEach((x, i) => {
          if (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string') s += ' '
          s += goPrint(x)
        })
        return s
      }
      case 'printf':
        return sprintf(str(a[0], 'printf'), a.slice(1))
      case 'include':
        want(2)
        return include(str(a[0], 'include'), a[1], depth)
      case 'required':
        want(2)
        if (a[1] === undefined || a[1] === null || a[1] === '')
          throw new TemplateError(`execution error: ${str(a[0], 'required')}`)
        return a[1]
      case 'fail':
        want(1)
        throw new TemplateError(`execution error: ${str(a[0], 'fail')}`)
      case 'toYaml':
        want(1)
        return toYaml(a[0])
      case 'default':
        if (a.length < 1 || a.length > 2) throw new TemplateError('default: wants 1 or 2 arguments')
        return a.length === 1 || empty(a[1]) ? a[0] : a[1]
      case 'empty':
        want(1)
        return empty(a[0])
      case 'quote':
      case 'squote':
        return a
          .filter((x) => x !== undefined && x !== null)
          .map((x) => (name === 'quote' ? JSON.stringify(goPrint(x)) : `'${goPrint(x)}'`))
          .join(' ')
      case 'indent':
      case 'nindent': {
        want(2)
        if (typeof a[0] !== 'bigint') throw new TemplateError(`${name}: width must be an int literal`)
        const pad = ' '.repeat(Number(a[0]))
        const s = pad + goPrint(a[1], '').replaceAll('\n', `\n${pad}`)
        return name === 'nindent' ? `\n${s}` : s
      }
      case 'trunc': {
        want(2)
        const n = Number(a[0] as bigint)
        const s = str(a[1], 'trunc')
        return n < 0 ? s.slice(Math.max(0, s.length + n)) : s.slice(0, n)
      }
      case 'trimSuffix':
      case 'trimPrefix': {
        want(2)
        const fix = str(a[0], name)
        const s = str(a[1], name)
        if (name === 'trimSuffix') return fix !== '' && s.endsWith(fix) ? s.slice(0, -fix.length) : s
        return fix !== '' && s.startsWith(fix) ? s.slice(fix.length) : s
      }
      case 'hasPrefix':
        want(2)
        return str(a[1], name).startsWith(str(a[0], name))
      case 'hasSuffix':
        want(2)
        return str(a[1], name).endsWith(str(a[0], name))
      case 'contains':
        want(2)
        return str(a[1], name).includes(str(a[0], name))
      case 'replace':
        want(3)
        return str(a[2], name).replaceAll(str(a[0], name), str(a[1], name))
      case 'lower':
        want(1)
        return str(a[0], name).toLowerCase()
      case 'upper':
        want(1)
        return str(a[0], name).toUpperCase()
      case 'join': {
        want(2)
        if (!Array.isArray(a[1])) throw new TemplateError(`join: expected a list, got ${kindOf(a[1])}`)
        return a[1].map((x) => goPrint(x, '')).join(str(a[0], name))
      }
      case 'splitList':
        want(2)
        return str(a[1], name).split(str(a[0], name))
      case 'list':
        return [...a]
      case 'dict': {
        if (a.length % 2 !== 0) throw new TemplateError('dict: odd number of arguments')
        const d: Record<string, unknown> = {}
        for (let i = 0; i < a.length; i += 2) d[goPrint(a[i])] = a[i + 1]
        return d
      }
      case 'set': {
        want(3)
        if (!isMap(a[0])) throw new TemplateError(`set: expected a dict, got ${kindOf(a[0])}`)
        a[0][str(a[1], name)] = a[2]
        return a[0]
      }
      case 'omit': {
        if (!isMap(a[0])) throw new TemplateError(`omit: expected a dict, got ${kindOf(a[0])}`)
        const drop = new Set(a.slice(1).map((k) => str(k, name)))
        return Object.fromEntries(Object.entries(a[0]).filter(([k]) => !drop.has(k)))
      }
      case 'hasKey':
        want(2)
        if (!isMap(a[0])) throw new TemplateError(`hasKey: expected a dict, got ${kindOf(a[0])}`)
        return Object.prototype.hasOwnProperty.call(a[0], str(a[1], name))
      case 'has':
        want(2)
        if (a[1] === undefined || a[1] === null) return false
        if (!Array.isArray(a[1])) throw new TemplateError(`Cannot find has on type ${kindOf(a[1])}`)
        return a[1].some((x) => deepEqual(x, a[0]))
      case 'kindIs':
        want(2)
        return kindOf(a[1]) === str(a[0], name)
      case 'toString':
        want(1)
        return goPrint(a[0])
      case 'int': {
        want(1)
        const v = a[0]
        if (typeof v === 'bigint') return v
        if (typeof v === 'number') return BigInt(Math.trunc(v))
        if (typeof v === 'boolean') return v ? 1n : 0n
        if (typeof v === 'string') return /^-?\d+$/.test(v.trim()) ? BigInt(v.trim()) : 0n
        return 0n
      }
      case 'sha256sum':
        want(1)
        return createHash('sha256').update(str(a[0], name)).digest('hex')
      default:
        throw new TemplateError(`function "${name}" is not supported by test/support/helm-render.ts`)
    }
  }

  const files = new Map<string, string>()
  let notes = ''
  for (const [name, t] of chart.templates) {
    if (name.startsWith('_')) continue
    const scope = new Scope()
    const ctx = root(name)
    scope.declare('$', ctx)
    const out: string[] = []
    execute(t.nodes, ctx, scope, out, 0)
    if (name === 'NOTES.txt') notes = out.join('')
    else files.set(`templates/${name}`, out.join(''))
  }
  return { files, notes, values }
}

/** The objects of every rendered manifest, in file order (empty documents dropped). */
export function manifests(rendered: Rendered): { file: string; doc: Record<string, unknown> }[] {
  const out: { file: string; doc: Record<string, unknown> }[] = []
  for (const [file, text] of rendered.files) {
    for (const part of text.split(/^---\s*$/m)) {
      if (part.trim() === '') continue
      const doc = load(part, { filename: file }) as Record<string, unknown> | null
      if (doc !== null && doc !== undefined) out.push({ file, doc })
    }
  }
  return out
}

// ------------------------------------------------------------------------------------------------
// Static scan of .Values references

export interface ValuesReference {
  /** Path below .Values, e.g. ['server', 'port']. */
  readonly path: readonly string[]
  readonly file: string
  readonly line: number
}

export interface ValuesScan {
  readonly references: ValuesReference[]
  /** Field chains whose base could not be resolved statically (inside range, or from a function). */
  readonly unresolved: { expr: string; file: string; line: number }[]
  /** include calls whose context is not the root (the scan assumes define bodies see the root). */
  readonly nonRootIncludes: { name: string; file: string; line: number }[]
}

type Path = readonly string[] | null

/**
 * Every `.Values...` path the chart's templates can reach, from the syntax tree. The dot is resolved
 * through `with` (the body's dot is the with's field chain) and variables assigned from plain field
 * chains; `$` is the root. Bodies of `define` are scanned with the root as dot, which holds because
 * every include in the chart passes `.` at the root or `$` (checked: nonRootIncludes).
 */
export function valuesReferences(chart: ChartFiles): ValuesScan {
  const references: ValuesReference[] = []
  const unresolved: ValuesScan['unresolved'] = []
  const nonRootIncludes: ValuesScan['nonRootIncludes'] = []

  const scanPipe = (p: Pipeline, dot: Path, vars: Map<string, Path>, pos: Pos): Path => {
    let result: Path = null
    p.cmds.forEach((cmd, ci) => {
      const paths = cmd.args.map((a) => scanArg(a, dot, vars, pos))
      const first = cmd.args[0]!
      if (first.t === 'fn' && first.name === 'include') {
        const ctxArg = cmd.args[2]
        const ctx = ctxArg === undefined ? null : paths[2]
        const name = cmd.args[1]?.t === 'str' ? cmd.args[1].v : '(dynamic)'
        if (ctx === null || ctx === undefined || ctx.length !== 0)
          nonRootIncludes.push({ name, file: pos.file, line: pos.line })
      }
      result = p.cmds.length === 1 && ci === 0 && cmd.args.length === 1 ? (paths[0] ?? null) : null
    })
    if (p.decl) {
      if (p.decl.names.length === 1) vars.set(p.decl.names[0]!, result)
      else for (const n of p.decl.names) vars.set(n, null)
    }
    return result
  }

  const scanArg = (a: Arg, dot: Path, vars: Map<string, Path>, pos: Pos): Path => {
    let base: Path
    let fields: string[]
    if (a.t === 'dot') {
      base = dot
      fields = a.fields
    } else if (a.t === 'var') {
      base = a.name === '$' ? [] : (vars.get(a.name) ?? null)
      fields = a.fields
    } else if (a.t === 'pipe') {
      return scanPipe(a.pipe, dot, vars, pos)
    } else {
      return null
    }
    if (base === null) {
      if (fields.length > 0)
        unresolved.push({ expr: `${a.t === 'var' ? a.name : ''}.${fields.join('.')}`, file: pos.file, line: pos.line })
      return null
    }
    const full = [...base, ...fields]
    if (full[0] === 'Values' && full.length > 1)
      references.push({ path: full.slice(1), file: pos.file, line: pos.line })
    return full
  }

  const scanNodes = (nodes: readonly Node[], dot: Path, vars: Map<string, Path>): void => {
    for (const node of nodes) {
      switch (node.k) {
        case 'text':
          break
        case 'action':
          scanPipe(node.pipe, dot, vars, node.pos)
          break
        case 'if': {
          const inner = new Map(vars)
          for (const b of node.branches) {
            scanPipe(b.pipe, dot, inner, b.pos)
            scanNodes(b.body, dot, new Map(inner))
          }
          if (node.otherwise) scanNodes(node.otherwise, dot, new Map(inner))
          break
        }
        case 'with': {
          const target = scanPipe(node.pipe, dot, vars, node.pos)
          scanNodes(node.body, target, new Map(vars))
          if (node.otherwise) scanNodes(node.otherwise, dot, new Map(vars))
          break
        }
        case 'range': {
          scanPipe({ cmds: node.pipe.cmds }, dot, vars, node.pos)
          const inner = new Map(vars)
          for (const n of node.pipe.decl?.names ?? []) inner.set(n, null)
          scanNodes(node.body, null, inner)
          if (node.otherwise) scanNodes(node.otherwise, dot, new Map(vars))
          break
        }
      }
    }
  }

  for (const t of chart.templates.values()) {
    const root = new Map<string, Path>([['$', []]])
    scanNodes(t.nodes, [], root)
    for (const body of t.defines.values()) scanNodes(body, [], new Map(root))
  }
  return { references, unresolved, nonRootIncludes }
}

/** Every leaf path of a values tree (maps are walked; lists, scalars and empty maps are leaves). */
export function valueLeaves(v: unknown, prefix: string[] = []): string[][] {
  if (isMap(v) && Object.keys(v).length > 0) {
    return Object.entries(v).flatMap(([k, x]) => valueLeaves(x, [...prefix, k]))
  }
  return [prefix]
}

/** True when `path` exists in the values tree (every segment a key of a map). */
export function hasValuePath(values: unknown, path: readonly string[]): boolean {
  let v: unknown = values
  for (const seg of path) {
    if (!isMap(v) || !Object.prototype.hasOwnProperty.call(v, seg)) return false
    v = v[seg]
  }
  return true
}
