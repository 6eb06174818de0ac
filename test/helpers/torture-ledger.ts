import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import {
  LevelStore,
  TERMINAL_STATUSES,
  type Durability,
  type LevelStoreOptions,
  type Run,
  type Task,
} from '@cairn/store';
import type { Decision, PlannedRun } from './torture-workflows.js';

/** How a run ends when nothing goes wrong: its status, and its output or error code. */
export interface Outcome {
  readonly status: Run['status'];
  readonly output?: unknown;
  readonly code?: string | undefined;
}

/** Everything in the store (read after the child died), and the journal beside it. */
export interface Snapshot {
  readonly runs: Map<string, Run>;
  /** Tasks by run id. */
  readonly tasks: Map<string, Task[]>;
  /** Inbox entries by `runId/taskId`. */
  readonly inbox: Map<string, unknown>;
  /** The attempt numbers the journal holds for each `runId:taskId`, one per execution. */
  readonly journal: Map<string, number[]>;
  readonly integrity: { readonly ok: boolean; readonly problems: readonly string[] };
}

const LIVE_TASK = new Set(['running', 'waiting', 'sleeping']);
const FINAL_STEP = new Set(['completed', 'failed']);

export function readJournal(file: string): Map<string, number[]> {
  const journal = new Map<string, number[]>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return journal;
  }
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts.length !== 3) continue;
    const key = `${parts[0]}:${parts[1]}`;
    let attempts = journal.get(key);
    if (!attempts) journal.set(key, (attempts = []));
    attempts.push(Number(parts[2]));
  }
  return journal;
}

/**
 * Opens the store the child left behind, with the durability it was written with (as the
 * application would; the open replays whatever the process log has and LevelDB lacks),
 * checks its integrity, and reads everything. `options` are the store's other options.
 */
export async function takeSnapshot(
  path: string,
  journalFile: string,
  durability: Durability = 'strict',
  options: Omit<LevelStoreOptions, 'path' | 'durability'> = {},
): Promise<Snapshot> {
  const store = new LevelStore({ ...options, path, durability });
  await store.open();
  try {
    const report = await store.verify();
    const problems = report.problems.map((p) => `${p.kind} ${p.key}: ${p.message}`);
    const runs = new Map<string, Run>();
    let cursor: string | null = null;
    do {
      const page = await store.listRuns({ limit: 1000, cursor });
      for (const bad of page.corrupt) problems.push(`corrupt ${bad.key}: ${bad.error.code}`);
      for (const run of page.items) runs.set(run.id, run);
      cursor = page.cursor;
    } while (cursor !== null);
    const tasks = new Map<string, Task[]>();
    const inbox = new Map<string, unknown>();
    for (const id of runs.keys()) {
      tasks.set(id, await store.listTasks(id));
      for (const entry of await store.listInbox(id)) inbox.set(`${id}/${entry.taskId}`, entry.data);
    }
    return {
      runs,
      tasks,
      inbox,
      journal: readJournal(journalFile),
      integrity: { ok: report.ok && problems.length === 0, problems },
    };
  } finally {
    await store.close();
  }
}

/** What one life of the child acknowledged, read from its stdout. */
export interface LifeReport {
  readonly started: string[];
  /** `runId/taskId` of every task:completed event. */
  readonly completed: string[];
  /** The outputs acknowledged tasks were completed with, where the child printed them. */
  readonly outputs: Map<string, unknown>;
  readonly resumed: { key: string; status: 'resumed' | 'kept' }[];
  /** `runId/taskId` of resumes refused with `NOT_WAITING`. */
  readonly notWaiting: string[];
  readonly otherResumeErrors: string[];
  readonly problems: string[];
}

export function readLife(lines: readonly string[]): LifeReport {
  const report: LifeReport = {
    started: [],
    completed: [],
    outputs: new Map(),
    resumed: [],
    notWaiting: [],
    otherResumeErrors: [],
    problems: [],
  };
  for (const line of lines) {
    const [word, a, b, c, ...rest] = line.split(' ');
    if (word === 'started') report.started.push(a!);
    else if (word === 'task') {
      report.completed.push(`${a}/${b}`);
      if (rest.length > 0) report.outputs.set(`${a}/${b}`, JSON.parse(rest.join(' ')));
    } else if (word === 'resume-ok') report.resumed.push({ key: `${a}/${b}`, status: c as 'kept' });
    else if (word === 'resume-err' && c === 'NOT_WAITING') report.notWaiting.push(`${a}/${b}`);
    else if (word === 'resume-err') report.otherResumeErrors.push(line);
    else if (word === 'problem') report.problems.push(line);
  }
  return report;
}

