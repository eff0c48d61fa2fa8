import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { UsageError } from '../shared/errors.js'
import type { LogFormat } from '../shared/logger.js'
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
    .addOption(
      new Option('-l, --log-format <format>', 'server log format: json lines, or text (key=value lines)')
        .choices(['json', 'text'] satisfies LogFormat[])
        .default('json'),
    )
    .option('-v, --log-verbosity <level>', 'log level (trace, debug, info, warn, error, fatal; default info)')
    .option('--feature-gates <gates>', 'accepted for compatibility; kube-iam-auth has no feature gates')
    .version(packageVersion(), '--version', 'print the version')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    // Inherited by every command defined below: each command's --help lists the global options too.
    .configureHelp({ showGlobalOptions: true })
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
      setExit(await runVerify({ ...opts, clusterId, timeoutMs: opts.timeout }, io, () => readAll(process.stdin)))
    })

  program
    .command('server')
    .description('run the TokenReview webhook for kube-apiserver')
    .option('--partition <partition>', 'AWS partition whose STS hosts are accepted (default aws)')
    .option(
      '--cluster-ids <ids>',
      'comma-separated cluster IDs accepted alongside --cluster-id, at most 4 (replaces clusterIDs)',
      commaList,
    )
    .option('--address <ip>', 'IP address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default 21362)', (v) => positiveInt(v, '--port'))
    .option('--hostname <name>', 'hostname in the serving certificate and webhook kubeconfig (default localhost)')
    .option('--state-dir <dir>', 'where the serving certificate and key live (default /var/aws-iam-authenticator)')
    .option('--generate-kubeconfig <file>', 'where to write the webhook kubeconfig for kube-apiserver')
    .option('--kubeconfig-pregenerated', 'do not write the webhook kubeconfig')
    .option('--kubeconfig <file>', 'kubeconfig for the EKSConfigMap and CRD backends (default in-cluster)')
    .option('--master <url>', 'Kubernetes API server URL for the EKSConfigMap and CRD backends')
    .option('--backend-mode <modes>', 'comma-separated mapping backends, in order (default MountedFile)', (v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    )
    .option('--ec2-describeInstances-qps <qps>', 'EC2 DescribeInstances calls per second (default 15)', Number)
    .option('--ec2-describeInstances-burst <n>', 'EC2 DescribeInstances burst (default 5)', (v) =>
      positiveInt(v, '--ec2-describeInstances-burst'),
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runServer } = await import('./server.js')
      const g = program.opts<{ config?: string; clusterId?: string; logVerbosity?: string; logFormat: LogFormat }>()
      setExit(
        await runServer(
          {
            config: g.config,
            clusterId: g.clusterId,
            clusterIds: opts.clusterIds as string[] | undefined,
            logLevel: g.logVerbosity,
            logFormat: g.logFormat,
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
    .option('--port <port>', 'port the server listens on (default: server.port, 21362)', (v) =>
      positiveInt(v, '--port'),
    )
    .option('--state-dir <dir>', 'write cert.pem and key.pem here (default: .)')
    .option(
      '--generate-kubeconfig <file>',
      'write the webhook kubeconfig here (default: ./aws-iam-authenticator.kubeconfig)',
    )
    .option('--caller-auth', 'write a caller key and its token into the kubeconfig (default: server.callerAuth)')
    .option('--no-caller-auth', 'write no caller token, whatever server.callerAuth says')
    .action(
      async (opts: {
        hostname?: string
        address?: string
        port?: number
        stateDir?: string
        generateKubeconfig?: string
        callerAuth?: boolean
      }) => {
        const { resolveInitFlags, runInit } = await import('./init.js')
        const g = program.opts<{ config?: string; clusterId?: string; featureGates?: string }>()
        let file
        if (g.config !== undefined) {
          const { loadServerConfig } = await import('../config/server-config.js')
          file = loadServerConfig(g.config, { clusterId: g.clusterId }, io.env).config
        }
        setExit(
          await runInit(
            resolveInitFlags({ ...opts, clusterId: g.clusterId, featureGates: g.featureGates }, io.env, file),
            io,
          ),
        )
      },
    )

  const offlineOptions = (cmd: Command) =>
    cmd
      .option('--aws-auth <file>', 'an aws-auth ConfigMap manifest (YAML); "-" reads stdin')
      .option('--dynamic-file <file>', 'a DynamicFile mapping (JSON)')
      .option('--user-id-strict', 'read the DynamicFile in dynamicfileUserIDStrict mode')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))

  offlineOptions(
    program
      .command('validate')
      .description(
        'check a server config, an aws-auth ConfigMap and/or a DynamicFile as the server would, and lint them; ' +
          'exit 0 clean, 1 errors, 2 unusable input',
      ),
  )
    .option('--strict', 'warnings fail too (exit 1)')
    .option('--no-migration-warnings', 'do not warn about entries aws-iam-authenticator never matched')
    // bad flags are unusable input: exit 2, as for an unreadable file
    .exitOverride((err) => {
      throw err.exitCode === 0 ? err : new CommanderError(2, err.code, err.message)
    })
    .action(
      async (opts: {
        awsAuth?: string
        dynamicFile?: string
        userIdStrict?: boolean
        output: string
        strict?: boolean
        migrationWarnings: boolean
      }) => {
        const { runValidate } = await import('./validate.js')
        setExit(await runValidate({ ...opts, config: globals().config }, io, readStdinSync))
      },
    )

  offlineOptions(
    program
      .command('explain')
      .description(
        'dry-run the mapping chain for an ARN: the username and groups, and which rule matched or why none did',
      )
      .option('--arn <arn>', 'the ARN STS reports for the caller (assumed-role ARNs carry the session name)')
      .option('--session-name <name>', 'session name, for {{SessionName}} templates')
      .option('--user-id <id>', 'principal ID (AROA.../AIDA...), for DynamicFile strict mode')
      .option('--access-key-id <id>', 'access key ID, for {{AccessKeyID}} templates'),
  ).action(
    async (opts: {
      arn?: string
      sessionName?: string
      userId?: string
      accessKeyId?: string
      awsAuth?: string
      dynamicFile?: string
      userIdStrict?: boolean
      output: string
    }) => {
      const { runExplain } = await import('./explain.js')
      setExit(await runExplain({ ...opts, config: globals().config }, io, readStdinSync))
    },
  )

  const add = program
    .command('add')
    .description('add a mapping to the kube-system/aws-auth ConfigMap (validated before it is written)')
    .option('--prompt <bool>', 'ask before writing (true/false)', parseBool, true)
    .option('--no-prompt', 'do not ask before writing (same as --prompt=false)')
    .option('--kubeconfig <file>', 'kubeconfig to use (default KUBECONFIG or ~/.kube/config)')
    .option('--master-url <url>', 'Kubernetes API server URL')
    .option('--kubeconfig-context <name>', 'kubeconfig context to use')
  const addAction = (kind: 'user' | 'role') => async (opts: Record<string, unknown>) => {
    const { runAdd } = await import('./add.js')
    const parent = add.opts<{ prompt: boolean; kubeconfig?: string; masterUrl?: string; kubeconfigContext?: string }>()
    setExit(
      await runAdd(
        {
          kind,
          ...parent,
          userarn: opts.userarn as string | undefined,
          rolearn: opts.rolearn as string | undefined,
          sso: opts.sso as string | undefined,
          username: opts.username as string | undefined,
          groups: opts.groups as string[] | undefined,
        },
        io,
      ),
    )
  }
  const groupsOption = (v: string) =>
    v
      .split(',')
      .map((g) => g.trim())
      .filter((g) => g !== '')
  add
    .command('user')
    .description('map an IAM user')
    .option('--userarn <arn>', 'the IAM user ARN')
    .option('--username <name>', 'the Kubernetes username (templates allowed)')
    .option('--groups <groups>', 'comma-separated Kubernetes groups', groupsOption)
    .action(addAction('user'))
  add
    .command('role')
    .description('map an IAM role, or an IAM Identity Center permission set with --sso')
    .option('--rolearn <arn>', 'the IAM role ARN (a path is fine: it is ignored when matching)')
    .option('--sso <fields>', 'permissionSetName=NAME,accountID=ID[,partition=aws]')
    .option('--username <name>', 'the Kubernetes username (templates allowed)')
    .option('--groups <groups>', 'comma-separated Kubernetes groups', groupsOption)
    .action(addAction('role'))

  program
    .command('rotate-caller-key')
    .description('add a caller-authentication key and rewrite the webhook kubeconfig (--retire: remove older keys)')
    .option('--retire', 'remove every key but the newest (after kube-apiserver uses the new kubeconfig)')
    .option('--state-dir <dir>', 'the server state directory (default: server.stateDir)')
    .option('--generate-kubeconfig <file>', 'the webhook kubeconfig to rewrite (default: server.generateKubeconfig)')
    .action(async (opts: { retire?: boolean; stateDir?: string; generateKubeconfig?: string }) => {
      const { runRotateCallerKey } = await import('./rotate-caller-key.js')
      const g = globals()
      setExit(
        await runRotateCallerKey(
          {
            config: g.config,
            clusterId: g.clusterId,
            stateDir: opts.stateDir,
            generateKubeconfig: opts.generateKubeconfig,
            retire: opts.retire ?? false,
          },
          io,
        ),
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
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' ? 0 : err.exitCode
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

function readStdinSync(): string {
  return readFileSync(0, 'utf8')
}

/** `a,b` -> [a, b]; every entry is kept (an empty one is reported by the decoder), "" is none. */
function commaList(value: string): string[] {
  return value.trim() === '' ? [] : value.split(',').map((s) => s.trim())
}

function parseBool(value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true
  if (/^(false|0|no)$/i.test(value)) return false
  throw new UsageError(`expected true or false, got "${value}"`)
}
