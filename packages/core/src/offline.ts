import {
  CairnError,
  Store,
  TERMINAL_STATUSES,
  assertSerializable,
  checkOptionNames,
  type Run,
  type Task,
} from '@cairn/store';
import { z } from 'zod';
import { elapsed } from './execution-support.js';
import { KeyedLock } from './lock.js';
import {
  checkBy,
  checkId,
  checkKeep,
  refuseUnknownTask,
  runHasEnded,
  typeError,
  waitingIds,
} from './engine-support.js';
import { OFFLINE_RESUME_OPTIONS, OFFLINE_RESUME_TASK_OPTIONS } from './option-names.js';
import { cancelRunRecords, operatorPaused } from './run-changes.js';
import { transition } from './status.js';

/**
 * Operations on runs for tools that open a store without the workflow code (the `cairn` CLI,
 * while no engine has the store open). They change records the way the engine would and go
 * through `transition()`; the next engine that opens the store carries on from there. A
 * run resumed here is left `queued`, so that engine recovers and continues it without
 * counting a recovery.
 *
 * Waits are validated against the JSON schema stored with them (zod 4 `z.fromJSONSchema`), not
 * the live zod schema the engine uses: refinements and transforms that JSON schema cannot say
 * are not checked here, and input they refuse fails the run with `NON_DETERMINISM` when the
 * engine replays it.
 */

export interface OfflineResumeOptions {
  /** Who or what resumed it (recorded as the task's `resumedBy`). */
  readonly by?: string;
}

export interface OfflineResumeTaskOptions extends OfflineResumeOptions {
  /**
   * Keep the input for a task the run does not have yet even though the run is paused waiting
   * for input on other tasks (refused with `NOT_WAITING` otherwise), as `engine.resumeTask`.
   * @default false
   */
  readonly keep?: boolean;
}

export interface OfflineResumeTaskResult {
  /** `kept`: the run has not reached the task; the input waits in its inbox. */
  readonly status: 'resumed' | 'kept';
  readonly runId: string;
  readonly taskId: string;
  /** The run as it is now. */
  readonly run: Run;
}

/** One lock per store: two offline operations on one run never interleave. */
const locks = new WeakMap<Store, KeyedLock>();

function locked<T>(store: Store, runId: string, fn: () => Promise<T>): Promise<T> {
  let lock = locks.get(store);
  if (!lock) locks.set(store, (lock = new KeyedLock()));
  return lock.run(runId, fn);
}

function checkArgs(store: unknown, runId: unknown): asserts store is Store {
  if (!(store instanceof Store)) throw typeError('store must be a Store');
  checkId('runId', runId);
}

function checkOptions(options: unknown, known: ReadonlySet<string>): void {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, known);
}

async function load(store: Store, runId: string): Promise<Run> {
  const run = await store.getRun(runId);
  if (!run) throw new CairnError('NOT_FOUND', `No run with id "${runId}"`, { details: { runId } });
  return run;
}

/** The time of an offline change: now, but never before the run's last change. */
function clockFor(run: Run): number {
  return Math.max(Date.now(), run.updatedAt);
}

function notWaiting(runId: string, taskId: string): CairnError {
  return new CairnError(
    'NOT_WAITING',
    `Task "${taskId}" of run ${runId} is not waiting for input`,
    {
      details: { runId, taskId },
    },
  );
}

// --- stored JSON schemas --------------------------------------------------------------------

const SCHEMA_CACHE_SIZE = 256;
const schemas = new Map<string, z.ZodType>();

