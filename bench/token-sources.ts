// The `token` command's start-up with each credential source, against the local stand-ins: a
// cache hit, and a cold run (no cache) with keys in the environment, a profile with keys, web
// identity, IAM Identity Center, credential_process, the container endpoint, instance metadata and
// -r. Every command runs as a fresh process, all of them in turn each round beside `node -e 0`, so
// that drift on a busy machine hits all alike; each figure is the median wall time, and the ratio
// is the median of the per-round ratios to `node -e 0`. Each output is checked to be a token.
//
// Usage: npx tsx bench/token-sources.ts [--rounds N]   (default 15; builds nothing: run npm run build)
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startFakeContainerCredentials, startFakeImds } from '../test/support/fake-metadata.js'
import { startFakeSso, writeSsoTokenCache } from '../test/support/fake-sso.js'
import { startFakeSts } from '../test/support/fake-sts.js'
import { writeAged } from '../test/support/client-creds.js'
import { cliEnv } from '../test/support/cli.js'
import { BIN, ROOT, tempDir } from './lib/procs.js'
import { fmt, markdownTable, median } from './lib/stats.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '15' } } })
const ROUNDS = Math.max(3, Math.min(100, Number(values.rounds)))

interface Cmd {
  readonly name: string
  readonly args: string[]
  readonly env: Record<string, string>
  /** For the cache hit: the token every run must print (set by the warm-up run). */
  expect?: string
}

/** Runs one command to its end; wall milliseconds. Throws unless it printed a token. */
function timeOnce(c: Cmd): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(process.execPath, c.args, { cwd: ROOT, env: c.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('close', (code) => {
      clearTimeout(kill)
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      const token = /"token":"(k8s-aws-v1\.[^"]+)"/.exec(out)?.[1]
      if (c.name !== 'node -e 0' && (code !== 0 || token === undefined)) {
        reject(new Error(`${c.name}: exit ${code}: ${err.slice(0, 300)}`))
      } else if (c.expect !== undefined && token !== c.expect) {
        reject(new Error(`${c.name}: not served from the cache`))
      } else {
        if (c.args.includes('--cache')) c.expect = token
        resolve(ms)
      }
    })
  })
}

