/** Waits for input: recording the wait, early input (the inbox), validating and resuming with payloads. */
import { CairnError, checkOptionNames, faults, assertSerializable, type Task } from '@cairn/store';
import { z } from 'zod';
import type { WaitOptions } from './context.js';
import { toMs } from './duration.js';
import { transition } from './status.js';
import {
  FINAL_TASK,
  typeError,
  checkName,
  elapsed,
  jsonSchema,
  parseWaitInput,
  type PendingWait,
} from './execution-support.js';
import { newTask } from './new-records.js';
import { WAIT_OPTIONS } from './option-names.js';
import { fireSoon } from './sleeps.js';
import { writeLog } from './context-impl.js';
import type { RunExecution } from './execution.js';

export async function waitForInput<S extends z.ZodType>(
  exec: RunExecution,
  name: string,
  options: WaitOptions<S>,
): Promise<z.output<S>> {
  checkName('wait', name);
  if (typeof options !== 'object' || options === null)
    throw typeError('wait options must be an object');
  checkOptionNames('wait options', options, WAIT_OPTIONS);
  const schema = options.schema;
  if (typeof schema !== 'object' || schema === null || typeof schema.safeParse !== 'function') {
    throw typeError('wait options.schema must be a zod schema');
  }
  const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
  if (options.description !== undefined && typeof options.description !== 'string')
    throw typeError('wait options.description must be a string');
  const onTimeout = options.onTimeout ?? 'fail';
  if (
    onTimeout !== 'fail' &&
    (typeof onTimeout !== 'object' || onTimeout === null || !('default' in onTimeout))
  ) {
    throw typeError("wait options.onTimeout must be 'fail' or { default: value }");
  }
  if (onTimeout !== 'fail') assertSerializable(onTimeout.default, 'wait options.onTimeout.default');
  const { taskId, seq, hist, group } = exec.claim(name, 'wait');
  const ordered = exec.inOrder(hist);
  if (ordered) await ordered;
  if (hist && FINAL_TASK.has(hist.status)) {
    if (hist.status === 'completed')
      return parseRecorded(exec, schema, hist.output, taskId) as z.output<S>;
    if (hist.status === 'timed_out' && hist.error === null) return hist.output as z.output<S>;
    return exec.replayed(hist) as never;
  }
  // A wait already recorded starts nothing: an operator pause does not hold it, so input
  // can still be delivered to it (the run stays paused until `resume`).
  const held = exec.gate(taskId, hist === undefined, hist === undefined);
  if (held) await held;
  exec.inflight++;
  try {
    let task = hist;
    if (!task) {
      const now = exec.host.clock.now();
      task = newTask(exec, {
        taskId,
        kind: 'wait',
        seq,
        status: 'waiting',
        attempt: 1,
        startedAt: now,
        group,
        meta: {
          onTimeout: onTimeout === 'fail' ? 'fail' : 'default',
          ...(options.description === undefined ? {} : { description: options.description }),
        },
        schema: jsonSchema(schema),
        timeoutAt: timeoutMs === undefined ? null : now + timeoutMs,
        resumedBy: null,
      });
      exec.tasks.set(taskId, task);
    }
    // Input sent before the wait was reached (or, for a recorded wait, before a crash
    // let it be delivered) answers it now.
    const early = takeEarlyInput(exec, taskId);
    const parsed = early.found ? parseWaitInput(schema, early.data) : null;
    if (parsed?.success) {
      completeWait(exec, task, early.data, 'inbox');
      await exec.write({ tasks: [task], inboxTaken: [{ runId: exec.run.id, taskId }] });
      return parsed.data;
    }
    if (!hist) {
      await exec.write({ tasks: [task] });
      exec.host.events.emit('task:waiting', {
        runId: exec.run.id,
        taskId,
        schema: task.schema,
        timeoutAt: task.timeoutAt ?? null,
      });
    }
    if (parsed) await refuseEarlyInput(exec, task, early.data, parsed.error.issues);
    const promise = new Promise<unknown>((resolve, reject) => {
      exec.pending.set(taskId, { kind: 'wait', taskId, schema, onTimeout, resolve, reject });
    });
    if (task.timeoutAt !== null && task.timeoutAt !== undefined) {
      if (task.timeoutAt <= exec.host.clock.now()) fireSoon(exec, taskId);
      else exec.host.armTimer(task.timeoutAt);
    }
    // Input kept for this wait while it was being written answers it now.
    if (exec.inbox.has(taskId)) answerKept(exec, taskId);
    exec.inflight--;
    exec.scheduleCheck();
    try {
      return (await promise) as z.output<S>;
    } finally {
      exec.inflight++;
    }
  } finally {
    exec.inflight--;
    exec.scheduleCheck();
  }
}

