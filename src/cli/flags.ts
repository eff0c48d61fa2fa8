import { UsageError } from '../shared/errors.js'

export interface FlagSpec {
  readonly type: 'string' | 'boolean'
  readonly short?: string
}

/**
 * A small strict flag parser with the semantics of Go's pflag, which upstream's CLI uses, so
 * existing kubeconfig `args` keep working: `--name value`, `--name=value`, `-n value`, `-nvalue`,
 * and booleans as `--flag`, `--flag=true` or `--flag=false`. Unknown flags and positional
 * arguments are errors. (Kept tiny: the `token` command must start as fast as `node` itself.)
 */
export function parseFlags<S extends Record<string, FlagSpec>>(
  argv: readonly string[],
  spec: S,
): { [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : string } {
  const byShort = new Map<string, string>()
  for (const [name, s] of Object.entries(spec)) if (s.short) byShort.set(s.short, name)
  const out: Record<string, string | boolean> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    let name: string | undefined
    let inline: string | undefined
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=')
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      inline = eq === -1 ? undefined : arg.slice(eq + 1)
    } else if (arg.startsWith('-') && arg.length > 1 && arg !== '--') {
      name = byShort.get(arg[1]!)
      if (name === undefined) throw new UsageError(`unknown shorthand flag: '${arg[1]}' in ${arg}`)
      const rest = arg.slice(2)
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest
    } else {
      throw new UsageError(`unexpected argument "${arg}"`)
    }
    const s = spec[name]
    if (s === undefined) throw new UsageError(`unknown flag: --${name}`)
    if (s.type === 'boolean') {
      if (inline === undefined) out[name] = true
      else if (/^(true|1|t)$/i.test(inline)) out[name] = true
      else if (/^(false|0|f)$/i.test(inline)) out[name] = false
      else throw new UsageError(`invalid argument "${inline}" for "--${name}" flag: expected true or false`)
    } else if (inline !== undefined) {
      out[name] = inline
    } else {
      const value = argv[i + 1]
      if (value === undefined) throw new UsageError(`flag needs an argument: --${name}`)
      out[name] = value
      i++
    }
  }
  return out as { [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : string }
}