/** The zod schema of a stored JSON schema, compiled once (a small cache, oldest dropped). */
function compiled(schema: unknown, runId: string, taskId: string): z.ZodType {
  const text = JSON.stringify(schema ?? {});
  let zod = schemas.get(text);
  if (zod) return zod;
  try {
    zod = z.fromJSONSchema(JSON.parse(text) as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (cause) {
    throw new CairnError(
      'INVALID_RESUME_INPUT',
      `The stored schema of "${taskId}" cannot be checked without the workflow code; resume it through an engine`,
      { cause, details: { runId, taskId, issues: [] } },
    );
  }
  if (schemas.size >= SCHEMA_CACHE_SIZE) schemas.delete(schemas.keys().next().value!);
  schemas.set(text, zod);
  return zod;
}

/** Checks every payload against its wait's stored schema; all or nothing. */
function validate(run: Run, waits: ReadonlyMap<Task, unknown>): void {
  const problems: { taskId: string; issues: unknown }[] = [];
  for (const [task, data] of waits) {
    const parsed = compiled(task.schema, run.id, task.taskId).safeParse(data);
    if (!parsed.success) problems.push({ taskId: task.taskId, issues: parsed.error.issues });
  }
  if (problems.length > 0) {
    throw new CairnError(
      'INVALID_RESUME_INPUT',
      `The input for ${problems.map((p) => `"${p.taskId}"`).join(', ')} does not match the schema; the run is unchanged`,
      {
        details: {
          runId: run.id,
          issues: problems.length === 1 ? problems[0]!.issues : problems,
        },
      },
    );
  }
}

/**
 * The checkpoint that answers `waits`: each completed with its payload, and the run `queued`
 * when nothing else holds it (then the next engine continues it), or still `paused` at the
 * next waiting task, or under an operator pause that `clearPause` does not end.
 */
async function answer(
  store: Store,
  run: Run,
  tasks: readonly Task[],
  waits: ReadonlyMap<Task, unknown>,
  by: string | null,
  clearPause: boolean,
): Promise<Run> {
  validate(run, waits);
  const now = clockFor(run);
  const completed = [...waits].map(([task, data]): Task => ({
    ...task,
    status: 'completed',
    output: data,
    resumedBy: by,
    endedAt: now,
    durationMs: elapsed(task.startedAt, now),
  }));
  const answered = new Set(completed.map((t) => t.taskId));
  const remaining = tasks.filter((t) => t.status === 'waiting' && !answered.has(t.taskId));
  const operator = run.pauseRequested && !clearPause;
  let next: Run;
  if (run.status !== 'paused') {
    // Not paused (its engine stopped while other work was in flight): recovery continues it.
    next = { ...run, pauseRequested: operator, updatedAt: now };
  } else if (operator || remaining.length > 0) {
    const held = run.pausedTaskId !== null && !answered.has(run.pausedTaskId);
    next = transition(run, 'paused', now, {
      pausedTaskId: remaining[0]?.taskId ?? (held ? run.pausedTaskId : null),
      pauseRequested: operator,
    });
  } else {
    next = transition(run, 'queued', now, { pauseRequested: false });
  }
  await store.checkpoint({ runs: [next], tasks: completed });
  return next;
}

/**
 * Answers a waiting task: `data` is validated against the task's stored JSON schema
 * (`INVALID_RESUME_INPUT` with the issues, nothing written); then one checkpoint completes the
 * wait and leaves the run `queued` (or paused at its next wait, or under an operator pause).
 * `NOT_FOUND` for an unknown run, `NOT_WAITING` for a task that is not waiting; input for a
 * task the run has not reached is kept in its inbox (`status: 'kept'`), as the engine does.
 */
export async function offlineResumeTask(
  store: Store,
  runId: string,
  taskId: string,
  data: unknown,
  options: OfflineResumeTaskOptions = {},
): Promise<OfflineResumeTaskResult> {
  checkArgs(store, runId);
  checkId('taskId', taskId);
  checkOptions(options, OFFLINE_RESUME_TASK_OPTIONS);
  const by = checkBy(options);
  const keep = checkKeep(options);
  assertSerializable(data, 'data');
  return locked(store, runId, async () => {
    const run = await load(store, runId);
    const tasks = await store.listTasks(runId);
    const task = tasks.find((t) => t.taskId === taskId);
    if (!task) {
      if (TERMINAL_STATUSES.has(run.status)) {
        throw new CairnError('NOT_FOUND', `Run ${runId} has ended and has no task "${taskId}"`, {
          details: { runId, taskId },
        });
      }
      const refused = refuseUnknownTask(run, taskId, waitingIds(tasks), keep);
      if (refused) throw refused;
      await store.putInbox(runId, taskId, data);
      return { status: 'kept', runId, taskId, run };
    }
    if (task.kind !== 'wait' || task.status !== 'waiting') throw notWaiting(runId, taskId);
    const next = await answer(store, run, tasks, new Map([[task, data]]), by, false);
    return { status: 'resumed', runId, taskId, run: next };
  });
}

/**
 * Resumes the whole run, as `engine.resume` does: ends an operator pause, and with `data`
 * answers every waiting task, all or nothing (`data` is one payload for all, or an object
 * keyed by task id when its keys are waiting task ids). `NOT_PAUSED` when there is nothing to
 * resume; `INVALID_RESUME_INPUT` when the run waits for input and no data was given.
 */
export async function offlineResume(
  store: Store,
  runId: string,
  data?: unknown,
  options: OfflineResumeOptions = {},
): Promise<Run> {
  checkArgs(store, runId);
  checkOptions(options, OFFLINE_RESUME_OPTIONS);
  const by = checkBy(options);
  if (data !== undefined) assertSerializable(data, 'data');
  return locked(store, runId, async () => {
    const run = await load(store, runId);
    if (TERMINAL_STATUSES.has(run.status)) {
      throw runHasEnded(run, '; there is nothing to resume');
    }
    const tasks = await store.listTasks(runId);
    const waiting = tasks.filter((t) => t.status === 'waiting');
    if (data !== undefined && waiting.length > 0) {
      const ids = waiting.map((t) => t.taskId);
      const keyed =
        typeof data === 'object' &&
        data !== null &&
        !Array.isArray(data) &&
        Object.keys(data).length > 0 &&
        Object.keys(data).every((k) => ids.includes(k));
      const waits = new Map<Task, unknown>();
      for (const task of waiting) {
        if (!keyed) waits.set(task, data);
        else if (Object.hasOwn(data, task.taskId)) {
          waits.set(task, (data as Record<string, unknown>)[task.taskId]);
        }
      }
      return answer(store, run, tasks, waits, by, true);
    }
    if (!run.pauseRequested) {
      throw waiting.length > 0
        ? new CairnError(
            'INVALID_RESUME_INPUT',
            `Run ${runId} waits for input: pass the data to resume it with`,
            { details: { runId, issues: [] } },
          )
        : new CairnError('NOT_PAUSED', `Run ${runId} is ${run.status} and not paused`, {
            details: { runId, status: run.status },
          });
    }
    const now = clockFor(run);
    let next: Run;
    if (run.status !== 'paused') next = { ...run, pauseRequested: false, updatedAt: now };
    else if (waiting.length > 0) {
      next = transition(run, 'paused', now, {
        pausedTaskId: waiting[0]!.taskId,
        pauseRequested: false,
      });
    } else next = transition(run, 'queued', now, { pauseRequested: false });
    await store.checkpoint({ runs: [next] });
    return next;
  });
}

/**
 * Operator pause of a run no engine is executing: the run is `paused` with `pausedTaskId`
 * (the first task in flight or waiting) and stays so, across restarts, until resumed.
 * Pausing a run that is paused by an operator already changes nothing.
 */
export async function offlinePause(store: Store, runId: string): Promise<Run> {
  checkArgs(store, runId);
  return locked(store, runId, async () => {
    const run = await load(store, runId);
    if (TERMINAL_STATUSES.has(run.status)) {
      throw runHasEnded(run, ' and cannot be paused');
    }
    if (run.status === 'paused' && run.pauseRequested) return run;
    const paused = operatorPaused(
      run,
      run.status === 'paused' ? [] : await store.listTasks(runId),
      clockFor(run),
    );
    await store.checkpoint({ runs: [paused] });
    return paused;
  });
}

/**
 * Cancels a run no engine is executing: its pending tasks end `cancelled`, the run ends
 * `cancelled` (with a `CANCELLED` error), and its running children are cancelled too.
 * Cancelling a cancelled run returns it; a completed or failed one is `INVALID_TRANSITION`.
 */
export async function offlineCancel(store: Store, runId: string): Promise<Run> {
  checkArgs(store, runId);
  const children: string[] = [];
  const result = await locked(store, runId, async () => {
    const run = await load(store, runId);
    if (run.status === 'cancelled') return run;
    const ended = cancelRunRecords(run, await store.listTasks(runId), clockFor(run));
    children.push(...ended.children);
    await store.checkpoint({ runs: [ended.run], tasks: ended.tasks });
    return ended.run;
  });
  // Every child is tried; a child that ended meanwhile, or is gone, is left as it is. Any
  // other failure (a damaged record) is reported once the others are done: the run itself is
  // cancelled by then.
  const failures: { child: string; error: unknown }[] = [];
  for (const child of children) {
    await offlineCancel(store, child).catch((error: unknown) => {
      const expected =
        error instanceof CairnError &&
        (error.code === 'INVALID_TRANSITION' || error.code === 'NOT_FOUND');
      if (!expected) failures.push({ child, error });
    });
  }
  const [failure] = failures;
  if (failure !== undefined) {
    const { child, error } = failure;
    if (!(error instanceof CairnError)) throw error;
    throw new CairnError(
      error.code,
      `Run ${runId} was cancelled, but its child run ${child} could not be: ${error.message}`,
      { cause: error, details: { runId, childRunId: child } },
    );
  }
  return result;
}
