// The command line as people first meet it: --version, and each command's help listing the global
// options it accepts.
import { beforeAll, describe, expect, it } from 'vitest'
import { cliEnv, ensureBuilt, runCli, tempDir } from '../support/cli.js'

describe('kube-iam-auth command line', () => {
  let env: Record<string, string>
  beforeAll(async () => {
    await ensureBuilt()
    env = cliEnv(tempDir('kia-program-'))
  }, 120_000)

  it('--version prints the version (it was an unknown option)', async () => {
    const r = await runCli(['--version'], { env })
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string }
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      stdout: `${version}\n`,
      stderr: '',
    })
  })

  it.each(['validate', 'explain', 'init', 'server', 'verify', 'add user', 'rotate-caller-key'])(
    '%s --help lists the global options too',
    async (command) => {
      const r = await runCli([...command.split(' '), '--help'], { env })
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('Global Options:')
      for (const flag of [
        '-c, --config <file>',
        '-i, --cluster-id <id>',
        '-l, --log-format <format>',
        '-v, --log-verbosity',
      ]) {
        expect(r.stdout).toContain(flag)
      }
    },
  )

  it('an unknown -l value is refused, naming the choices', async () => {
    const r = await runCli(['-l', 'yaml', 'version'], { env })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `option '-l, --log-format <format>' argument 'yaml' is invalid. Allowed choices are json, text.`,
    )
  })
})
