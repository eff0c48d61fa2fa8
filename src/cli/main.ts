import { writeSync } from 'node:fs'
import { isKiaError, UsageError } from '../shared/errors.js'
import type { Io } from './io.js'

/**
 * Entry point: routes `token` straight to its small module (it runs before every kubectl call and
 * must not pay for loading the rest), everything else through the commander program. The only
 * place that turns errors into messages and exit codes.
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    if (argv[0] === 'token') {
      const { runToken } = await import('./token.js')
      return await runToken(argv.slice(1), io)
    }
    const { runProgram } = await import('./program.js')
    return await runProgram(argv, io)
  } catch (err) {
    return report(err, commandName(argv), io)
  }
}

/** Global flags that take a value; skipped when looking for the command (`-i C verify ...`). */
const GLOBAL_VALUE_FLAGS = new Set([
  '-c',
  '--config',
  '-i',
  '--cluster-id',
  '-l',
  '--log-format',
  '-v',
  '--log-verbosity',
  '--feature-gates',
])

function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (GLOBAL_VALUE_FLAGS.has(arg)) i++
    else if (!arg.startsWith('-')) return arg
  }
  return undefined
}

function report(err: unknown, command: string | undefined, io: Io): number {
  // By code as well as by class: commands other than `token` run from dist/*.js, whose error
  // classes are not the ones bundled into this file, so instanceof alone misses their errors.
  if (err instanceof UsageError || (err as { code?: unknown } | null)?.code === 'ERR_USAGE') {
    io.stderr.write(`Error: ${(err as Error).message}\nRun 'kube-iam-auth ${command ?? ''} --help' for usage.\n`)
    return 1
  }
  const verb = command === 'token' ? 'could not get token' : command === 'verify' ? 'could not verify token' : 'error'
  if (isKiaError(err)) {
    io.stderr.write(`${verb}: ${err.message}\n`)
    return 1
  }
  const e = err as Error
  io.stderr.write(`${verb}: ${e?.message ?? String(err)}\n`)
  if (io.env.KUBE_IAM_AUTH_DEBUG && e?.stack) io.stderr.write(`${e.stack}\n`)
  return 1
}

export function realIo(): Io {
  return {
    // Plain writes to the file descriptors: touching process.stdout would load Node's stream stack,
    // a measurable share of the `token` fast path that kubectl waits for before every call.
    stdout: { write: (chunk: string) => writeAll(1, chunk) },
    stderr: { write: (chunk: string) => writeAll(2, chunk) },
    env: process.env,
    now: () => new Date(),
    prompt: async (question) => {
      // loaded on demand: the token fast path must not pay for readline
      const { createInterface } = await import('node:readline')
      return new Promise((resolve) => {
        // terminal: false keeps the terminal in cooked mode: the line discipline echoes and edits,
        // and Ctrl-C interrupts the process as everywhere else.
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false })
        // Someone at a terminal is waited for; a pipe that never ends is not (it answers '').
        const giveUp = process.stdin.isTTY ? undefined : setTimeout(() => rl.close(), 60_000)
        // close() emits 'close' synchronously: the answer must be settled before it, or the
        // end-of-input fallback below would win and every answer would read as "no".
        rl.once('line', (line) => {
          resolve(line.trim())
          rl.close()
        })
        rl.once('close', () => {
          clearTimeout(giveUp)
          resolve('')
        })
        process.stderr.write(question)
      })
    },
  }
}

/** Writes all of `chunk`, retrying while a non-blocking descriptor is full. */
function writeAll(fd: number, chunk: string): void {
  let buf = Buffer.from(chunk)
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
    }
  }
}
