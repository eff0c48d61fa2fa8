import { StsUnavailable } from '../shared/errors.js'

/**
 * Which lane an STS verification waits in. `confirmed`: a credential (access key ID, plus the
 * session token of temporary credentials) that STS confirmed and the mapping let in recently: a
 * returning user. `unknown`: everything else, first-time users and forged tokens alike, since only
 * STS can tell them apart.
 */
export type Lane = 'confirmed' | 'unknown'

export interface StsAdmissionOptions {
  /** STS calls in flight at most (stsMaxConcurrency). */
  readonly max: number
  /** How long a verification may wait for a slot before it is answered 503 (stsQueueTimeout). */
  readonly queueTimeoutMs: number
  /** The lane of a credential, asked when it queues and again whenever its last call ends. */
  readonly laneOf: (credential: string) => Lane
  /** Waiting verifications at most, both lanes together (memory bound). Default max * 64, at least 1024. */
  readonly maxQueue?: number
  readonly onChange?: (active: number, queued: number) => void
  /** Called for each verification refused (queue full, displaced, or waited too long). */
  readonly onReject?: (lane: Lane) => void
}

interface Waiter {
  readonly credential: string
  readonly since: number
  /** Started, refused or timed out: skipped when met in the arrival order. */
  done: boolean
  readonly start: () => void
  readonly fail: (err: Error) => void
  timer: NodeJS.Timeout | undefined
}

interface CredentialState {
  inFlight: number
  /** Calls in flight that took an unknown-lane slot (the lane may have changed since). */
  inFlightUnknown: number
  lane: Lane
  readonly waiting: Waiter[]
}

/**
 * The gate in front of STS, built around what an attacker cannot forge cheaply: a valid signature.
 *
 * - At most `max` calls run at once; unknown credentials may hold at most three quarters of them
 *   (with 8 slots or more), so returning users find slots however many forged tokens arrive, even
 *   forged tokens that make STS slow to answer.
 * - A waiting returning user is always started before any waiting unknown credential, and when
 *   the queue is full an unknown waiter is displaced (503) to make room for it.
 * - With 8 slots or more, each credential has a share of them (2 while unknown: the first answers
 *   tell whether the key exists; a quarter once confirmed) and credentials take turns round robin: while anyone
 *   below their share waits, a credential over its share waits, so a flood that reuses a key, even
 *   a returning user's public access key ID, only slows that key. Shares never leave a slot idle:
 *   with no one else waiting, a CI system starting hundreds of jobs with one role gets them all.
 * - Everything is bounded: waiters by `maxQueue` and `queueTimeoutMs`, per-credential state by the
 *   number of waiters and calls in flight (it is dropped when both are zero).
 */
export class StsAdmission {
  #active = 0
  #activeUnknown = 0
  #queued = 0
  readonly #credentials = new Map<string, CredentialState>()
  /** Credentials with a waiter, below their share of slots, in turn order. */
  readonly #ready: Record<Lane, Set<string>> = { confirmed: new Set(), unknown: new Set() }
  /** Credentials with a waiter, at or above their share: started only with slots nobody else wants. */
  readonly #over: Record<Lane, Set<string>> = { confirmed: new Set(), unknown: new Set() }
  /** Every waiter in arrival order (done ones are dropped as they reach the front). */
  #arrivals: Waiter[] = []
  #arrivalsDone = 0
  readonly #max: number
  readonly #unknownMax: number
  readonly #perCredential: Record<Lane, number>
  readonly #maxQueue: number
  readonly #queueTimeoutMs: number
  readonly #laneOf: (credential: string) => Lane
  readonly #onChange: (active: number, queued: number) => void
  readonly #onReject: (lane: Lane) => void

