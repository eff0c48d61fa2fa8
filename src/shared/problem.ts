/**
 * One thing wrong (or suspicious) in a configuration or mapping document, located by path, e.g.
 * `server.mapRoles[2].rolearn`. Decoders collect every problem of a document in one pass instead of
 * stopping at the first; errors make the document invalid, warnings do not.
 */
export interface Problem {
  readonly path: string
  readonly message: string
  readonly severity: 'error' | 'warning'
}