/** Answers a wait just set up with the input kept for it meanwhile (refused if invalid). */
export function answerKept(exec: RunExecution, taskId: string): void {
  const data = exec.inbox.get(taskId);
  exec.inbox.delete(taskId);
  const pending = exec.pending.get(taskId) as PendingWait;
  const parsed = parseWaitInput(pending.schema, data);
  const delivered = parsed.success
    ? exec.resumeWaits(new Map([[taskId, data]]), 'inbox', true)
    : refuseEarlyInput(exec, exec.tasks.get(taskId)!, data, parsed.error.issues);
  delivered.catch((cause: unknown) =>
    exec.host.events.emit('warning', {
      message: `Input kept for "${taskId}" could not be delivered`,
      runId: exec.run.id,
      cause,
    }),
  );
}

/** Issues kept with refused input, at most (a record has a size limit). */
const MAX_REFUSED_ISSUES = 20;

/**
 * Input sent before the wait was reached that the wait's schema refuses: moved from the inbox
 * onto the wait's record (`meta.refusedInput`: when, the zod issues, the input) in one
 * checkpoint, reported (`task:input-refused`, a `warn` log line), and the wait waits on. Input
 * too large to sit on the wait's record with it is left out (`issues` and `at` are kept).
 */
async function refuseEarlyInput(
  exec: RunExecution,
  task: Task,
  data: unknown,
  zodIssues: readonly unknown[],
): Promise<void> {
  const issues = plainIssues(zodIssues.slice(0, MAX_REFUSED_ISSUES));
  const at = exec.host.clock.now();
  task.meta = { ...task.meta, refusedInput: { at, issues, data } };
  const checkpoint = { tasks: [task], inboxTaken: [{ runId: exec.run.id, taskId: task.taskId }] };
  let tooLarge = false;
  try {
    await exec.write(checkpoint, () => {
      tooLarge = true;
    });
  } catch (error) {
    if (!tooLarge) throw error;
    task.meta = { ...task.meta, refusedInput: { at, issues } };
    await exec.write(checkpoint);
  }
  exec.host.events.emit('task:input-refused', { runId: exec.run.id, taskId: task.taskId, issues });
  writeLog(
    exec,
    `Input sent early for "${task.taskId}" was refused by its schema; the wait waits for valid input`,
    { taskId: task.taskId, issues },
    'warn',
  );
}

/** Zod issues as plain data (a custom issue may carry anything). */
function plainIssues(issues: readonly unknown[]): unknown[] {
  try {
    return JSON.parse(JSON.stringify(issues)) as unknown[];
  } catch {
    return issues.map((issue) => ({ message: String((issue as { message?: unknown }).message) }));
  }
}

export function parseRecorded(
  exec: RunExecution,
  schema: z.ZodType,
  data: unknown,
  taskId: string,
): unknown {
  const parsed = parseWaitInput(schema, data);
  if (parsed.success) return parsed.data;
  throw exec.nonDeterminism(
    `input for "${taskId}" that its schema accepts`,
    'a schema that refuses the recorded input',
  );
}

/**
 * Input kept for `taskId` (sent before the wait was reached). The execution holds the run's
 * inbox in memory (loaded with its history, and mirrored by `resumeTask`), so no read is
 * needed; the store entry is deleted by the checkpoint that consumes it.
 */
function takeEarlyInput(exec: RunExecution, taskId: string): { found: boolean; data?: unknown } {
  if (!exec.inbox.has(taskId)) return { found: false };
  const data = exec.inbox.get(taskId);
  exec.inbox.delete(taskId);
  return { found: true, data };
}

export function completeWait(
  exec: RunExecution,
  task: Task,
  data: unknown,
  by: string | null,
): void {
  const now = exec.host.clock.now();
  task.status = 'completed';
  task.output = data;
  task.resumedBy = by;
  task.endedAt = now;
  task.durationMs = elapsed(task.startedAt, now);
}

