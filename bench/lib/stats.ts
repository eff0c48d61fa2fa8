export function sorted(xs: ArrayLike<number>): number[] {
  return Array.from(xs).sort((a, b) => a - b)
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(asc: readonly number[], p: number): number {
  if (asc.length === 0) return NaN
  const rank = Math.ceil((p / 100) * asc.length)
  return asc[Math.min(asc.length - 1, Math.max(0, rank - 1))]!
}

export function median(xs: ArrayLike<number>): number {
  const s = sorted(xs)
  if (s.length === 0) return NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const fmt = (x: number | undefined, digits = 1): string =>
  x === undefined || Number.isNaN(x)
    ? 'n/a'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

export function markdownTable(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n')
}
