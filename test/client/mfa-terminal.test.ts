// An assume-role profile with mfa_serial, on a real terminal (tmux, as a person at a terminal
// window): the code is asked once, typed on the terminal, and the assumed-role credentials are then
// cached, so the next run asks nothing. stdout goes to a file, as kubectl reads it; the terminal
// shows the prompt, what is typed, and the one-line errors.
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BIN, cliEnv, ensureBuilt, ROOT, tempDir } from '../support/cli.js'
import { execCredential, tokenIdentity, writeAged } from '../support/client-creds.js'
import { startFakeSts, type FakeSts, type FakeStsPrincipal } from '../support/fake-sts.js'
import { startTerminal, TMUX } from '../support/terminal.js'

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
  /** What the terminal showed: the prompt, what was typed, stderr. */
  readonly screen: string
  readonly code: number
  readonly prompted: boolean
  /** What the command printed on stdout. */
  readonly stdout: string
}

let runs = 0
/**
 * Runs `kube-iam-auth token --cache` on a terminal; when the MFA prompt appears, types `typed` and
 * Enter. Bounded: 20 s.
 */
async function onTerminal(home: string, env: Record<string, string>, typed: string): Promise<TerminalRun> {
  const out = join(home, `stdout-${++runs}`)
  const command = [process.execPath, BIN, 'token', '-i', CLUSTER, '--cache']
  const t = await startTerminal(['sh', '-c', `exec "$0" "$@" > '${out}'`, ...command], { env, cwd: ROOT })
  try {
    let prompted = false
    const deadline = Date.now() + 20_000
    for (;;) {
      if (!prompted && (await t.screen()).includes(PROMPT.trim())) {
        prompted = true
        await t.type(typed, { enter: true })
      }
      const code = await t.exitCode(100).catch(() => undefined)
      if (code !== undefined) {
        return { screen: await t.screen(), code, prompted, stdout: existsSync(out) ? readFileSync(out, 'utf8') : '' }
      }
      if (Date.now() > deadline) throw new Error(`still running after 20 s; screen:\n${await t.screen()}`)
    }
  } finally {
    await t.close()
  }
}

describe.skipIf(TMUX.missing)(`an MFA prompt on a real terminal${TMUX.skipNote}`, () => {
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
    })

  it('asks once, signs as the role, and the next run takes the cached credentials without asking', async () => {
    const e = env()
    const first = await onTerminal(home, e, CODE)
    expect(first.prompted).toBe(true)
    expect(first.code).toBe(0)
    expect(first.screen.split(PROMPT.trim())).toHaveLength(2) // exactly one prompt
    expect(sts.lastAssumeRole?.serialNumber).toBe(SERIAL)
    const issued = execCredential(first.stdout)
    const identity = await tokenIdentity(sts, issued.token, CLUSTER)
    expect(identity.arn).toMatch(/^arn:aws:sts::111122223333:assumed-role\/breakglass\/aws-sdk-js-\d+$/)

    const assumed = sts.calls.assumeRole
    const second = await onTerminal(home, e, CODE)
    expect(second).toMatchObject({ code: 0, prompted: false })
    expect(execCredential(second.stdout).token).toBe(issued.token)
    expect(sts.calls.assumeRole).toBe(assumed)
  }, 60_000)

  it('a wrong code: STS refuses, in one line, and nothing is cached', async () => {
    const e = env()
    const r = await onTerminal(home, e, '000000')
    expect(r.prompted).toBe(true)
    expect(r.code).toBe(1)
    expect(r.screen.split('\n').at(-1)).toBe(
      'could not get token: profile "breakglass" (assume role): AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code.',
    )
    const again = await onTerminal(home, e, CODE)
    expect(again).toMatchObject({ code: 0, prompted: true })
  }, 60_000)

  it('something that is not a code is refused before STS is asked', async () => {
    const assumed = sts.calls.assumeRole
    const r = await onTerminal(home, env(), 'hunter2')
    expect(r.code).toBe(1)
    expect(r.screen).toContain(
      `could not get token: profile "breakglass": what was entered is not an MFA code (six digits) for ${SERIAL}`,
    )
    // the terminal echoed it; the message never repeats what was typed
    const message = r.screen.split('\n').find((l) => l.startsWith('could not get token'))
    expect(message).not.toContain('hunter2')
    expect(sts.calls.assumeRole).toBe(assumed)
  }, 60_000)
})