/**
 * The invariants of the torture test, checked against every snapshot. It remembers what
 * was acknowledged and what was checkpointed across lives, and collects violations rather
 * than stopping at the first, so one failing schedule shows everything it broke.
 */
export class Ledger {
  readonly violations: string[] = [];
  /** Runs whose start() resolved in some life. */
  readonly started = new Set<string>();
  /** Journal lines of each step (`runId:taskId`) when its outcome was first seen committed. */
  readonly checkpointed = new Map<string, number>();
  /** Acknowledged resumes by `runId/taskId`. */
  readonly acked = new Map<string, 'resumed' | 'kept'>();
  readonly #plan: Map<string, PlannedRun>;
  readonly #decisions: Map<string, Decision>;
  readonly #expected: Map<string, Outcome>;

  constructor(
    plan: readonly PlannedRun[],
    decisions: readonly Decision[],
    expected: Map<string, Outcome>,
  ) {
    this.#plan = new Map(plan.map((run) => [run.id, run]));
    this.#decisions = new Map(decisions.map((d) => [`${d.runId}/${d.taskId}`, d]));
    this.#expected = expected;
  }

  violation(when: string, message: string): void {
    this.violations.push(`${when}: ${message}`);
  }

  /** Decisions not acknowledged and not seen completed yet. */
  outstanding(snapshot: Snapshot | null): Decision[] {
    return [...this.#decisions.entries()]
      .filter(([key]) => !this.acked.has(key))
      .filter(([key]) => snapshot === null || taskOf(snapshot, key)?.status !== 'completed')
      .map(([, d]) => d);
  }

  /** Checks what one life acknowledged against the store it left. */
  checkLife(life: LifeReport, snapshot: Snapshot, when: string): void {
    for (const problem of life.problems) this.violation(when, `the engine reported ${problem}`);
    for (const id of life.started) this.started.add(id);
    for (const id of this.started) {
      if (!snapshot.runs.has(id)) this.violation(when, `started run ${id} is lost`);
    }
    for (const key of life.completed) {
      const task = taskOf(snapshot, key);
      if (task?.status !== 'completed') {
        this.violation(when, `${key} was reported completed but is stored ${task?.status}`);
      }
    }
    for (const { key, status } of life.resumed) {
      this.acked.set(key, status);
      const data = this.#decisions.get(key)?.data;
      const task = taskOf(snapshot, key);
      const done = task?.status === 'completed' && isDeepStrictEqual(task.output, data);
      const kept = status === 'kept' && isDeepStrictEqual(snapshot.inbox.get(key), data);
      if (!done && !kept) {
        this.violation(when, `acknowledged resume (${status}) of ${key} is lost: ${task?.status}`);
      }
    }
    for (const key of life.notWaiting) {
      const data = this.#decisions.get(key)?.data;
      const task = taskOf(snapshot, key);
      const done = task?.status === 'completed' || task?.status === 'timed_out';
      if (!done && !isDeepStrictEqual(snapshot.inbox.get(key), data)) {
        this.violation(when, `resume of ${key} was refused NOT_WAITING while ${task?.status}`);
      }
    }
  }

  /** Invariants every snapshot must satisfy, whenever the process died. */
  checkSnapshot(snapshot: Snapshot, when: string): void {
    for (const problem of snapshot.integrity.problems) this.violation(when, problem);
    for (const run of snapshot.runs.values()) this.#checkRun(snapshot, run, when);
    for (const tasks of snapshot.tasks.values()) {
      for (const task of tasks) {
        if (task.kind !== 'step' || task.taskId.startsWith('$')) continue;
        this.#checkStep(snapshot, task, when);
      }
    }
  }

  #checkRun(snapshot: Snapshot, run: Run, when: string): void {
    const tasks = snapshot.tasks.get(run.id) ?? [];
    if (run.parentRunId !== null) {
      const owner = snapshot.tasks
        .get(run.parentRunId)
        ?.find((t) => t.taskId === run.parentTaskId && t.kind === 'child');
      if (owner?.childRunId !== run.id) {
        this.violation(when, `child run ${run.id} is not the child of its parent's task`);
      }
    } else if (!this.#plan.has(run.id)) {
      this.violation(when, `run ${run.id} was never planned`);
    }
    if (run.status === 'paused') {
      const at = tasks.find((t) => t.taskId === run.pausedTaskId);
      if (at?.status !== 'waiting') {
        this.violation(when, `${run.id} is paused at ${run.pausedTaskId} (${at?.status})`);
      }
    }
    if (TERMINAL_STATUSES.has(run.status)) {
      const live = tasks.filter((t) => LIVE_TASK.has(t.status)).map((t) => t.taskId);
      if (live.length > 0)
        this.violation(when, `${run.id} ended with live tasks ${live.join(', ')}`);
      const expected: Outcome = this.#expected.get(run.id) ?? { status: 'completed' };
      const actual = outcomeOf(run);
      const same =
        actual.status === expected.status &&
        actual.code === expected.code &&
        (run.parentRunId !== null || isDeepStrictEqual(actual.output, expected.output));
      if (!same) {
        this.violation(
          when,
          `${run.id} ended ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`,
        );
      }
    }
    for (const task of tasks) {
      if (task.kind === 'child' && task.status === 'completed') {
        const child = snapshot.runs.get(task.childRunId ?? '');
        if (child?.status !== 'completed') {
          this.violation(
            when,
            `${run.id}/${task.taskId} completed but its child is ${child?.status}`,
          );
        }
      }
    }
  }

