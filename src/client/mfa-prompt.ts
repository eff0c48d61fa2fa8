import { CredentialsError } from '../shared/errors.js'

type Env = Readonly<Record<string, string | undefined>>

export interface Prompt {
  /** Writes `question` to the terminal and resolves with the line typed ('' at end of input). */
  (question: string): Promise<string>
}

/**
 * Whether kubectl lets the plugin talk to the user (KUBERNETES_EXEC_INFO's spec.interactive: false
 * when kubectl has no terminal or the kubeconfig says interactiveMode: Never); undefined when not
 * run by kubectl or when kubectl does not say.
 */
export function execInteractive(env: Env): boolean | undefined {
  if (!env.KUBERNETES_EXEC_INFO) return undefined
  try {
    const info = JSON.parse(env.KUBERNETES_EXEC_INFO) as { spec?: { interactive?: unknown } } | null
    return typeof info?.spec?.interactive === 'boolean' ? info.spec.interactive : undefined
  } catch {
    return undefined
  }
}

/** The SDK's mfaCodeProvider for an assume-role profile with mfa_serial: asks once on the terminal. */
export function mfaCodeProvider(profile: string, env: Env, prompt: Prompt): (serial: string) => Promise<string> {
  return async (serial) => {
    if (execInteractive(env) === false) {
      throw new CredentialsError(
        `profile "${profile}" needs an MFA code for ${serial}, but kubectl started this plugin without a terminal: ` +
          `set interactiveMode: IfAvailable in the kubeconfig's exec section and run kubectl in a terminal`,
      )
    }
    const code = (await prompt(`Assume Role MFA token code (${serial}): `)).trim()
    if (code === '') throw new CredentialsError(`profile "${profile}": no MFA code was entered for ${serial}`)
    if (!/^\d{6}$/.test(code)) {
      throw new CredentialsError(`profile "${profile}": what was entered is not an MFA code (six digits) for ${serial}`)
    }
    return code
  }
}
