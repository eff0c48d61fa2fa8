#!/usr/bin/env node
'use strict'
// CommonJS on purpose: kubectl runs `token` before every API call, and a CommonJS entry (a single
// bundled file, see package.json "build") starts measurably faster than an ES module graph.
const { main, realIo } = require('../dist/cli/bin.cjs')

main(process.argv.slice(2), realIo()).then((code) => {
  process.exitCode = code
})
