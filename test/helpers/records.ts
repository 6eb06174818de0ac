import type { Run, Task } from '@cairn/store';

/** A valid run record; `overrides` replace fields (keep `isPaused` in step with `status`). */
export function makeRun(id: string, overrides: Partial<Run> = {}): Run {
  const createdAt = overrides.createdAt ?? 1_700_000_000_000;
  return {
    id,
    workflow: 'expense-approval',
    version: '1',
    namespace: 'default',
    status: 'queued',
    isPaused: false,
    pausedTaskId: null,
    pauseRequested: false,
    input: { id, amount: 42 },
    error: null,
    createdAt,
    startedAt: null,
    updatedAt: createdAt,
    endedAt: null,
    parentRunId: null,
    parentTaskId: null,
    depth: 0,
    recoveries: 0,
    tags: [],
    ...overrides,
  };
}

/** A valid task record of `kind` (default a running step). */
export function makeTask(runId: string, taskId: string, overrides: Partial<Task> = {}): Task {
  return {
    runId,
    taskId,
    kind: 'step',
    seq: 0,
    status: 'running',
    attempt: 1,
    attempts: [],
    error: null,
    startedAt: 1_700_000_000_000,
    endedAt: null,
    durationMs: null,
    group: null,
    parentTaskId: null,
    meta: {},
    ...overrides,
  };
}
