import { setFlagsFromString } from 'node:v8'
import { loadServerConfig, type ServerFlags } from '../config/server-config.js'
import { createLogger, type LogFormat } from '../shared/logger.js'
import { startServer } from '../server/run.js'
import type { Io } from './io.js'

export interface ServerCommandFlags extends ServerFlags {
  readonly config?: string | undefined
  readonly logLevel?: string | undefined
  readonly logFormat?: LogFormat | undefined
}

/**
 * V8 settings for a long-running process answering small requests: a young generation of 2 MiB
 * semi-spaces instead of up to 16 MiB, and a heap that favours size over a little speed. V8 reads
 * the semi-space size only when the process starts, so `server` re-executes itself with them (same
 * process ID, same arguments and environment) unless they are already in force. Measured with
 * npm run bench (see the README).
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=2', '--optimize-for-size'] as const

/**
 * Set for the re-executed process unless already set: at most 2 glibc malloc arenas instead of 8
 * per core, one per thread that allocates (V8's and libuv's helpers), each holding freed memory.
 */
export const SERVER_ENV = { MALLOC_ARENA_MAX: '2' } as const

/**
 * The flags `server` must re-execute itself with: none when they are already in force, or when the
 * operator chose a young-generation size of their own (on the command line or in NODE_OPTIONS).
 */
export function missingNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
  if (given.some((f) => /^--max-semi-space-size(=|$)/.test(f))) return []
  return SERVER_NODE_FLAGS.filter((f) => !given.includes(f))
}

/** Replaces this process with node started with `flags` first; returns only when that is not possible. */
export type Reexec = (flags: readonly string[]) => void

function reexecWithFlags(flags: readonly string[]): void {
  // Absent or throwing where the platform has no execve (Windows): run with the flags in force.
  if (process.execve === undefined) return
  try {
    const node = process.execPath
    const env = { ...SERVER_ENV, ...process.env }
    process.execve(node, [node, ...flags, ...process.execArgv, ...process.argv.slice(1)], env)
  } catch {
    // as above
  }
}

/** `kube-iam-auth server`: runs the webhook until SIGTERM or SIGINT, then shuts down gracefully. */
export async function runServer(
  flags: ServerCommandFlags,
  io: Io,
  waitForStop: () => Promise<string> = waitForSignal,
  reexec: Reexec = reexecWithFlags,
): Promise<number> {
  const missing = missingNodeFlags(process.execArgv, io.env.NODE_OPTIONS)
  if (missing.length > 0) reexec(missing)
  // Where re-executing is impossible, the part of the settings V8 reads at run time.
  if (!process.execArgv.includes('--optimize-for-size')) setFlagsFromString('--optimize-for-size')
  const log = createLogger({
    level: flags.logLevel ?? io.env.AWS_IAM_AUTHENTICATOR_LOG_VERBOSITY ?? 'info',
    format: flags.logFormat ?? 'json',
  })
  const { config, warnings } = loadServerConfig(flags.config, flags, io.env)
  for (const w of warnings) log.warn({ file: flags.config, path: w.path }, w.message)
  const server = await startServer(config, { log, env: io.env })
  const signal = await waitForStop()
  log.info({ signal }, 'shutting down')
  await server.close()
  log.flush()
  return 0
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve(signal)
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}
