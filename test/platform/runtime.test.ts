import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN, cliEnv, ensureBuilt, ROOT, runProcess, tempDir } from '../support/cli.js'

// The machines have an older Node.js on PATH; the project runs on the Node.js 24 that the `node`
// devDependency puts in node_modules/.bin, which npm puts first on PATH for every npm script.

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string }
  devDependencies: Record<string, string>
}
const major = (v: string) => Number(v.replace(/^v/, '').split('.')[0])

/** The first `node` on a PATH, as `#!/usr/bin/env node` (and so kubectl's exec plugin) finds it. */
function nodeOnPath(path: string): string {
  return execFileSync('sh', ['-c', 'command -v node'], { env: { PATH: path }, encoding: 'utf8' }).trim()
}

/** A Node.js older than the minimum, if this machine has one outside node_modules (CI machines do). */
const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
  if (!existsSync(p)) return false
  const v = execFileSync(p, ['--version'], { encoding: 'utf8' }).trim()
  return major(v) < 22
})

describe('the runtime', () => {
  it('runs this suite on Node.js 24, the version the devDependency pins', () => {
    expect(major(process.version)).toBe(24)
    expect(pkg.devDependencies.node).toMatch(/^[\^~]?24\./)
  })

  it("puts node_modules/.bin's Node.js 24 first on the PATH every child process and exec plugin inherits", () => {
    const found = nodeOnPath(process.env.PATH ?? '')
    expect(found).toBe(join(ROOT, 'node_modules', '.bin', 'node'))
    expect(major(execFileSync(found, ['--version'], { encoding: 'utf8' }))).toBe(24)
  })

  it('declares in engines the same minimum that the bin enforces', () => {
    const bin = readFileSync(BIN, 'utf8')
    const minimum = /var MINIMUM = \[(\d+), (\d+)\]/.exec(bin)
    expect(minimum).not.toBeNull()
    expect(pkg.engines.node).toBe(`>=${minimum![1]}.${minimum![2]}.0`)
  })

  it.skipIf(OLD_NODE === undefined)(
    `refuses an older Node.js with one line, no stack trace (${OLD_NODE ?? 'skipped: no Node.js older than 22 on this machine'})`,
    async () => {
      await ensureBuilt()
      const home = tempDir()
      for (const args of [['token', '-i', 'c'], ['server', '--config', 'x'], ['version']]) {
        const r = await runProcess(OLD_NODE!, [BIN, ...args], { env: cliEnv(home) })
        expect(r.code).toBe(1)
        expect(r.stdout).toBe('')
        expect(r.stderr).toMatch(
          /^kube-iam-auth: Node\.js 22\.19 or later is required, but \S+ is v\d+\.\d+\.\d+ \(install Node\.js 24 LTS, or point kubectl at it: see the README\)\n$/,
        )
      }
    },
  )
})