async function main(): Promise<void> {
  const home = tempDir('sources')
  const sts = await startFakeSts({
    principals: [
      {
        accessKeyId: 'AKIABENCHSOURCES0001',
        secretAccessKey: 'bench/sources+SECRET/0123456789abcdefghi',
        arn: 'arn:aws:iam::111122223333:user/bench',
        account: '111122223333',
        userId: 'AIDABENCHSOURCES0001',
      },
    ],
    roles: [
      {
        roleArn: 'arn:aws:iam::111122223333:role/web',
        roleId: 'AROABENCHWEB00000001',
        webIdentityTokens: ['web-token'],
      },
      { roleArn: 'arn:aws:iam::111122223333:role/admin', roleId: 'AROABENCHADMIN000001' },
    ],
  })
  const sso = await startFakeSso({ sts })
  sso.addSession('sso-token', { user: 'bench', assignments: [{ accountId: '111122223333', roleName: 'Dev' }] })
  const who = { roleArn: 'arn:aws:iam::111122223333:role/node', sessionName: 'bench' }
  const container = await startFakeContainerCredentials({ sts, tokens: { 'pod-token': who } })
  const imds = await startFakeImds({ sts, identity: who })
  const keys =
    'aws_access_key_id = AKIABENCHSOURCES0001\naws_secret_access_key = bench/sources+SECRET/0123456789abcdefghi\n'
  const credentials = writeAged(join(home, 'credentials'), `[dev]\n${keys}`)
  const process_ = sts.mintSession({
    ...who,
    arn: 'arn:aws:sts::111122223333:assumed-role/node/p',
    account: '111122223333',
    userId: 'AROAX:p',
    expiresAt: new Date(Date.now() + 3_600_000),
  })
  const processJson = writeAged(
    join(home, 'process.json'),
    JSON.stringify({
      Version: 1,
      AccessKeyId: process_.accessKeyId,
      SecretAccessKey: process_.secretAccessKey,
      SessionToken: process_.sessionToken,
      Expiration: process_.expiresAt!.toISOString(),
    }),
  )
  const config = writeAged(
    join(home, 'config'),
    '[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n' +
      `[profile tool]\ncredential_process = cat ${processJson}\n` +
      '[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-west-2\n',
  )
  const ssoCache = writeSsoTokenCache(home, 'corp', {
    accessToken: 'sso-token',
    expiresAt: new Date(Date.now() + 6 * 3_600_000),
    startUrl: 'https://corp.awsapps.com/start',
    region: 'us-west-2',
  })
  // as aws sso login left it long ago: the cache never trusts a file modified within the last 2 s
  const longAgo = new Date(Date.now() - 3_600_000)
  utimesSync(ssoCache, longAgo, longAgo)
  const webToken = writeAged(join(home, 'web-token'), 'web-token')
  const base = { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL_STS: sts.url }
  const envKeys = {
    AWS_ACCESS_KEY_ID: 'AKIABENCHSOURCES0001',
    AWS_SECRET_ACCESS_KEY: 'bench/sources+SECRET/0123456789abcdefghi',
  }
  const env = (extra: Record<string, string | undefined>) => cliEnv(home, { ...base, ...extra })
  const token = [BIN, 'token', '-i', 'bench-sources']
  const cacheDir = join(home, 'token-cache')
  mkdirSync(cacheDir, { mode: 0o700 })

  const cmds: Cmd[] = [
    { name: 'node -e 0', args: ['-e', '0'], env: env({}) },
    {
      name: 'cache hit (environment keys)',
      args: [...token, '--cache'],
      env: env({ ...envKeys, KUBE_IAM_AUTH_CACHE_DIR: cacheDir }),
    },
    { name: 'cold: environment keys', args: token, env: env(envKeys) },
    { name: 'cold: profile with keys', args: token, env: env({ AWS_PROFILE: 'dev' }) },
    {
      name: 'cold: -r on environment keys',
      args: [...token, '-r', 'arn:aws:iam::111122223333:role/admin'],
      env: env(envKeys),
    },
    {
      name: 'cold: web identity',
      args: token,
      env: env({
        AWS_WEB_IDENTITY_TOKEN_FILE: webToken,
        AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/web',
        AWS_ROLE_SESSION_NAME: 'bench',
      }),
    },
    {
      name: 'cold: IAM Identity Center (SSO)',
      args: token,
      env: env({ AWS_PROFILE: 'sso', AWS_ENDPOINT_URL_SSO: sso.url }),
    },
    { name: 'cold: credential_process', args: token, env: env({ AWS_PROFILE: 'tool' }) },
    {
      name: 'cold: container endpoint',
      args: token,
      env: env({ AWS_CONTAINER_CREDENTIALS_FULL_URI: container.url, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-token' }),
    },
    {
      name: 'cold: instance metadata (IMDSv2)',
      args: token,
      env: env({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url }),
    },
  ]
  try {
    for (const c of cmds) await timeOnce(c) // warm-up: page cache, and the cache entry for the hit
    const samples = new Map(cmds.map((c) => [c.name, [] as number[]]))
    const ratios = new Map(cmds.map((c) => [c.name, [] as number[]]))
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, number>()
      for (const c of cmds) round.set(c.name, await timeOnce(c))
      for (const c of cmds) {
        samples.get(c.name)!.push(round.get(c.name)!)
        ratios.get(c.name)!.push(round.get(c.name)! / round.get('node -e 0')!)
      }
    }
    console.log(
      `token start-up by credential source (${ROUNDS} rounds, wall time of fresh processes, Node ${process.version})\n`,
    )
    console.log(
      markdownTable(
        ['command', 'median ms', 'vs node -e 0 (median of paired ratios)'],
        cmds.map((c) => [c.name, fmt(median(samples.get(c.name)!)), `${fmt(median(ratios.get(c.name)!), 2)}x`]),
      ),
    )
  } finally {
    await Promise.all([imds.close(), container.close(), sso.close(), sts.close()])
    rmSync(home, { recursive: true, force: true })
  }
}

await main()
