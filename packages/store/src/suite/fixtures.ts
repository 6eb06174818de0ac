import { uuidv7 } from '../ids.js';
import { TERMINAL_STATUSES } from '../records.js';
import type { LogInput, Run, RunStatus, Task } from '../records.js';

/**
 * Builders of valid records for the conformance suite (and for any test that needs one).
 * Every builder returns a record the store must accept; `overrides` replace fields as given,
 * so a test that breaks a record does it on purpose.
 */

/** A fixed epoch (2025-01-01) plus a step per call, so records made in order sort in order. */
const EPOCH = Date.UTC(2025, 0, 1);
let ticks = 0;

/** A time later than every time it returned before: 1 s apart. */
export function nextTime(): number {
  ticks++;
  return EPOCH + ticks * 1000;
}

/** A valid run; `isPaused`, `startedAt` and `endedAt` follow `status` unless overridden. */
export function makeRun(overrides: Partial<Run> = {}): Run {
  const createdAt = overrides.createdAt ?? nextTime();
  const status = overrides.status ?? 'running';
  return {
    id: uuidv7(),
    workflow: 'expense-approval',
    version: '1',
    namespace: 'default',
    status,
    isPaused: status === 'paused',
    pausedTaskId: null,
    pauseRequested: false,
    input: { id: 'exp-1', amount: 42, currency: 'EUR' },
    error: status === 'failed' ? { code: 'STEP_FAILED', message: 'payment refused' } : null,
    createdAt,
    startedAt: status === 'queued' ? null : createdAt,
    updatedAt: createdAt,
    endedAt: TERMINAL_STATUSES.has(status) ? createdAt : null,
    parentRunId: null,
    parentTaskId: null,
    depth: 0,
    recoveries: 0,
    tags: [],
    ...overrides,
  };
}

/** The same run moved to `status`, with `isPaused`, `updatedAt` and `endedAt` to match. */
export function withStatus(run: Run, status: RunStatus, overrides: Partial<Run> = {}): Run {
  const now = Math.max(run.updatedAt + 1, nextTime());
  return {
    ...run,
    status,
    isPaused: status === 'paused',
    pausedTaskId: status === 'paused' ? run.pausedTaskId : null,
    updatedAt: now,
    endedAt: TERMINAL_STATUSES.has(status) ? now : null,
    ...overrides,
  };
}

let seqs = 0;

/** A completed step of `run` (pass `{ status: 'running' }` etc. for other states). */
export function makeTask(run: Pick<Run, 'id'>, overrides: Partial<Task> = {}): Task {
  const seq = overrides.seq ?? seqs++;
  const startedAt = overrides.startedAt ?? nextTime();
  const status = overrides.status ?? 'completed';
  const ended = status !== 'running' && status !== 'waiting' && status !== 'sleeping';
  return {
    runId: run.id,
    taskId: `step-${seq}`,
    kind: 'step',
    seq,
    status,
    attempt: 1,
    attempts: [{ attempt: 1, startedAt, endedAt: ended ? startedAt + 5 : null, error: null }],
    ...(status === 'completed' ? { output: { ok: true, seq } } : {}),
    error: null,
    startedAt,
    endedAt: ended ? startedAt + 5 : null,
    durationMs: ended ? 5 : null,
    group: null,
    parentTaskId: null,
    meta: {},
    ...overrides,
  };
}

/** A wait for input, `waiting`, with a JSON schema and (unless `timeoutAt: null`) a timeout. */
export function makeWait(run: Pick<Run, 'id'>, overrides: Partial<Task> = {}): Task {
  const seq = overrides.seq ?? seqs++;
  const startedAt = overrides.startedAt ?? nextTime();
  return makeTask(run, {
    taskId: `approval-${seq}`,
    kind: 'wait',
    seq,
    status: 'waiting',
    attempt: 0,
    attempts: [],
    startedAt,
    endedAt: null,
    durationMs: null,
    schema: {
      type: 'object',
      properties: { approved: { type: 'boolean' }, by: { type: 'string' } },
      required: ['approved', 'by'],
    },
    timeoutAt: startedAt + 48 * 3600 * 1000,
    resumedBy: null,
    ...overrides,
  });
}

/** A durable sleep, `sleeping` until `wakeAt`. */
export function makeSleep(run: Pick<Run, 'id'>, overrides: Partial<Task> = {}): Task {
  const seq = overrides.seq ?? seqs++;
  const startedAt = overrides.startedAt ?? nextTime();
  return makeTask(run, {
    taskId: `nap-${seq}`,
    kind: 'sleep',
    seq,
    status: 'sleeping',
    attempt: 0,
    attempts: [],
    startedAt,
    endedAt: null,
    durationMs: null,
    wakeAt: startedAt + 60_000,
    ...overrides,
  });
}

/** The same task finished with `status` (default `completed`), its timer fields kept. */
export function finished(task: Task, overrides: Partial<Task> = {}): Task {
  const endedAt = task.startedAt + 10;
  return {
    ...task,
    status: 'completed',
    endedAt,
    durationMs: 10,
    ...(task.kind === 'wait' ? { output: { approved: true, by: 'ada' }, resumedBy: 'ada' } : {}),
    ...overrides,
  };
}

/** A log line for `runId` (the store assigns `seq`). */
export function makeLog(runId: string, overrides: Partial<LogInput> = {}): LogInput {
  return {
    runId,
    at: nextTime(),
    level: 'info',
    message: 'scored risk',
    taskId: null,
    data: { risk: 0.2 },
    ...overrides,
  };
}
