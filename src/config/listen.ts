import { isIP } from 'node:net'
import { ConfigInvalid } from '../shared/errors.js'

// The listen address and hostname checks, shared by the config decoder (so `validate` reports
// exactly what the server would refuse) and the serving certificate (server/tls.ts).

/** What is wrong with the listen address and the hostname kube-apiserver uses, by config key. */
export function listenProblems(address: string, hostname: string): { key: 'address' | 'hostname'; message: string }[] {
  const problems: { key: 'address' | 'hostname'; message: string }[] = []
  if (canonicalIp(address) === undefined) {
    problems.push({ key: 'address', message: `server.address must be an IP address, got ${JSON.stringify(address)}` })
  }
  if (hostname !== '' && canonicalIp(hostname) === undefined && !isDnsName(hostname)) {
    problems.push({
      key: 'hostname',
      message: `server.hostname must be a DNS name or an IP address, got ${JSON.stringify(hostname)}`,
    })
  }
  return problems
}

/**
 * The subject alternative names of the serving certificate for (address, hostname), as upstream
 * minus its bugs: `address` must be an IP literal and adds an IP SAN unless unspecified (0.0.0.0, ::); `hostname` adds an IP
 * SAN when it is an IP literal other than `address`, a DNS SAN otherwise, and nothing when empty.
 * IPs come back in canonical form (IPv4-mapped IPv6 as IPv4, like Go).
 */
export function servingCertSans(address: string, hostname: string): { ips: string[]; dns: string[] } {
  const problem = listenProblems(address, hostname)[0]
  if (problem !== undefined) throw new ConfigInvalid(problem.message)
  const ip = canonicalIp(address)!
  const ips = ip === '0.0.0.0' || ip === '::' ? [] : [ip]
  const dns: string[] = []
  if (hostname !== '') {
    const hostIp = canonicalIp(hostname)
    if (hostIp !== undefined) {
      if (hostIp !== ip) ips.push(hostIp)
    } else {
      dns.push(hostname)
    }
  }
  return { ips, dns }
}

/** Canonical text of an IP literal (no zone, no brackets), or undefined. */
export function canonicalIp(s: string): string | undefined {
  const kind = isIP(s)
  if (kind === 4) return s
  if (kind !== 6) return undefined
  let host: string
  try {
    host = new URL(`http://[${s}]/`).hostname.slice(1, -1) // rejects zones (fe80::1%eth0)
  } catch {
    return undefined
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host)
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16)
    const lo = parseInt(mapped[2]!, 16)
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  return host
}

/** Loose DNS-name check (letters, digits, `-`, `_`, `.`, wildcard `*`): keeps garbage out of a SAN. */
function isDnsName(s: string): boolean {
  return s.length <= 253 && /^[A-Za-z0-9_*]([A-Za-z0-9_.*-]*[A-Za-z0-9_.])?$/.test(s)
}