  constructor(opts: StsAdmissionOptions) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new TypeError('"max" must be an integer >= 1')
    this.#max = opts.max
    // Below 8 slots there are none to spare: a small gate keeps none back and has no shares, it
    // serves whoever comes first (partitioning 4 slots costs more waiting than it protects).
    const small = opts.max < 8
    this.#unknownMax = small ? opts.max : opts.max - Math.floor(opts.max / 4)
    this.#perCredential = small
      ? { confirmed: opts.max, unknown: opts.max }
      : { confirmed: Math.floor(opts.max / 4), unknown: 2 }
    this.#maxQueue = opts.maxQueue ?? Math.max(1024, opts.max * 64)
    this.#queueTimeoutMs = opts.queueTimeoutMs
    this.#laneOf = opts.laneOf
    this.#onChange = opts.onChange ?? (() => {})
    this.#onReject = opts.onReject ?? (() => {})
  }

  get active(): number {
    return this.#active
  }

  get queued(): number {
    return this.#queued
  }

  /** Credentials tracked (waiting or in flight): bounded by maxQueue + max. */
  get tracked(): number {
    return this.#credentials.size
  }

  /** Runs `fn` (one STS call for `credential`) once admitted; rejects with StsUnavailable if not admitted in time. */
  async run<T>(credential: string, fn: () => Promise<T>): Promise<T> {
    const state = await this.#admit(credential)
    try {
      return await fn()
    } finally {
      this.#release(credential, state)
    }
  }

  /** Re-reads the lane of `credential` (it was just confirmed): its waiters move to the confirmed lane. */
  reclassify(credential: string): void {
    const state = this.#credentials.get(credential)
    if (state === undefined) return
    state.lane = this.#laneOf(credential)
    this.#place(credential, state)
    this.#dispatch()
    this.#onChange(this.#active, this.#queued)
  }

  #admit(credential: string): Promise<CredentialState> {
    let state = this.#credentials.get(credential)
    if (state === undefined) {
      state = { inFlight: 0, inFlightUnknown: 0, lane: this.#laneOf(credential), waiting: [] }
      this.#credentials.set(credential, state)
    }
    const lane = state.lane
    if (state.waiting.length === 0 && this.#canStart(state) && this.#nobodyWaitsFor(state.lane)) {
      this.#start(state)
      this.#onChange(this.#active, this.#queued)
      return Promise.resolve(state)
    }
    if (this.#queued >= this.#maxQueue && !(lane === 'confirmed' && this.#displaceUnknown())) {
      this.#forget(credential, state)
      this.#onReject(lane)
      return Promise.reject(new StsUnavailable(`too many STS requests waiting (${this.#queued}); try again later`))
    }
    const s = state
    return new Promise<CredentialState>((resolve, reject) => {
      const waiter: Waiter = {
        credential,
        since: performance.now(),
        done: false,
        start: () => resolve(s),
        fail: reject,
        timer: undefined,
      }
      waiter.timer = setTimeout(() => {
        this.#drop(waiter)
        this.#onReject(s.lane)
        reject(new StsUnavailable(`waited ${this.#queueTimeoutMs} ms for a free STS request slot; try again later`))
      }, this.#queueTimeoutMs)
      s.waiting.push(waiter)
      this.#arrivals.push(waiter)
      this.#queued++
      this.#place(credential, s)
      this.#onChange(this.#active, this.#queued)
    })
  }

  #canStart(state: CredentialState): boolean {
    if (this.#active >= this.#max) return false
    return state.lane === 'confirmed' || this.#activeUnknown < this.#unknownMax
  }

  /** No credential below its share waits in this lane or a lane before it (a newcomer over its share queues). */
  #nobodyWaitsFor(lane: Lane): boolean {
    return this.#ready.confirmed.size === 0 && (lane === 'confirmed' || this.#ready.unknown.size === 0)
  }

  #start(state: CredentialState): void {
    state.inFlight++
    this.#active++
    if (state.lane === 'unknown') {
      state.inFlightUnknown++
      this.#activeUnknown++
    }
  }

  #release(credential: string, state: CredentialState): void {
    state.inFlight--
    this.#active--
    if (state.inFlightUnknown > 0) {
      state.inFlightUnknown--
      this.#activeUnknown--
    }
    state.lane = this.#laneOf(credential)
    this.#place(credential, state)
    this.#dispatch()
    this.#onChange(this.#active, this.#queued)
  }

  /**
   * Starts waiters while slots are free. A waiter that has waited half the queue timeout goes first
   * (shares decide turns, they must not make anyone wait out the timeout behind later arrivals);
   * then returning users, then unknown credentials, each round robin; credentials over their share
   * only with slots no one below theirs waits for (shares keep turns fair, never leave a slot idle).
   */
  #dispatch(): void {
    const order = [this.#ready.confirmed, this.#ready.unknown, this.#over.confirmed, this.#over.unknown]
    while (this.#active < this.#max) {
      const aged = this.#oldestWaiting()
      if (aged !== undefined && performance.now() - aged.since >= this.#queueTimeoutMs / 2) {
        const state = this.#credentials.get(aged.credential)!
        if (state.lane === 'confirmed' || this.#activeUnknown < this.#unknownMax) {
          this.#startWaiter(aged.credential, state)
          continue
        }
      }
      const next = order.find((set, i) => set.size > 0 && (i % 2 === 0 || this.#activeUnknown < this.#unknownMax))
      if (next === undefined) return
      const credential = next.values().next().value as string
      this.#startWaiter(credential, this.#credentials.get(credential)!)
    }
  }

  /** Starts the first waiter of `credential` and puts the credential at the back of its turn order. */
  #startWaiter(credential: string, state: CredentialState): void {
    const waiter = state.waiting.shift()!
    this.#finish(waiter)
    this.#start(state)
    this.#place(credential, state)
    waiter.start()
  }

  /** The waiter that arrived first among those still waiting. */
  #oldestWaiting(): Waiter | undefined {
    while (this.#arrivals.length > 0 && this.#arrivals[0]!.done) {
      this.#arrivals.shift()
      this.#arrivalsDone--
    }
    return this.#arrivals[0]
  }

  /** A waiter leaves the queue (started, refused or timed out). */
  #finish(waiter: Waiter): void {
    waiter.done = true
    clearTimeout(waiter.timer)
    this.#queued--
    // Done waiters behind a long-waiting first one: compact once they are half of the list.
    if (++this.#arrivalsDone > 64 && this.#arrivalsDone * 2 > this.#arrivals.length) {
      this.#arrivals = this.#arrivals.filter((w) => !w.done)
      this.#arrivalsDone = 0
    }
  }

  /** Puts a credential with waiters at the back of its lane's turn order: below its share, or over it. */
  #place(credential: string, state: CredentialState): void {
    for (const sets of [this.#ready, this.#over]) {
      sets.confirmed.delete(credential)
      sets.unknown.delete(credential)
    }
    if (state.waiting.length === 0) return this.#forget(credential, state)
    const sets = state.inFlight < this.#perCredential[state.lane] ? this.#ready : this.#over
    sets[state.lane].add(credential)
  }

  #forget(credential: string, state: CredentialState): void {
    if (state.inFlight === 0 && state.waiting.length === 0) this.#credentials.delete(credential)
  }

  #drop(waiter: Waiter): void {
    const state = this.#credentials.get(waiter.credential)
    if (state === undefined) return
    const i = state.waiting.indexOf(waiter)
    if (i === -1) return
    state.waiting.splice(i, 1)
    this.#finish(waiter)
    this.#place(waiter.credential, state)
    this.#onChange(this.#active, this.#queued)
  }

  /** Refuses an unknown credential's latest waiter to make room for a returning user; false when there is none. */
  #displaceUnknown(): boolean {
    const credential = this.#anyUnknownWaiting()
    if (credential === undefined) return false
    const waiter = this.#credentials.get(credential)!.waiting.at(-1)!
    this.#drop(waiter)
    this.#onReject('unknown')
    waiter.fail(new StsUnavailable('too many STS requests waiting; try again later'))
    return true
  }

  /** An unknown credential with waiters, over its share first. */
  #anyUnknownWaiting(): string | undefined {
    return (this.#over.unknown.values().next().value ?? this.#ready.unknown.values().next().value) as string | undefined
  }
}