/** Whether the task is a wait the run is waiting on right now. */
export function isWaiting(exec: RunExecution, taskId: string): boolean {
  return exec.pending.get(taskId)?.kind === 'wait';
}

/** Waits the run is waiting on, by seq. */
export function waitingTaskIds(exec: RunExecution): string[] {
  return [...exec.pending.values()]
    .filter((p) => p.kind === 'wait')
    .map((p) => p.taskId)
    .sort((a, b) => exec.tasks.get(a)!.seq - exec.tasks.get(b)!.seq);
}

/**
 * Validates payloads for waiting tasks with their live schemas, all before anything is
 * written: one invalid payload refuses them all with `INVALID_RESUME_INPUT`.
 */
export function validateResume(
  exec: RunExecution,
  payloads: ReadonlyMap<string, unknown>,
): Map<string, unknown> {
  const problems: { taskId: string; issues: unknown }[] = [];
  const values = new Map<string, unknown>();
  for (const [taskId, data] of payloads) {
    const pending = exec.pending.get(taskId);
    if (!pending || pending.kind !== 'wait') {
      throw new CairnError(
        'NOT_WAITING',
        `Task "${taskId}" of run ${exec.run.id} is not waiting for input`,
        {
          details: { runId: exec.run.id, taskId },
        },
      );
    }
    const parsed = parseWaitInput(pending.schema, data);
    if (!parsed.success) {
      problems.push({ taskId, issues: parsed.error.issues });
    } else {
      assertSerializable(data, 'data');
      values.set(taskId, parsed.data);
    }
  }
  if (problems.length > 0) {
    throw new CairnError(
      'INVALID_RESUME_INPUT',
      `The input for ${problems.map((p) => `"${p.taskId}"`).join(', ')} does not match the schema; the run is unchanged`,
      {
        details: {
          runId: exec.run.id,
          issues: problems.length === 1 ? problems[0]!.issues : problems,
        },
      },
    );
  }
  return values;
}

/** Validates the payloads for waiting tasks, then resumes them all in one checkpoint. */
export async function resumeWaits(
  exec: RunExecution,
  payloads: ReadonlyMap<string, unknown>,
  by: string | null,
  /** The payloads were kept in the inbox: their entries are taken in the same checkpoint. */
  fromInbox = false,
): Promise<void> {
  const values = exec.validateResume(payloads);
  // Before anything changes in memory: a fault here leaves the waits waiting.
  faults.hit(
    'resume.before-commit',
    [...payloads.keys()].map((taskId) => exec.tasks.get(taskId)),
  );
  const tasks: Task[] = [];
  const settle: (() => void)[] = [];
  const before: { task: Task; pending: PendingWait }[] = [];
  const runBefore = exec.run;
  for (const [taskId, data] of payloads) {
    const pending = exec.pending.get(taskId) as PendingWait;
    exec.pending.delete(taskId);
    const task = exec.tasks.get(taskId)!;
    before.push({ task: { ...task }, pending });
    completeWait(exec, task, data, by);
    tasks.push(task);
    const value = values.get(taskId);
    settle.push(() => pending.resolve(value));
  }
  const resumed = exec.run.status === 'paused' && !exec.run.pauseRequested;
  if (resumed) exec.run = transition(exec.run, 'running', exec.host.clock.now());
  exec.inflight++;
  try {
    await exec.write(
      {
        tasks,
        ...(resumed ? { runs: [exec.run] } : {}),
        ...(fromInbox
          ? {
              inboxTaken: [...payloads.keys()].map((taskId) => ({ runId: exec.run.id, taskId })),
            }
          : {}),
      },
      // The store wrote nothing (e.g. the payload is too large): the waits wait on.
      () => {
        for (const b of before) {
          exec.tasks.set(b.task.taskId, b.task);
          exec.pending.set(b.task.taskId, b.pending);
        }
        exec.run = runBefore;
      },
    );
  } finally {
    exec.inflight--;
  }
  for (const taskId of payloads.keys()) {
    exec.host.events.emit('task:resumed', { runId: exec.run.id, taskId, by });
  }
  if (resumed)
    exec.host.events.emit('run:resumed', { runId: exec.run.id, workflow: exec.run.workflow });
  for (const s of settle) s();
  exec.scheduleCheck();
}

/** Keeps input for a task the function has not reached yet. */
export function keepEarlyInput(exec: RunExecution, taskId: string, data: unknown): void {
  exec.inbox.set(taskId, data);
}
