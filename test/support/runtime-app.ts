// Checks of a runtime /app folder (package.json, node_modules, bin/, dist/, config/): the image's own,
// copied out of a real build by test/packaging/docker.test.ts, or the simulation of it that
// test/packaging/dockerfile.test.ts assembles when no Docker engine answers. Both run the same checks.

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, relative } from 'node:path'
import { expect } from 'vitest'
import { onPath, ROOT, tool } from './cli.js'

export const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
  license: string
  engines: { node: string }
  bin: Record<string, string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

/** The image's service user (distroless "nonroot"). */
export const RUNTIME_UID = 65532

/** Every file under a directory, relative to `root`. */
export function walk(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), root) : [relative(root, join(dir, e.name))],
  )
}

/** True when a Docker engine answers `docker info` within a few seconds. */
export function dockerEngineAnswers(timeoutMs = 5_000): boolean {
  if (!onPath('docker')) return false
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  })
  return r.status === 0 && r.stdout.trim() !== ''
}

/** A Docker engine, for the tests that build and run the image (skipped, saying so, without one). */
export const DOCKER = tool('a Docker engine (docker info)', () => dockerEngineAnswers())

/** node_modules holds exactly the lockfile's production packages: all of them, and no devDependency. */
export function expectProductionInstall(app: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean; os?: string[]; cpu?: string[] }>
  }
  const top = Object.entries(lock.packages).filter(([path]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
  const dev = top.filter(([, p]) => p.dev).map(([path]) => path)
  const prod = top.filter(([, p]) => !p.dev && !(p.optional && (p.os || p.cpu))).map(([path]) => path)
  expect(dev).toEqual(
    expect.arrayContaining([
      'node_modules/typescript',
      'node_modules/esbuild',
      'node_modules/vitest',
      'node_modules/tsx',
    ]),
  )
  for (const path of dev) expect(existsSync(join(app, path)), `${path} (dev) is installed`).toBe(false)
  for (const path of prod) expect(existsSync(join(app, path, 'package.json')), `${path} is missing`).toBe(true)
  for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true)
}

/** Every package dist/ imports is a declared dependency, present in the app's node_modules. */
export function expectDistImportsInstalled(app: string): void {
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))
  const specifiers = new Set<string>()
  for (const f of walk(join(app, 'dist')).filter((f) => /\.(c|m)?js$/.test(f))) {
    const text = readFileSync(join(app, 'dist', f), 'utf8')
    for (const m of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)["']([^"'./][^"']*)["']/g,
    ))
      specifiers.add(m[1]!)
  }
  const packages = [...specifiers]
    .filter((s) => !builtins.has(s) && !s.startsWith('node:'))
    .map((s) =>
      s
        .split('/')
        .slice(0, s.startsWith('@') ? 2 : 1)
        .join('/'),
    )
  expect(packages.length).toBeGreaterThan(5)
  for (const p of new Set(packages)) {
    expect(pkg.dependencies, `${p} is imported by dist/ but not a dependency`).toHaveProperty([p])
    expect(existsSync(join(app, 'node_modules', p, 'package.json')), p).toBe(true)
  }
}
