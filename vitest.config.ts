import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most test files wait on child processes, sockets and timers rather than on the CPU; vitest's
    // default (one worker per core, minus one) runs them one after the other on a 2-core machine.
    maxWorkers: 4,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
  },
})
