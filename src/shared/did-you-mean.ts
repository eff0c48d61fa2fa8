/**
 * The candidate a mistyped word most likely meant (`mapRole` -> `mapRoles`, `adress` -> `address`),
 * or undefined when none is close: case-insensitive edit distance (insertions, deletions,
 * substitutions, transpositions) of at most a third of the word, and at least 1.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  const limit = Math.max(1, Math.floor(w.length / 3))
  let best: { candidate: string; distance: number } | undefined
  for (const candidate of candidates) {
    const d = distance(w, candidate.toLowerCase())
    if (d <= limit && (best === undefined || d < best.distance)) best = { candidate, distance: d }
  }
  return best?.candidate
}

/** Optimal string alignment distance. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 0; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}
