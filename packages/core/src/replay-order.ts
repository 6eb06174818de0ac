/**
 * The order of parallel groups during a replay. A task's `group` is the turn it was first
 * called in: tasks of one group were called together (`Promise.all`), and a later group was
 * called after every earlier one. A replay may meet the calls of one group in any order, and
 * a branch may run ahead of the others (its recorded results come back at once), but a call
 * that history has in a later group than a call not made again yet is held until that call is
 * made: code that now calls `b` before `a`, where history has `a` then `b`, never gets `b`'s
 * result, and the run stops with `NON_DETERMINISM` once it can go no further.
 */
import type { Task } from '@cairn/store';
import { groupNumber } from './execution-support.js';

interface OutOfOrder {
  readonly task: Task;
  readonly group: number;
  resolve(): void;
  reject(error: unknown): void;
}

export class ReplayOrder {
  /** History tasks not called again yet, counted by group number. */
  readonly #left = new Map<number, number>();
  /** The group numbers of `#left`, ascending, and the index of the lowest with tasks left. */
  readonly #groups: number[];
  #lowest = 0;
  #held: OutOfOrder[] = [];

  /** `history`: the tasks a replay must call again (recorded values are not among them). */
  constructor(history: Iterable<Task>) {
    for (const task of history) {
      const group = groupNumber(task.group);
      if (group !== null) this.#left.set(group, (this.#left.get(group) ?? 0) + 1);
    }
    this.#groups = [...this.#left.keys()].sort((a, b) => a - b);
  }

  /** The lowest group with a task not called again yet. */
  get #frontier(): number {
    return this.#groups[this.#lowest] ?? Infinity;
  }

  /** Calls held back; the first is what a stuck replay reports as found. */
  get held(): readonly OutOfOrder[] {
    return this.#held;
  }

  /** A history task was called again: releases the calls that were waiting for its group. */
  called(task: Task): void {
    const group = groupNumber(task.group);
    if (group === null) return;
    this.#left.set(group, (this.#left.get(group) ?? 1) - 1);
    if (group !== this.#frontier) return;
    while (this.#lowest < this.#groups.length && this.#left.get(this.#frontier) === 0) {
      this.#lowest++;
    }
    const frontier = this.#frontier;
    const held = this.#held;
    this.#held = held.filter((h) => h.group > frontier);
    for (const h of held) if (h.group <= frontier) h.resolve();
  }

  /**
   * Nothing to wait for when `task` (a history task just called again) is in order; otherwise
   * a promise that resolves once every earlier group has been called.
   */
  wait(task: Task): Promise<void> | undefined {
    const group = groupNumber(task.group);
    if (group === null || group <= this.#frontier) return undefined;
    return new Promise((resolve, reject) => {
      this.#held.push({ task, group, resolve, reject });
    });
  }

  /** The run ends: held calls fail with `reason`. */
  rejectAll(reason: unknown): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) h.reject(reason);
  }

  /** The execution is dropped: held calls are never continued. */
  clear(): void {
    this.#held = [];
  }
}
