#!/usr/bin/env node
'use strict'
// CommonJS on purpose: kubectl runs `token` before every API call, and a CommonJS entry (a single
// bundled file, see scripts/build.mjs) starts measurably faster than an ES module graph.
const { main, realIo } = require('../dist/cli/bin.cjs')

// The AWS SDK warns on stderr, once per process, that its 2027 releases will need Node 22; kubectl
// would show that on every call. The lockfile pins SDK versions that support Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

main(process.argv.slice(2), realIo()).then((code) => {
  process.exitCode = code
})
