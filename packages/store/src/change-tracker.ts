import type { Checkpoint } from './store-types.js';

/** Runs followed at most; past it, every followed run counts as changed (never wrongly not). */
const MAX_WATCHED = 100_000;

/**
 * Which runs were written since the engine last looked: an engine that keeps a paused run in
 * memory asks, before it resumes it, whether anything wrote the run since it paused (a resume
 * from the CLI, a cancel, input kept for a later wait). The store tells its tracker of every
 * write that names a run; a store that is not the only writer of its data (a memory database
 * shared with another store, another process) answers "changed" every time.
 */
export class ChangeTracker {
  readonly #sole: () => boolean;
  readonly #open: () => boolean;
  /** Followed runs and their stamp: replaced by a new one whenever the run is written. */
  readonly #watched = new Map<string, number>();
  #stamp = 0;

  /**
   * `sole`: whether every write to the data goes through this store; `open`: whether the store
   * is open (a reopened store may have missed writes made while it was closed).
   */
  constructor(sole: () => boolean, open: () => boolean) {
    this.#sole = sole;
    this.#open = open;
  }

  /**
   * Starts following writes to `runId`; returns the stamp to give `unchanged`, or null when
   * the store cannot know of every write.
   */
  watch(runId: string): number | null {
    if (!this.#sole()) return null;
    if (this.#watched.size >= MAX_WATCHED) this.#watched.clear();
    const stamp = ++this.#stamp;
    this.#watched.set(runId, stamp);
    return stamp;
  }

  /**
   * True only when nothing can have written the run since `watch` gave `stamp`: no write named
   * it (its record, a task, its inbox), the store was not reopened, and it is the data's only
   * writer. False whenever unsure.
   */
  unchanged(runId: string, stamp: number): boolean {
    return this.#sole() && this.#open() && this.#watched.get(runId) === stamp;
  }

  unwatch(runId: string): void {
    this.#watched.delete(runId);
  }

  /** A write names `runId`: a followed run gets a new stamp. */
  touch(runId: string): void {
    if (this.#watched.size > 0 && this.#watched.has(runId)) {
      this.#watched.set(runId, ++this.#stamp);
    }
  }

  /** A checkpoint names the runs of its records and consumed inbox entries. */
  touchCheckpoint(checkpoint: Checkpoint): void {
    if (this.#watched.size === 0) return;
    for (const run of checkpoint.runs ?? []) this.touch(run.id);
    for (const task of checkpoint.tasks ?? []) this.touch(task.runId);
    for (const ref of checkpoint.inboxTaken ?? []) this.touch(ref.runId);
  }

  /** The data may have changed behind the store (it was closed): nothing is followed. */
  forgetAll(): void {
    this.#watched.clear();
  }
}
