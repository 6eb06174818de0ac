import { CairnError, withOsReason } from './errors.js';
import { faults } from './faults.js';

/** A value to put, or `null` to delete. */
export type WriteValue = Uint8Array | null;

/**
 * A write encoded only when its batch is flushed, and dropped without being encoded when a
 * later write of the same key arrives first: what a soft write of a record that is about to
 * change again (a step's "started" marker) should cost.
 */
export interface DeferredWrite {
  readonly expand: () => Iterable<readonly [string, WriteValue]>;
  readonly reject: (error: unknown) => void;
}

type Pending = WriteValue | DeferredWrite;

function isDeferred(value: Pending): value is DeferredWrite {
  return value !== null && !(value instanceof Uint8Array);
}

export interface BatchWriter {
  /** Writes every entry in one atomic batch, synced when `sync` is true. */
  write(entries: ReadonlyMap<string, WriteValue>, sync: boolean): Promise<void>;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  /** Told first when the batch fails, before anything else runs (see `write`). */
  failed?: ((error: unknown) => void) | undefined;
}

/**
 * Group commit. Writes issued in the same turn of the event loop are written as one batch;
 * while a batch is being written, new writes gather for the next one. A batch is synced
 * when any write in it asked for durability and the store is `strict`. A later write of
 * the same key in the same batch replaces the earlier one, so a step's "started" marker
 * and its result, when both arrive before the flush, cost one put.
 */
export class GroupCommitter {
  readonly #writer: BatchWriter;
  readonly #syncDurable: boolean;
  #pending = new Map<string, Pending>();
  #waiters: Waiter[] = [];
  /** Soft writes that go at the end of this turn, before their writers go on (`writeSoon`). */
  #soon = new Map<string, DeferredWrite>();
  #soonWaiters: Waiter[] = [];
  #durable = false;
  #scheduled = false;
  /** Batches being written: one, or more when soft writes went on their own (`writeSoon`). */
  readonly #inflight = new Set<Promise<void>>();
  #batches = 0;

  constructor(writer: BatchWriter, syncDurable: boolean) {
    this.#writer = writer;
    this.#syncDurable = syncDurable;
  }

  /** How many batches have been written (for tests and benchmarks). */
  get batches(): number {
    return this.#batches;
  }

  /**
   * Queues `entries` for the next batch. A `DeferredWrite` among them is made at flush time
   * (the usage totals of a checkpoint: their value is whatever the totals are then).
   * `failed` is called if the batch fails, at once, before the next batch is made.
   */
  write(
    entries: Iterable<readonly [string, WriteValue | DeferredWrite]>,
    durable: boolean,
    failed?: (error: unknown) => void,
  ): Promise<void> {
    for (const [k, v] of entries) {
      this.#pending.set(k, v);
      // A later write of a key replaces an earlier one.
      this.#soon.delete(k);
    }
    if (durable) this.#durable = true;
    const done = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject, failed });
    });
    this.#schedule();
    return done;
  }

  /**
   * A soft write under `key` whose entries are made at flush time (see `DeferredWrite`).
   * Resolves when its batch is written, or at once when a later write replaced it.
   */
  writeDeferred(key: string, expand: () => Iterable<readonly [string, WriteValue]>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(key, { expand, reject });
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything written so far is on disk (or has failed). */
  async flush(): Promise<void> {
    while (this.#inflight.size > 0 || this.#waiters.length > 0) {
      if (this.#inflight.size > 0) await Promise.all(this.#inflight);
      else await this.#run();
    }
  }

  /**
   * A soft write under `key` (its entries made when its batch is), written in a batch of its
   * own with the other such writes of this turn, at its end, even while another batch is being
   * written: resolves once the writer has it. For a writer that takes each batch in order as it
   * is given (the store's log appends it before `write` returns), that is before the caller
   * goes on, and so before whatever it does next (a step function that may kill the process).
   */
  writeSoon(key: string, expand: () => Iterable<readonly [string, WriteValue]>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.delete(key);
      this.#soon.set(key, { expand, reject });
      this.#soonWaiters.push({ resolve, reject });
      if (this.#soonWaiters.length === 1) process.nextTick(() => this.#runSoon());
    });
  }

  #runSoon(): void {
    const waiters = this.#soonWaiters;
    const soon = this.#soon;
    this.#soonWaiters = [];
    this.#soon = new Map();
    const entries = new Map<string, WriteValue>();
    for (const v of soon.values()) {
      try {
        for (const [ek, ev] of v.expand()) entries.set(ek, ev);
      } catch (error) {
        v.reject(error);
      }
    }
    if (entries.size === 0) {
      // Every write was replaced by a later one of the same key, which tells its own writer.
      for (const w of waiters) w.resolve();
      return;
    }
    void this.#launch(entries, false, waiters);
  }

  /**
   * The batch is made once the current turn's promise jobs have all run (a `nextTick` queued
   * from them runs after the microtask queue drains): every write the turn's callbacks and
   * their continuations make is in it, without waiting for the event loop's next phase.
   */
  #schedule(): void {
    if (this.#scheduled || this.#inflight.size > 0) return;
    this.#scheduled = true;
    process.nextTick(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  /** A batch in flight is done: what gathered meanwhile goes in the next batch. */
  #settled(batch: Promise<void>): void {
    this.#inflight.delete(batch);
    // Scheduled after the writers just told have run on (a nextTick runs once the microtasks
    // drain), so their next writes (a step's result, after its "started" marker) go in it.
    if (this.#waiters.length > 0) this.#schedule();
  }

  #run(): Promise<void> {
    if (this.#inflight.size > 0) return Promise.all(this.#inflight).then(() => undefined);
    if (this.#waiters.length === 0) return Promise.resolve();
    const pending = this.#pending;
    const waiters = this.#waiters;
    const entries = new Map<string, WriteValue>();
    for (const [k, v] of pending) {
      if (!isDeferred(v)) {
        entries.set(k, v);
        continue;
      }
      try {
        for (const [ek, ev] of v.expand()) entries.set(ek, ev);
      } catch (error) {
        v.reject(error);
      }
    }
    const sync = this.#durable && this.#syncDurable;
    this.#pending = new Map();
    this.#waiters = [];
    this.#durable = false;
    return this.#launch(entries, sync, waiters);
  }

  /** Hands `entries` to the writer as one batch and tells `waiters` how it went. */
  #launch(entries: Map<string, WriteValue>, sync: boolean, waiters: Waiter[]): Promise<void> {
    const failed = (cause: unknown): void => {
      const reason = withOsReason('A batch could not be written to the store', cause);
      const error =
        cause instanceof CairnError
          ? cause
          : new CairnError('WRITE_FAILED', reason.message, { cause, details: reason.details });
      for (const w of waiters) w.failed?.(error);
      for (const w of waiters) w.reject(error);
      this.#settled(batch);
    };
    let written: Promise<void>;
    try {
      faults.hit('commit.before-write', entries);
      written = this.#writer.write(entries, sync);
    } catch (cause) {
      written = Promise.reject(cause instanceof Error ? cause : new Error(String(cause)));
    }
    // One turn from the batch landing to its writers being told (each extra `then` is one
    // more turn on every step's path).
    const batch: Promise<void> = written.then(() => {
      try {
        faults.hit('commit.after-write', entries);
      } catch (cause) {
        failed(cause);
        return;
      }
      this.#batches++;
      for (const w of waiters) w.resolve();
      this.#settled(batch);
    }, failed);
    this.#inflight.add(batch);
    return batch;
  }
}
