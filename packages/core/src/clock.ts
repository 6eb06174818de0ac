/**
 * Time as the engine sees it. The default is the system clock; tests pass a manual clock
 * (see `ManualClock`) so sleeps, timeouts and retries need no real waiting.
 */
export interface Clock {
  now(): number;
  /**
   * Calls `fn` after `ms`. `fn` may return a promise of its effects (the engine's durable
   * timers do): a clock that decides when time moves, as `ManualClock` does, waits for it.
   */
  setTimeout(fn: () => unknown, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // Armed timers keep the process alive, as pending work should; engine.close() clears them.
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(ms, 2 ** 31 - 1)),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface ManualTimer {
  at: number;
  fn: () => unknown;
  id: number;
}

/**
 * A clock that moves only when told to: `advance(ms)` fires what falls due, in order, and
 * time moves on only once the effects of each timer have settled (the promise its callback
 * returned, then a few turns of the event loop).
 */
export class ManualClock implements Clock {
  #now: number;
  #timers: ManualTimer[] = [];
  #nextId = 1;

  constructor(start: number = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => unknown, ms: number): unknown {
    const timer = {
      at: this.#now + (Number.isFinite(ms) ? Math.max(0, ms) : 0),
      fn,
      id: this.#nextId++,
    };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers that have not fired yet. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward, firing due timers in order and letting the effects of each settle
   * (waiting for the promise its callback returned) before time moves on. Timers armed
   * meanwhile fire too when they fall due by the target, those armed while time rests there
   * included.
   */
  async advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw Object.assign(new TypeError('advance() takes a finite, non-negative number of ms'), {
        code: 'INVALID_ARGUMENT',
      });
    }
    const target = this.#now + ms;
    let atTarget = false;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (next && next.at <= target) {
        this.#timers.shift();
        this.#now = Math.max(this.#now, next.at);
        await next.fn();
      } else if (atTarget) {
        return;
      } else {
        this.#now = target;
        atTarget = true;
      }
      await settle();
    }
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
