// Prints `N passed, N failed, N skipped` from vitest's JSON report: the only line CI reads. Before
// it, one line per skipped test (their titles say why, e.g. which tool the machine lacks).
import { readFileSync } from 'node:fs'

const [file, status] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
try {
  const report = JSON.parse(readFileSync(file, 'utf8'))
  passed = report.numPassedTests
  failed = report.numFailedTests
  skipped = report.numPendingTests + report.numTodoTests
  // A suite that fails to load has no tests to count; it is still a failure.
  failed += report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length
  for (const suite of report.testResults) {
    for (const t of suite.assertionResults) {
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') {
        console.log(`skipped: ${suite.name.replace(`${process.cwd()}/`, '')} > ${t.fullName}`)
      }
    }
  }
} catch {
  failed = 1
}
if (status !== '0' && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
