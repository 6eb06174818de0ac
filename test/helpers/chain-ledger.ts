import { isDeepStrictEqual } from 'node:util';
import { createEngine, isCairnError, type Engine } from '@cairn/core';
import type { LevelStore, Task } from '@cairn/store';
import {
  chainWorkload,
  checkChain,
  WAIT,
  type ChainRun,
  type DecisionData,
} from './chain-workload.js';
import { taskOf, type LifeReport, type Snapshot } from './torture-ledger.js';

/**
 * The ledger of the power-cut and log-damage tests: what the child engine acknowledged, what
 * earlier states of the store held, and the checks of every state against them
 * (test/helpers/chain-workload.ts checks each run's own history).
 *
 * Violations are collected, not thrown, and counted once each however many states show them
 * again, so a failing schedule shows everything it broke with counts that mean something.
 */

export type ViolationKind =
  /** Something acknowledged is missing where it must be kept. */
  | 'lost'
  /** A history that contradicts itself, or contradicts what was acknowledged or on disk before. */
  | 'inconsistent'
  /** A run that did not end completed once an engine ran it to the end. */
  | 'unrecovered'
  /** The store refused to open otherwise than with a coded report of the damage. */
  | 'refusal';

export interface Violation {
  readonly kind: ViolationKind;
  /** The first state it was seen in. */
  readonly when: string;
  readonly message: string;
}

/** What a task was in the last state checked. */
interface Seen {
  readonly status: Task['status'];
  readonly attempt: number;
  readonly output: unknown;
  /** Executions in the journal. */
  readonly executions: number;
}

export class ChainLedger {
  /** Acknowledged facts missing where losing them is allowed (process durability, damage). */
  lostAllowed = 0;
  readonly #violations = new Map<string, Violation>();
  readonly #plan: Map<string, ChainRun>;
  readonly #decisions: Map<string, DecisionData>;
  /** Each task (`runId/taskId`) as the last state checked had it; runs by id. */
  #seen = new Map<string, Seen>();
  #seenRuns = new Set<string>();

  constructor(plan: readonly ChainRun[], decisions: Map<string, DecisionData>) {
    this.#plan = new Map(plan.map((run) => [run.id, run]));
    this.#decisions = decisions;
  }

