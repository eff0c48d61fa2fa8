/**
 * 64-bit FNV-1a over the UTF-8 bytes of `s`, as 16 hex digits. Computed on four 16-bit limbs: no
 * BigInt (slow per byte) and no node:crypto, whose loading alone (about 4 ms) costs more than a
 * whole cache hit. Used for cache file names and the environment fingerprint: accidental collisions
 * are out of reach (2^-64), but it is no defence against someone who can choose the input, and it
 * needs none: whoever can choose this user's environment can already read this user's cache.
 */
export function fnv1a64(s: string): string {
  const bytes = Buffer.from(s, 'utf8')
  // offset basis 0xcbf29ce484222325, least significant limb first
  let h0 = 0x2325
  let h1 = 0x8422
  let h2 = 0x9ce4
  let h3 = 0xcbf2
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i]!
    // multiply by the prime 0x100000001b3 (limbs 0x01b3, 0, 0x0100, 0) modulo 2^64
    const t0 = h0 * 0x1b3
    const t1 = h1 * 0x1b3 + (t0 >>> 16)
    const t2 = h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16)
    const t3 = h3 * 0x1b3 + (h1 << 8) + (t2 >>> 16)
    h0 = t0 & 0xffff
    h1 = t1 & 0xffff
    h2 = t2 & 0xffff
    h3 = t3 & 0xffff
  }
  return [h3, h2, h1, h0].map((h) => h.toString(16).padStart(4, '0')).join('')
}
