import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose'
import { writeFileAtomic } from '../shared/files.js'

/**
 * Caller authentication: only kube-apiserver may ask for reviews. The server keeps Ed25519 signing
 * keys in `<stateDir>/caller-keys/`; the webhook kubeconfig it writes carries a JWT signed by the
 * newest key (audience bound to the cluster ID, key ID in the header), and /authenticate accepts
 * only callers presenting a JWT signed by any key still in that folder.
 *
 * Rotation: `kube-iam-auth rotate-caller-key` adds a new key and rewrites the webhook kubeconfig;
 * the old key stays valid (overlap) until kube-apiserver has been restarted with the new kubeconfig
 * and `rotate-caller-key --retire` removes every key but the newest. The server re-reads the folder
 * every few seconds, so neither step needs a server restart.
 */

export const CALLER_KEYS_DIR = 'caller-keys'
export const CALLER_ISSUER = 'kube-iam-auth'
export const CALLER_SUBJECT = 'kube-apiserver'
const ALG = 'EdDSA'

export function callerAudience(clusterId: string): string {
  return `kube-iam-auth:${clusterId}`
}

export interface CallerKey {
  readonly kid: string
  /** When the key was created (ms); the newest key signs. */
  readonly created: number
  readonly privateJwk: JWK
  readonly publicJwk: JWK
}

/** Every key in the folder, newest first. */
export function loadCallerKeys(stateDir: string): CallerKey[] {
  const dir = join(stateDir, CALLER_KEYS_DIR)
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.jwk'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const keys = names.map((name) => {
    const privateJwk = JSON.parse(readFileSync(join(dir, name), 'utf8')) as JWK & { created?: number }
    const { d: _private, created, ...publicJwk } = privateJwk
    return { kid: privateJwk.kid!, created: created ?? 0, privateJwk, publicJwk }
  })
  return keys.sort((a, b) => b.created - a.created || b.kid.localeCompare(a.kid))
}

/** Adds a new signing key (it becomes the newest) and returns it. */
export async function addCallerKey(stateDir: string, now = Date.now()): Promise<CallerKey> {
  const { privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(privateKey)
  const kid = createHash('sha256').update(jwk.x!).digest('base64url').slice(0, 16)
  const privateJwk = { ...jwk, kid, alg: ALG, use: 'sig', created: now }
  const dir = join(stateDir, CALLER_KEYS_DIR)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  writeFileAtomic(join(dir, `${now}-${kid}.jwk`), `${JSON.stringify(privateJwk)}\n`, 0o600)
  const { d: _private, created: _created, ...publicJwk } = privateJwk
  return { kid, created: now, privateJwk, publicJwk }
}

/** The newest key, creating one if the folder is empty. */
export async function ensureCallerKey(stateDir: string): Promise<CallerKey> {
  return loadCallerKeys(stateDir)[0] ?? addCallerKey(stateDir)
}

/** Removes every key but the newest; returns the key IDs removed. */
export function retireOldCallerKeys(stateDir: string): string[] {
  const [, ...old] = loadCallerKeys(stateDir)
  const dir = join(stateDir, CALLER_KEYS_DIR)
  for (const k of old) {
    for (const name of readdirSync(dir)) if (name.endsWith(`-${k.kid}.jwk`)) rmSync(join(dir, name))
  }
  return old.map((k) => k.kid)
}

/** The bearer token for the webhook kubeconfig: long-lived, revoked by retiring its key. */
export async function issueCallerToken(key: CallerKey, clusterId: string, now = Date.now()): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
    .setIssuer(CALLER_ISSUER)
    .setSubject(CALLER_SUBJECT)
    .setAudience(callerAudience(clusterId))
    .setIssuedAt(Math.floor(now / 1000))
    .sign(await importJWK(key.privateJwk, ALG))
}

export interface CallerVerifier {
  /** The caller's identity (`<subject>/<kid>`) or undefined when the token is not acceptable. */
  verify(token: string): Promise<{ caller: string } | { error: string }>
  close(): void
}

/**
 * Verifies caller JWTs against the keys in the state folder, re-read every `reloadMs`. Accepted
 * tokens are remembered for a short while (kube-apiserver sends the same one on every request).
 */
export function createCallerVerifier(opts: {
  stateDir: string
  clusterId: string
  reloadMs?: number
  now?: () => number
}): CallerVerifier {
  const now = opts.now ?? Date.now
  let keys = loadCallerKeys(opts.stateDir)
  let jwks = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) })
  const accepted = new Map<string, { caller: string; until: number }>()
  const reload = setInterval(() => {
    try {
      const fresh = loadCallerKeys(opts.stateDir)
      if (fresh.map((k) => k.kid).join() !== keys.map((k) => k.kid).join()) {
        keys = fresh
        jwks = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) })
        accepted.clear()
      }
    } catch {
      // keep the keys in force; the next reload tries again
    }
  }, opts.reloadMs ?? 2_000)
  reload.unref()
  return {
    async verify(token) {
      const hash = createHash('sha256').update(token).digest('base64url')
      const hit = accepted.get(hash)
      if (hit !== undefined && hit.until > now()) return { caller: hit.caller }
      try {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, {
          issuer: CALLER_ISSUER,
          audience: callerAudience(opts.clusterId),
          algorithms: [ALG],
          requiredClaims: ['iat', 'sub'],
          currentDate: new Date(now()),
        })
        const caller = `${payload.sub}/${protectedHeader.kid}`
        if (accepted.size >= 64) accepted.clear()
        accepted.set(hash, { caller, until: now() + 60_000 })
        return { caller }
      } catch (err) {
        return { error: (err as { code?: string }).code ?? 'ERR_JWT_INVALID' }
      }
    },
    close: () => clearInterval(reload),
  }
}