  get violations(): Violation[] {
    return [...this.#violations.values()];
  }

  count(kind: ViolationKind): number {
    return this.violations.filter((v) => v.kind === kind).length;
  }

  add(kind: ViolationKind, when: string, message: string): void {
    const key = `${kind} ${message}`;
    if (!this.#violations.has(key)) this.#violations.set(key, { kind, when, message });
  }

  /** Runs whose decision `snapshot` does not hold yet (the wait not completed, the inbox empty). */
  outstanding(snapshot: Snapshot | null): [string, DecisionData][] {
    return [...this.#decisions].filter(([runId]) => {
      const key = `${runId}/${WAIT}`;
      return (
        snapshot === null ||
        (taskOf(snapshot, key)?.status !== 'completed' && !snapshot.inbox.has(key))
      );
    });
  }

  /**
   * Checks what one life acknowledged against the state it left. With `mustKeep` (strict
   * durability) every acknowledged fact must be there; otherwise a missing one is counted in
   * `lostAllowed`. Whatever is there must be what was acknowledged.
   */
  checkLife(life: LifeReport, snapshot: Snapshot, when: string, mustKeep: boolean): void {
    const lost = (message: string): void => {
      if (mustKeep) this.add('lost', when, message);
      else this.lostAllowed++;
    };
    for (const problem of life.problems) this.add('inconsistent', when, `engine: ${problem}`);
    for (const line of life.otherResumeErrors) this.add('inconsistent', when, `engine: ${line}`);
    for (const id of life.started) {
      if (!snapshot.runs.has(id)) lost(`started run ${id} is missing`);
    }
    for (const [key, output] of life.outputs) {
      const task = taskOf(snapshot, key);
      if (task?.status !== 'completed') {
        lost(`${key} was acknowledged completed, and is ${task?.status ?? 'missing'}`);
      } else if (!isDeepStrictEqual(task.output, output)) {
        this.add(
          'inconsistent',
          when,
          `${key} was acknowledged with ${JSON.stringify(output)} and is stored with ` +
            JSON.stringify(task.output),
        );
      }
    }
    for (const { key, status } of life.resumed) {
      const decision = this.#decisions.get(key.split('/')[0]!);
      const task = taskOf(snapshot, key);
      const done = task?.status === 'completed' && isDeepStrictEqual(task.output, decision);
      if (!done && !isDeepStrictEqual(snapshot.inbox.get(key), decision)) {
        lost(`acknowledged resume (${status}) of ${key} is missing: ${task?.status}`);
      }
    }
  }

  /**
   * The invariants of every state: the store's integrity, each run's history, and nothing
   * that a state checked before had (it was on disk: the driver reopened the store on the
   * platter) gone back: no task lost, no completed task changed or run again, no attempt
   * number lower.
   */
  checkSnapshot(snapshot: Snapshot, when: string): void {
    for (const problem of snapshot.integrity.problems) this.add('inconsistent', when, problem);
    for (const id of this.#seenRuns) {
      if (!snapshot.runs.has(id))
        this.add('inconsistent', when, `run ${id} was on disk and is gone`);
    }
    for (const run of snapshot.runs.values()) {
      if (!this.#plan.has(run.id)) {
        this.add('inconsistent', when, `run ${run.id} was never started`);
        continue;
      }
      const tasks = snapshot.tasks.get(run.id) ?? [];
      for (const problem of checkChain(run, tasks, this.#decisions.get(run.id)!)) {
        this.add('inconsistent', when, `${run.id}: ${problem}`);
      }
    }
    const seen = new Map<string, Seen>();
    for (const [runId, tasks] of snapshot.tasks) {
      for (const task of tasks) {
        if (task.taskId.startsWith('$')) continue;
        const key = `${runId}/${task.taskId}`;
        const now: Seen = {
          status: task.status,
          attempt: task.attempt,
          output: task.output,
          executions: snapshot.journal.get(`${runId}:${task.taskId}`)?.length ?? 0,
        };
        seen.set(key, now);
        this.#compare(key, this.#seen.get(key), now, when);
      }
    }
    for (const key of this.#seen.keys()) {
      if (!seen.has(key)) this.add('inconsistent', when, `${key} was on disk and is gone`);
    }
    this.#seen = seen;
    this.#seenRuns = new Set(snapshot.runs.keys());
  }

  #compare(key: string, before: Seen | undefined, now: Seen, when: string): void {
    if (before === undefined) return;
    if (now.attempt < before.attempt) {
      this.add(
        'inconsistent',
        when,
        `${key} went back from attempt ${before.attempt} to ${now.attempt}`,
      );
    }
    if (before.status !== 'completed') return;
    if (now.status !== 'completed' || !isDeepStrictEqual(now.output, before.output)) {
      this.add(
        'inconsistent',
        when,
        `${key} was on disk completed with ${JSON.stringify(before.output)}, ` +
          `and is ${now.status} with ${JSON.stringify(now.output)}`,
      );
    } else if (now.executions > before.executions) {
      this.add('inconsistent', when, `${key} ran again after its completion was on disk`);
    }
  }

  /** After a life that ran every run to its end: each one completed. */
  checkEnd(snapshot: Snapshot, when: string): void {
    for (const id of this.#plan.keys()) {
      const run = snapshot.runs.get(id);
      if (run?.status !== 'completed') {
        this.add(
          'unrecovered',
          when,
          `${id} is ${run?.status ?? 'missing'} ${run?.error?.code ?? ''}`,
        );
      }
    }
  }
}

/**
 * Runs an engine on `store` (open or not; left open) until every run of the plan has ended,
 * starting those it lacks and answering every wait, as the application's next start would
 * (steps journaled to `journal` when given).
 * Resolves with what went wrong: runs that failed or did not end within `timeoutMs`, resumes
 * refused for another reason than having been answered already.
 */
export async function finishRuns(
  store: LevelStore,
  plan: readonly ChainRun[],
  decisions: Map<string, DecisionData>,
  journal?: string,
  timeoutMs = 120_000,
): Promise<string[]> {
  const problems: string[] = [];
  const workload = chainWorkload({ pace: 0.05, ...(journal === undefined ? {} : { journal }) });
  let engine: Engine;
  try {
    engine = await createEngine({
      store,
      workflows: workload.workflows,
      concurrency: 16,
      maxRecoveries: 1_000_000,
      on: { problem: (e) => problems.push(`problem ${e.runId} ${e.error.code}`) },
    });
  } catch (error) {
    workload.close();
    throw error;
  }
  try {
    for (const run of plan) await engine.start(run.workflow, run.input, { id: run.id });
    for (const [runId, data] of decisions) {
      await engine.resumeTask(runId, WAIT, data, { by: 'driver' }).catch((error: unknown) => {
        if (!isCairnError(error, 'NOT_WAITING')) problems.push(`resume ${runId}: ${String(error)}`);
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const ended = Promise.all(
      plan.map((run) =>
        engine
          .handle(run.id)
          .result()
          .catch((error: unknown) => problems.push(`${run.id} failed: ${String(error)}`)),
      ),
    );
    if ((await Promise.race([ended, timeout])) === 'timeout') {
      problems.push(`the runs did not all end within ${timeoutMs} ms`);
    }
    clearTimeout(timer);
  } finally {
    await engine.close();
    workload.close();
  }
  return problems;
}
