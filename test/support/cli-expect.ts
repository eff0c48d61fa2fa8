import { expect } from 'vitest'
import type { CliResult } from './cli.js'

/** The whole outcome of a CLI run at once: exit code, stdout, stderr, and that it finished in time. */
export function expectResult(r: CliResult, code: number, stdout: string, stderr = ''): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut }).toEqual({
    code,
    stdout,
    stderr,
    timedOut: false,
  })
}
