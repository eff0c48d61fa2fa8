import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { UsageError } from '../errors.js'
import type { Io } from './io.js'

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** Builds the commander program; each action calls one run* function and returns its exit code. */
export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('kube-iam-auth')
    .description('IAM-to-Kubernetes authenticator: kubectl credential plugin and TokenReview webhook')
    .option('-c, --config <file>', 'load configuration from this file')
    .option('-i, --cluster-id <id>', 'cluster ID (env KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID)')
    .addOption(new Option('-l, --log-format <format>', 'log format').choices(['text', 'json']).default('json'))
    .option('-v, --log-verbosity <level>', 'log level (trace, debug, info, warn, error, fatal)', 'info')
    .option('--feature-gates <gates>', 'accepted for compatibility; kube-iam-auth has no feature gates')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError()

  const globals = () => program.opts<{ config?: string; clusterId?: string }>()

  program
    .command('token')
    .description('print a kubectl ExecCredential with a token for the cluster (see: kube-iam-auth token --help)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runToken } = await import('./token.js')
      const g = globals()
      const inherited = [...(g.clusterId ? ['-i', g.clusterId] : []), ...(g.config ? ['-c', g.config] : [])]
      setExit(await runToken([...inherited, ...args], io))
    })

  program
    .command('verify')
    .description('verify a token against STS and print the identity that signed it')
    .option('-t, --token <token>', 'the token to verify ("-" reads it from stdin)')
    .option('-o, --output <format>', 'output format: json')
    .option('--partition <partition>', 'AWS partition whose STS hosts are accepted', 'aws')
    .option('--timeout <ms>', 'STS request timeout in milliseconds', (v) => positiveInt(v, '--timeout'))
    .action(async (opts: { token?: string; output?: string; partition: string; timeout?: number }) => {
      const { runVerify } = await import('./verify.js')
      const clusterId = globals().clusterId ?? io.env.KUBERNETES_AWS_AUTHENTICATOR_CLUSTER_ID
      setExit(
        await runVerify({ ...opts, clusterId, timeoutMs: opts.timeout }, io, () => readAll(process.stdin)),
      )
    })

  program
    .command('version')
    .description('print the version')
    .option('-s, --short', 'print only the version number')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']).default('json'))
    .action((opts: { short?: boolean; output: string }) => {
      const version = packageVersion()
      if (opts.short) io.stdout.write(`${version}\n`)
      else if (opts.output === 'yaml') io.stdout.write(`Version: ${version}\n`)
      else io.stdout.write(`${JSON.stringify({ Version: version })}\n`)
      setExit(0)
    })

  return program
}

export async function runProgram(argv: readonly string[], io: Io): Promise<number> {
  let code = 0
  const program = buildProgram(io, (c) => (code = c))
  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help text)
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' ? 0 : 1
    }
    throw err
  }
  return code
}

export function positiveInt(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new UsageError(`${flag} must be a positive integer`)
  return Number(value)
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let s = ''
  for await (const chunk of stream) s += chunk.toString()
  return s
}
