// An assume-role profile with mfa_serial, on a real terminal: `script` gives the command a
// pseudo-terminal, as a shell in a terminal window would. The code is asked once, typed on the
// terminal, and the assumed-role credentials are then cached: the next run asks nothing.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BIN, cliEnv, ensureBuilt, tempDir, tool } from '../support/cli.js'
import { execCredential, tokenIdentity, writeAged } from '../support/client-creds.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'

const SCRIPT = tool('script')
const CLUSTER = 'mfa-cluster'
const ERIN: FakeStsPrincipal = {
  accessKeyId: 'AKIAMFATERMINALERIN1',
  secretAccessKey: 'mfa/erin+SECRET/0123456789abcdefghijklm',
  arn: 'arn:aws:iam::111122223333:user/erin',
  account: '111122223333',
  userId: 'AIDAMFATERMINALERIN1',
}
const ROLE = 'arn:aws:iam::111122223333:role/breakglass'
const SERIAL = 'arn:aws:iam::111122223333:mfa/erin'
const CODE = '428193'
const PROMPT = `Assume Role MFA token code (${SERIAL}): `

interface TerminalRun {
  /** Everything the terminal showed (prompt, echo, output), with \r\n as the terminal writes it. */
  readonly screen: string
  readonly code: number | null
  readonly prompted: boolean
}

/**
 * Runs `kube-iam-auth token` on a pseudo-terminal; when the MFA prompt appears, types `typed` and
 * Enter. Killed after 20 s.
 */
function onTerminal(env: Record<string, string>, typed: string): Promise<TerminalRun> {
  const command = [process.execPath, BIN, 'token', '-i', CLUSTER, '--cache'].map((a) => `'${a}'`).join(' ')
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-q', '-e', '-f', '-c', command, '/dev/null'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let screen = ''
    let prompted = false
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      screen += s
      if (!prompted && screen.includes(PROMPT)) {
        prompted = true
        child.stdin.write(`${typed}\r`)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (s: string) => (screen += s))
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(kill)
      child.stdin.destroy()
      resolve({ screen, code, prompted })
    })
  })
}

const tokenOn = (screen: string) => execCredential(/\{"kind":"ExecCredential".*\}/.exec(screen)?.[0] ?? screen)

describe.skipIf(SCRIPT.missing)(`an MFA prompt on a real terminal${SCRIPT.skipNote}`, () => {
  let sts: FakeSts
  let home: string
  beforeAll(async () => {
    await ensureBuilt()
    sts = await startFakeSts({
      principals: [ERIN],
      roles: [{ roleArn: ROLE, roleId: 'AROAMFABREAKGLASS001', mfa: { serialNumber: SERIAL, code: CODE } }],
    })
  }, 120_000)
  afterAll(async () => {
    await sts?.close()
  })
  beforeEach(() => {
    home = tempDir('kia-mfa-')
  })
  afterEach(() => {
    rmSync(home, { recursive: true, force: true })
  })

  const env = () =>
    cliEnv(home, {
      AWS_PROFILE: 'breakglass',
      AWS_CONFIG_FILE: writeAged(
        join(home, '.aws', 'config'),
        `[profile breakglass]\nrole_arn = ${ROLE}\nsource_profile = erin\nmfa_serial = ${SERIAL}\n`,
      ),
      AWS_SHARED_CREDENTIALS_FILE: writeAged(
        join(home, '.aws', 'credentials'),
        `[erin]\naws_access_key_id = ${ERIN.accessKeyId}\naws_secret_access_key = ${ERIN.secretAccessKey}\n`,
      ),
      AWS_ENDPOINT_URL_STS: sts.url,
      TERM: 'dumb',
    })

  it('asks once, signs as the role, and the next run takes the cached credentials without asking', async () => {
    const e = env()
    const first = await onTerminal(e, CODE)
    expect(first.prompted).toBe(true)
    expect(first.code).toBe(0)
    expect(first.screen.split(PROMPT)).toHaveLength(2) // exactly one prompt
    expect(sts.lastAssumeRole?.serialNumber).toBe(SERIAL)
    const issued = tokenOn(first.screen)
    const identity = await tokenIdentity(sts, issued.token, CLUSTER)
    expect(identity.arn).toMatch(/^arn:aws:sts::111122223333:assumed-role\/breakglass\/aws-sdk-js-\d+$/)

    const assumed = sts.calls.assumeRole
    const second = await onTerminal(e, CODE)
    expect(second).toMatchObject({ code: 0, prompted: false })
    expect(tokenOn(second.screen).token).toBe(issued.token)
    expect(sts.calls.assumeRole).toBe(assumed)
  }, 60_000)

  it('a wrong code: STS refuses, in one line, and nothing is cached', async () => {
    const e = env()
    const r = await onTerminal(e, '000000')
    expect(r.prompted).toBe(true)
    expect(r.code).toBe(1)
    expect(r.screen).toMatch(
      /could not get token: profile "breakglass" \(assume role\): AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code\.\r?\n$/,
    )
    const again = await onTerminal(e, CODE)
    expect(again).toMatchObject({ code: 0, prompted: true })
  }, 60_000)

  it('something that is not a code is refused before STS is asked', async () => {
    const assumed = sts.calls.assumeRole
    const r = await onTerminal(env(), 'hunter2')
    expect(r.code).toBe(1)
    expect(r.screen).toContain(
      `could not get token: profile "breakglass": what was entered is not an MFA code (six digits) for ${SERIAL}`,
    )
    // the terminal echoed it; the message never repeats what was typed
    const message = r.screen.split(/\r?\n/).find((l) => l.startsWith('could not get token'))
    expect(message).not.toContain('hunter2')
    expect(sts.calls.assumeRole).toBe(assumed)
  }, 60_000)
})
