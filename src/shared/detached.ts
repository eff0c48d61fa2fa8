/**
 * A copy of `s` that shares no memory with the string it was cut from. V8 represents a substring
 * (slice, split, a regex match) as a view of its parent, which then stays alive as long as the
 * substring does: an access key ID kept in a cache would keep the whole presigned URL it was read
 * from (a third of a cached identity's memory). For values kept long; ASCII only.
 */
export function detached(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1')
}
