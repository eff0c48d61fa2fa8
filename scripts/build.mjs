// Build: tsc emits dist/ (ES modules, used by the server and every other command); esbuild then
// bundles the `token` command into two CommonJS files, because kubectl starts it before every API
// call and one CommonJS file loads far faster than a graph of ES modules:
//   dist/cli/bin.cjs          the entry: argument parsing and the cache fast path (Node built-ins only)
//   dist/client/get-token.cjs signing and credentials, loaded only on a cache miss
// The AWS SDK's credential chain, STS client and config loader stay external, loaded only when used.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { build } from 'esbuild'

execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
})

// tsc never deletes: an output whose source was renamed or removed would stay in dist/ and still be
// imported by whatever finds it (and counted by the packaging checks).
for (const entry of readdirSync('dist', { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.js')) continue
  const out = join(entry.parentPath, entry.name)
  const source = join('src', relative('dist', out)).replace(/\.js$/, '.ts')
  if (!existsSync(source)) rmSync(out)
}

// The credential providers of the AWS SDK's chain: each is loaded only when its link is reached.
const providerExternals = [
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/credential-provider-http',
  '@smithy/credential-provider-imds',
]
const sdkExternals = [...providerExternals, '@aws-sdk/client-sts', '@smithy/core', 'js-yaml']

/**
 * Replaces a relative import with a require() of another output file, so that loading it stays
 * inside CommonJS (a dynamic import() would start Node's ES module loader, which costs more).
 */
const requireInstead = (map) => ({
  name: 'require-instead',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) =>
      args.path in map ? { path: map[args.path], namespace: 'require-instead' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'require-instead' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)})`,
      loader: 'js',
    }))
    b.onResolve({ filter: /\.c?js$/ }, (args) =>
      args.namespace === 'require-instead' ? { path: args.path, external: true } : undefined,
    )
  },
})

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  logLevel: 'warning',
  external: sdkExternals,
}

await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli/bin.cjs',
  plugins: [requireInstead({ '../client/get-token.js': '../client/get-token.cjs' })],
  // program.js and everything behind it stay ES modules, loaded with import() when a command needs them.
  external: [...sdkExternals, './program.js'],
  // Less to parse before the cached token is printed.
  minify: true,
  keepNames: true,
})
// The signer and the env-credentials provider are bundled (tree-shaken) into the cold path: loading
// the whole @smithy/core package from node_modules cost more than everything else together.
await build({
  ...common,
  entryPoints: ['src/client/get-token.ts'],
  outfile: 'dist/client/get-token.cjs',
  mainFields: ['module', 'main'],
  external: [...providerExternals, '@aws-sdk/client-sts', 'js-yaml'],
  // every cold run parses it: minified, as the entry (names kept: errors are told apart by them)
  minify: true,
  keepNames: true,
})