  #checkStep(snapshot: Snapshot, task: Task, when: string): void {
    const key = `${task.runId}:${task.taskId}`;
    const attempts = snapshot.journal.get(key) ?? [];
    if (!FINAL_STEP.has(task.status)) return;
    if (!attempts.includes(task.attempt)) {
      this.violation(
        when,
        `${key} is ${task.status} at attempt ${task.attempt}, which never ran (journal ${attempts.join(',')})`,
      );
    }
    const seen = this.checkpointed.get(key);
    if (seen === undefined) this.checkpointed.set(key, attempts.length);
    else if (attempts.length !== seen) {
      this.violation(when, `${key} ran again after its checkpoint (${seen} → ${attempts.length})`);
    }
  }

  /** The end: every run finished as expected, every decision delivered, retries retried. */
  checkEnd(snapshot: Snapshot): void {
    const when = 'at the end';
    for (const [id, expected] of this.#expected) {
      const run = snapshot.runs.get(id);
      if (!run) this.violation(when, `run ${id} is lost`);
      else if (run.status !== expected.status) {
        this.violation(when, `${id} is ${run.status}, expected ${expected.status}`);
      }
    }
    const children = [...snapshot.runs.values()].filter((r) => r.parentRunId !== null);
    const childTasks = [...snapshot.tasks.values()].flat().filter((t) => t.kind === 'child');
    if (children.length !== childTasks.length) {
      this.violation(when, `${children.length} child runs for ${childTasks.length} child tasks`);
    }
    for (const [key, d] of this.#decisions) {
      const task = taskOf(snapshot, key);
      if (task?.status !== 'completed' || !isDeepStrictEqual(task.output, d.data)) {
        this.violation(when, `${key} is ${task?.status} with ${JSON.stringify(task?.output)}`);
      }
    }
    for (const run of snapshot.runs.values()) {
      for (const task of snapshot.tasks.get(run.id) ?? []) {
        const key = `${run.id}:${task.taskId}`;
        const attempts = snapshot.journal.get(key) ?? [];
        const failFirst = FAIL_FIRST[task.taskId];
        if (failFirst !== undefined && task.status === 'completed') {
          // The attempt that completed it ran, after the ones that fail, and none ran after it.
          // An earlier attempt may be missing from the journal: its start is recorded before the
          // step function is called, and a kill in between (at `step.before-run`) leaves it
          // recorded, not run.
          if (
            task.attempt <= failFirst ||
            !attempts.includes(task.attempt) ||
            attempts.some((a) => a > task.attempt)
          ) {
            this.violation(
              when,
              `${key} completed at attempt ${task.attempt} (journal ${attempts.join(',')})`,
            );
          }
        }
        if (task.kind === 'wait' && task.taskId === 'maybe' && task.status !== 'timed_out') {
          this.violation(when, `${key} is ${task.status}, expected timed_out`);
        }
      }
    }
  }
}

/** Steps that fail their first attempts on purpose, by task id. */
const FAIL_FIRST: Record<string, number> = { flaky: 1, 'flaky-twice': 2, k2: 1, finish: 1 };

/** The task `runId/taskId` of a snapshot. */
export function taskOf(snapshot: Snapshot, key: string): Task | undefined {
  const [runId, taskId] = key.split('/');
  return snapshot.tasks.get(runId!)?.find((t) => t.taskId === taskId);
}

export function outcomeOf(run: Run): Outcome {
  if (run.status === 'completed') return { status: run.status, output: run.output };
  return { status: run.status, code: run.error?.code };
}
