#!/usr/bin/env node
'use strict'
// CommonJS on purpose: kubectl runs `token` before every API call, and a CommonJS entry (a single
// bundled file, see scripts/build.mjs) starts measurably faster than an ES module graph.
// Written in syntax every Node.js since 0.10 parses, so an old `node` reaches the version check
// below and prints one line instead of a stack trace.
var MINIMUM = [22, 19]
var parts = process.versions.node.split('.').map(Number)
if (parts[0] < MINIMUM[0] || (parts[0] === MINIMUM[0] && parts[1] < MINIMUM[1])) {
  process.stderr.write(
    'kube-iam-auth: Node.js ' +
      MINIMUM.join('.') +
      ' or later is required, but ' +
      process.execPath +
      ' is ' +
      process.version +
      ' (install Node.js 24 LTS, or point kubectl at it: see the README)\n',
  )
  process.exit(1)
}

var bin = require('../dist/cli/bin.cjs')

bin.main(process.argv.slice(2), bin.realIo()).then(function (code) {
  process.exitCode = code
})
