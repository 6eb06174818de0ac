import { encode as encodeValue } from './codec.js';
import { encodeRun, encodeTask } from './compact.js';
import { CairnError } from './errors.js';
import type { WriteValue } from './group-commit.js';
import type { RunBundle } from './import.js';
import {
  runIndexKeys,
  runStaleKeys,
  runStatusKeys,
  taskIndexKeys,
  taskStaleKeys,
} from './indexes.js';
import { displayKey, inboxKey, logKey, runKey, taskKey } from './keys.js';
import { TERMINAL_STATUSES, type Run, type RunStatus, type Task } from './records.js';
import { countsForUsage, usageOfStep, type UsageDelta } from './usage.js';

const EMPTY = new Uint8Array(0);
/** At most this many runs have their index state followed (see `#runIndexed`). */
const MAX_TRACKED_RUNS = 10_000;

/**
 * The entries a level-backed store writes for its records: each record encoded (and refused
 * with `VALUE_TOO_LARGE` past the size limit) with the index entries and timers derived from
 * it, and the deletions of those its previous state had.
 */
export class RecordEntries {
  readonly #maxBytes: number;

  constructor(maxRecordBytes: number) {
    this.#maxBytes = maxRecordBytes;
  }

  /** Follows no run any more: another store may have written the data (a reopen). */
  forgetAll(): void {
    this.#runIndexed.clear();
  }

  /** Follows `runId` no more: its next write is a full one. */
  forget(runId: string): void {
    this.#runIndexed.delete(runId);
  }

  encode(k: string, value: unknown): Uint8Array {
    return this.sized(k, encodeValue(value));
  }

  /** `bytes`, the value to store under `k`, if it is within the record size limit. */
  sized(k: string, bytes: Uint8Array): Uint8Array {
    if (bytes.byteLength > this.#maxBytes) {
      throw new CairnError(
        'VALUE_TOO_LARGE',
        `The record at "${displayKey(k)}" is ${bytes.byteLength} bytes; the limit is ${this.#maxBytes}`,
        { details: { key: displayKey(k), bytes: bytes.byteLength, limit: this.#maxBytes } },
      );
    }
    return bytes;
  }

  /**
   * For runs this store wrote through the engine's path and that have not ended: the status
   * their index entries have on disk (`null` when unknown: a write failed), and how many
   * writes of the run are in flight. With the status known and nothing in flight, a run's
   * next write puts and deletes only the two entries that depend on its status, instead of
   * every entry of every status (16 entries become 5). Bounded: a run not tracked is written
   * in full, which is always correct.
   */
  readonly #runIndexed = new Map<string, { status: RunStatus | null; writing: number }>();

  /**
   * A run's record and index entries. `tracked`: written through the engine's path (see
   * #runIndexed); `created`: the run is new, so it has no entries of another status.
   */
  runEntries(run: Run, out: [string, WriteValue][], tracked = false, created = false): void {
    const k = runKey(run.id);
    out.push([k, this.sized(k, encodeRun(run))]);
    // A run written any other way is no longer followed: its next write is a full one.
    if (!tracked) this.#runIndexed.delete(run.id);
    if (created) {
      for (const ik of runIndexKeys(run)) out.push([ik, EMPTY]);
      return;
    }
    const known = tracked ? this.#runIndexed.get(run.id) : undefined;
    if (known !== undefined && known.writing === 0 && known.status !== null) {
      for (const ik of runStatusKeys(run, run.status)) out.push([ik, EMPTY]);
      if (known.status !== run.status) {
        for (const sk of runStatusKeys(run, known.status)) out.push([sk, null]);
      }
      return;
    }
    for (const ik of runIndexKeys(run)) out.push([ik, EMPTY]);
    for (const sk of runStaleKeys(run)) out.push([sk, null]);
  }

  /** Follows the runs of a checkpoint written through the engine's path (see #runIndexed). */
  trackRuns(runs: readonly Run[], written: Promise<void>): void {
    type Known = { status: RunStatus | null; writing: number };
    const tracked: { id: string; known: Known; status: RunStatus }[] = [];
    for (const run of runs) {
      let known = this.#runIndexed.get(run.id);
      if (known === undefined) {
        if (this.#runIndexed.size >= MAX_TRACKED_RUNS) continue;
        known = { status: null, writing: 0 };
        this.#runIndexed.set(run.id, known);
      }
      known.writing++;
      tracked.push({ id: run.id, known, status: run.status });
    }
    if (tracked.length === 0) return;
    const settle = (ok: boolean): void => {
      for (const { id, known, status } of tracked) {
        // The entry this write counted in: another write may have dropped it meanwhile (a
        // public checkpoint, a delete), and a later engine write started a new one.
        known.writing--;
        if (this.#runIndexed.get(id) !== known) continue;
        // Batches land in the order they were made, so the last one to land is the newest.
        known.status = ok ? status : null;
        if (known.writing === 0 && (known.status === null || TERMINAL_STATUSES.has(status))) {
          this.#runIndexed.delete(id);
        }
      }
    };
    written.then(
      () => settle(true),
      () => settle(false),
    );
  }

  taskEntries(task: Task, out: [string, WriteValue][]): void {
    const k = taskKey(task.runId, task.taskId);
    out.push([k, this.sized(k, encodeTask(task))]);
    for (const ik of taskIndexKeys(task)) out.push([ik, EMPTY]);
    for (const sk of taskStaleKeys(task)) out.push([sk, null]);
  }

  /** A run's records as an import writes them; returns the usage its steps add. */
  bundleEntries(bundle: RunBundle, entries: [string, WriteValue][]): UsageDelta[] {
    this.runEntries(bundle.run, entries);
    const usage: UsageDelta[] = [];
    for (const task of bundle.tasks) {
      this.taskEntries(task, entries);
      if (countsForUsage(task)) usage.push(usageOfStep(bundle.run, task));
    }
    for (const line of bundle.logs) {
      const k = logKey(line.runId, line.seq);
      entries.push([k, this.encode(k, line)]);
    }
    for (const entry of bundle.inbox) {
      const k = inboxKey(entry.runId, entry.taskId);
      entries.push([k, this.encode(k, { data: entry.data, at: entry.at })]);
    }
    return usage;
  }
}
