/**
 * Collects items for `windowMs` (or until `maxBatch` are waiting) and hands them to `run` in batches
 * of at most `maxBatch`.
 */
export class Batcher<T> {
  #queue: T[] = []
  #timer: NodeJS.Timeout | undefined
  readonly #maxBatch: number
  readonly #windowMs: number
  readonly #run: (batch: T[]) => void

  constructor(opts: { maxBatch: number; windowMs: number; run: (batch: T[]) => void }) {
    this.#maxBatch = opts.maxBatch
    this.#windowMs = opts.windowMs
    this.#run = opts.run
  }

  add(item: T): void {
    this.#queue.push(item)
    if (this.#queue.length >= this.#maxBatch) this.#flush(false)
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#flush(true)
      }, this.#windowMs)
    }
  }

  /** Drops what is waiting and stops the window timer. */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#queue = []
  }

  /** Sends full batches now; the rest too when the window has closed (`all`). */
  #flush(all: boolean): void {
    while (this.#queue.length >= this.#maxBatch || (all && this.#queue.length > 0)) {
      this.#run(this.#queue.splice(0, this.#maxBatch))
    }
    if (this.#queue.length === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
  }
}
