import type { Io } from './io.js'
import { readOfflineSources, type OfflineFlags } from './mapping-sources.js'

export interface ValidateFlags extends OfflineFlags {
  readonly output?: string | undefined
}

/**
 * `kube-iam-auth validate`: lints a server config, an aws-auth ConfigMap manifest and/or a
 * DynamicFile offline, printing every problem with its location. Exit 1 on any error, so it can
 * guard a CI pipeline or a GitOps repository; warnings alone exit 0.
 */
export async function runValidate(flags: ValidateFlags, io: Io, readStdin: () => string): Promise<number> {
  const { files } = readOfflineSources(flags, readStdin)
  const all = files.flatMap((f) => f.problems.map((p) => ({ file: f.file, ...p })))
  const errors = all.filter((p) => p.severity === 'error').length
  const warnings = all.length - errors
  if (flags.output === 'json') {
    io.stdout.write(`${JSON.stringify({ valid: errors === 0, errors, warnings, problems: all }, null, 2)}\n`)
  } else {
    for (const p of all) io.stdout.write(`${p.file}: ${p.path}: ${p.severity}: ${p.message}\n`)
    const ok = files.filter((f) => !f.problems.some((p) => p.severity === 'error')).map((f) => f.file)
    if (ok.length > 0 && errors === 0) io.stdout.write(`${ok.join(', ')}: valid\n`)
    io.stdout.write(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`)
  }
  return errors === 0 ? 0 : 1
}
