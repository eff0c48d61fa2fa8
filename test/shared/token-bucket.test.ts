import { describe, expect, it } from 'vitest'
import { createTokenBucket } from '../../src/shared/token-bucket.js'

describe('createTokenBucket', () => {
  it('allows a burst, then one token per 1/qps, and refuses waits beyond the limit', () => {
    let clock = 0
    const b = createTokenBucket(10, 2, () => clock)
    expect([b.reserve(0), b.reserve(0)]).toEqual([0, 0])
    expect(b.reserve(50)).toBeUndefined() // would wait 100 ms
    expect(b.reserve(100)).toBe(100)
    expect(b.reserve(250)).toBe(200) // queued behind the previous reservation
    clock += 1000
    expect(b.reserve(0)).toBe(0)
    expect(createTokenBucket(0, 1, () => clock).reserve(0)).toBe(0)
    expect(() => createTokenBucket(1, 0, () => clock)).toThrow(TypeError)
  })

  it('a clock that steps back neither refills nor drains the bucket', () => {
    let clock = 10_000
    const b = createTokenBucket(1, 1, () => clock)
    expect(b.reserve(0)).toBe(0)
    clock -= 5_000
    expect(b.reserve(0)).toBeUndefined()
    clock = 11_000
    expect(b.reserve(0)).toBe(0)
  })
})
