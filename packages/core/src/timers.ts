import type { Store, Timer } from '@cairn/store';
import type { Clock } from './clock.js';

/**
 * What the engine did with a due timer: `done` (its outcome is checkpointed, the entry is
 * gone), or `skip` (a run in memory will handle it itself, or the run is paused by an
 * operator): left alone until `release(runId)`.
 */
export type TimerVerdict = 'done' | 'skip';

const keyOf = (t: { runId: string; taskId: string }): string => `${t.runId}\x00${t.taskId}`;

/**
 * Durable timers. The timers live in the store (`timers/<at>/<runId>/<taskId>`, written
 * with the task that owns them), so they survive restarts; this service keeps one clock
 * timeout armed for the earliest and hands due ones to the engine.
 */
export class TimerService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #dispatch: (timer: Timer) => Promise<TimerVerdict>;
  readonly #onError: (error: unknown) => void;
  #skip = new Map<string, string>();
  #armedAt: number | null = null;
  #handle: unknown = null;
  /** The fire under way, if any (a timer that falls due meanwhile is handled by it). */
  #firing: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  /** Counts fires, so that a listing read before the latest one began is not acted on. */
  #fires = 0;

  constructor(
    store: Store,
    clock: Clock,
    dispatch: (timer: Timer) => Promise<TimerVerdict>,
    onError: (error: unknown) => void,
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#dispatch = dispatch;
    this.#onError = onError;
  }

  /** Arms for the earliest timer in the store. */
  async start(): Promise<void> {
    await this.#armNext();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#handle !== null) this.#clock.clearTimeout(this.#handle);
    this.#handle = null;
    this.#armedAt = null;
  }

  /** A timer at `at` was written. */
  notify(at: number): void {
    if (this.#stopped) return;
    if (this.#armedAt === null || at < this.#armedAt) this.#arm(at);
  }

  /** The run's skipped timers are the service's again (the run left memory or was resumed). */
  release(runId: string): void {
    let any = false;
    for (const [k, owner] of this.#skip) {
      if (owner === runId) {
        this.#skip.delete(k);
        any = true;
      }
    }
    if (any) this.#kick();
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#firing !== null) {
      this.#again = true;
      return;
    }
    this.#arm(this.#clock.now());
  }

  #arm(at: number): void {
    if (this.#handle !== null) this.#clock.clearTimeout(this.#handle);
    this.#armedAt = at;
    // The promise is for a clock that waits for a timer's effects (see `Clock`).
    this.#handle = this.#clock.setTimeout(
      () => {
        this.#handle = null;
        this.#armedAt = null;
        return this.#fire().catch(this.#onError);
      },
      Math.max(0, at - this.#clock.now()),
    );
  }

  /**
   * Hands every due timer to the engine, one at a time: each dispatch resolves once the run
   * has reacted to it (its outcome written, its function gone on to its next step, wait or
   * sleep). Then arms for the next timer, from a listing that has those reactions.
   */
  #fire(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#firing !== null) {
      this.#again = true;
      return this.#firing;
    }
    this.#fires++;
    const firing = this.#dispatchDue().finally(() => {
      this.#firing = null;
    });
    this.#firing = firing;
    return firing.then(() => this.#armNext());
  }

  async #dispatchDue(): Promise<void> {
    do {
      this.#again = false;
      const due = await this.#store.dueTimers(this.#clock.now(), 1000);
      for (const timer of due) {
        if (this.#stopped) return;
        const k = keyOf(timer);
        if (this.#skip.has(k)) continue;
        let verdict: TimerVerdict;
        try {
          verdict = await this.#dispatch(timer);
        } catch (error) {
          this.#onError(error);
          verdict = 'skip';
        }
        if (verdict === 'skip') this.#skip.set(k, timer.runId);
      }
    } while (this.#again && !this.#stopped);
  }

  async #armNext(): Promise<void> {
    if (this.#stopped) return;
    const fires = this.#fires;
    const timers = await this.#store.dueTimers(Number.MAX_SAFE_INTEGER, 1000);
    // A fire that began meanwhile handles timers this listing still has, and arms after them.
    if (fires !== this.#fires) return;
    for (const timer of timers) {
      if (this.#skip.has(keyOf(timer))) continue;
      if (this.#armedAt === null || timer.at < this.#armedAt) this.#arm(timer.at);
      return;
    }
  }
}
