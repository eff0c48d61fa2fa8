// The STS stand-in (test/support/fake-sts.ts, which really verifies SigV4) as its own process, for
// the benchmark. Usage: node --import tsx bench/fake-sts-main.ts [--latency MS] [--principals N]
//
// Prints one JSON line {"url": "http://127.0.0.1:<port>", "pid": ...} once listening, then obeys
// one command per stdin line, answering each with one JSON line on stdout:
//   latency <ms>   set the delay before every answer
//   calls          the request counters
//   reset          zero the counters
//   errors         the last rejection messages
//   fault <mode>   none | error500 | throttle | hang | reset
// It exits when stdin closes (so it never outlives the benchmark) or on SIGTERM/SIGINT.
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { startFakeSts } from '../test/support/fake-sts.js'
import { benchPrincipals, PRINCIPAL_COUNT } from './lib/principals.js'

const { values } = parseArgs({
  options: {
    latency: { type: 'string', default: '0' },
    principals: { type: 'string', default: String(PRINCIPAL_COUNT) },
  },
})
const sts = await startFakeSts({
  principals: benchPrincipals(Number(values.principals)),
  latencyMs: Number(values.latency),
})
const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`)
out({ url: sts.url, pid: process.pid })

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await sts.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/)
  switch (cmd) {
    case 'latency':
      sts.setLatency(Number(arg))
      return out({ ok: true, latencyMs: Number(arg) })
    case 'calls':
      return out({ ok: true, calls: sts.calls })
    case 'reset':
      sts.resetCalls()
      return out({ ok: true })
    case 'fault':
      sts.setFault(arg as 'none' | 'error500' | 'throttle' | 'hang' | 'reset')
      return out({ ok: true, fault: arg })
    case 'errors':
      return out({ ok: true, errors: sts.lastErrors })
    default:
      return out({ ok: false, error: `unknown command ${JSON.stringify(line)}` })
  }
})
rl.on('close', () => void stop())
