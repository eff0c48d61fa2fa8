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
    .option('-v, --log-verbosity <level>', 'log level (trace, debug, info, warn, error, fatal; default info)')
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
    .command('server')
    .description('run the TokenReview webhook for kube-apiserver')
    .option('--partition <partition>', 'AWS partition whose STS hosts are accepted (default aws)')
    .option('--address <ip>', 'IP address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default 21362)', (v) => positiveInt(v, '--port'))
    .option('--hostname <name>', 'hostname in the serving certificate and webhook kubeconfig (default localhost)')
    .option('--state-dir <dir>', 'where the serving certificate and key live (default /var/aws-iam-authenticator)')
    .option('--generate-kubeconfig <file>', 'where to write the webhook kubeconfig for kube-apiserver')
    .option('--kubeconfig-pregenerated', 'do not write the webhook kubeconfig')
    .option('--kubeconfig <file>', 'kubeconfig for the EKSConfigMap and CRD backends (default in-cluster)')
    .option('--master <url>', 'Kubernetes API server URL for the EKSConfigMap and CRD backends')
    .option('--backend-mode <modes>', 'comma-separated mapping backends, in order (default MountedFile)', (v) =>
      v.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    )
    .option('--ec2-describeInstances-qps <qps>', 'EC2 DescribeInstances calls per second (default 15)', Number)
    .option('--ec2-describeInstances-burst <n>', 'EC2 DescribeInstances burst (default 5)', (v) => positiveInt(v, '--ec2-describeInstances-burst'))
    .action(async (opts: Record<string, unknown>) => {
      const { runServer } = await import('./server.js')
      const g = program.opts<{ config?: string; clusterId?: string; logVerbosity?: string }>()
      setExit(
        await runServer(
          {
            config: g.config,
            clusterId: g.clusterId,
            logLevel: g.logVerbosity,
            partition: opts.partition as string | undefined,
            address: opts.address as string | undefined,
            port: opts.port as number | undefined,
            hostname: opts.hostname as string | undefined,
            stateDir: opts.stateDir as string | undefined,
            generateKubeconfig: opts.generateKubeconfig as string | undefined,
            kubeconfigPregenerated: opts.kubeconfigPregenerated as boolean | undefined,
            kubeconfig: opts.kubeconfig as string | undefined,
            master: opts.master as string | undefined,
            backendMode: opts.backendMode as string[] | undefined,
            ec2Qps: opts.ec2DescribeInstancesQps as number | undefined,
            ec2Burst: opts.ec2DescribeInstancesBurst as number | undefined,
          },
          io,
        ),
      )
    })

  program
    .command('init')
    .description('pre-generate the serving certificate, key and kube-apiserver webhook kubeconfig')
    .option('--hostname <host>', 'name kube-apiserver uses to reach the server (default: server.hostname, localhost)')
    .option('--address <ip>', 'IP address the server listens on (default: server.address, 127.0.0.1)')
    .option('--port <port>', 'port the server listens on (default: server.port, 21362)', (v) => positiveInt(v, '--port'))
    .option('--state-dir <dir>', 'write cert.pem and key.pem here (default: .)')
    .option('--generate-kubeconfig <file>', 'write the webhook kubeconfig here (default: ./aws-iam-authenticator.kubeconfig)')
    .action(async (opts: { hostname?: string; address?: string; port?: number; stateDir?: string; generateKubeconfig?: string }) => {
      const { resolveInitFlags, runInit } = await import('./init.js')
      const g = program.opts<{ config?: string; clusterId?: string; featureGates?: string }>()
      let file
      if (g.config !== undefined) {
        const { loadServerConfig } = await import('../config/server-config.js')
        file = loadServerConfig(g.config, { clusterId: g.clusterId }, io.env).config
      }
      setExit(await runInit(resolveInitFlags({ ...opts, clusterId: g.clusterId, featureGates: g.featureGates }, io.env, file), io))
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
