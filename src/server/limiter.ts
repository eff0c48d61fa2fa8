import { StsUnavailable } from '../shared/errors.js'

/**
 * Caps concurrent STS calls. Callers beyond the cap wait in a FIFO queue for at most `queueTimeoutMs`
 * (and the queue holds at most `maxQueue`), then fail with StsUnavailable, a transient error the
 * webhook answers with 503 so kube-apiserver retries later instead of piling up.
 */
export class ConcurrencyLimiter {
  #active = 0
  readonly #queue: Array<{ resolve: () => void; timer: NodeJS.Timeout }> = []
  readonly #max: number
  readonly #queueTimeoutMs: number
  readonly #maxQueue: number
  readonly #onChange: (active: number, queued: number) => void
  readonly #onReject: () => void

  constructor(opts: {
    max: number
    queueTimeoutMs: number
    maxQueue?: number
    onChange?: (active: number, queued: number) => void
    /** Called for each caller refused (queue full, or waited too long). */
    onReject?: () => void
  }) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new TypeError('"max" must be an integer >= 1')
    this.#max = opts.max
    this.#queueTimeoutMs = opts.queueTimeoutMs
    this.#maxQueue = opts.maxQueue ?? opts.max * 16
    this.#onChange = opts.onChange ?? (() => {})
    this.#onReject = opts.onReject ?? (() => {})
  }

  get active(): number {
    return this.#active
  }

  get queued(): number {
    return this.#queue.length
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire()
    try {
      return await fn()
    } finally {
      this.#release()
    }
  }

  async #acquire(): Promise<void> {
    if (this.#active < this.#max) {
      this.#active++
      this.#onChange(this.#active, this.#queue.length)
      return
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.#onReject()
      throw new StsUnavailable(`too many STS requests waiting (${this.#queue.length}); try again later`)
    }
    await new Promise<void>((resolve, reject) => {
      const item = {
        resolve,
        timer: setTimeout(() => {
          this.#queue.splice(this.#queue.indexOf(item), 1)
          this.#onChange(this.#active, this.#queue.length)
          this.#onReject()
          reject(new StsUnavailable(`waited ${this.#queueTimeoutMs} ms for a free STS request slot; try again later`))
        }, this.#queueTimeoutMs),
      }
      this.#queue.push(item)
      this.#onChange(this.#active, this.#queue.length)
    })
  }

  #release(): void {
    const next = this.#queue.shift()
    if (next !== undefined) {
      // The slot passes straight to the next waiter; #active is unchanged.
      clearTimeout(next.timer)
      next.resolve()
    } else {
      this.#active--
    }
    this.#onChange(this.#active, this.#queue.length)
  }
}
